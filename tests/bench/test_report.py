"""The bench's ratios pair each round's scenario with the same round's ceiling."""

from bench.report import summarise
from bench.scenario import Measurement, Scenario

CEILING = Scenario("ceiling", "GET /c", "GET", ("/c",), authenticated=False)
CREATE = Scenario("create", "POST /x", "POST", ("/x",), 201, b"{}", target=0.22)


def _run(requests: int, server_us: float) -> Measurement:
    return Measurement(requests=requests, seconds=1.0, server_us=server_us)


def test_ratios_are_medians_of_each_rounds_pair() -> None:
    ceiling = [_run(1000, 100), _run(500, 200), _run(1000, 100)]  # the machine slowed in round 2
    create = [_run(250, 400), _run(125, 800), _run(200, 500)]
    found = summarise([CEILING, CREATE], {"ceiling": ceiling, "create": create})["create"]
    assert found["ratio"] == 0.25  # rounds: 0.25, 0.25, 0.20; medians of each side give 0.20
    assert found["cpu_ratio"] == 0.25
    assert found["passed"] is True and found["median_rps"] == 200


def test_a_ratio_below_target_fails() -> None:
    ceiling = [_run(1000, 100)] * 3
    create = [_run(210, 480)] * 3
    found = summarise([CEILING, CREATE], {"ceiling": ceiling, "create": create})["create"]
    assert found["passed"] is False and found["ratio"] == 0.21
