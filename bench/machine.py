"""CPU accounting around a measurement: the server's, the load generator's, the whole machine's."""

import os
import resource
import time
from dataclasses import replace
from pathlib import Path

from bench.process import Server
from bench.scenario import Measurement


def machine_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of all cores since boot, from /proc/stat (None off Linux)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def busy_cores(seconds: float = 1.0) -> float | None:
    """How many cores' worth of CPU the machine used over the next `seconds`."""
    before = machine_jiffies()
    time.sleep(seconds)
    after = machine_jiffies()
    return cores_between(before, after, seconds)


BUSY_WARNING = 0.25  # cores busy while the server idles, above which results will be noisy


def quiet_check(backend: str) -> float | None:
    """Cores busy while the server idles: other processes that will skew the numbers."""
    busy = busy_cores(1.0)
    if busy is not None and busy > BUSY_WARNING:
        print(
            f"  WARNING: {busy:.2f} cores already busy before measuring {backend} (other "
            "processes on this machine); results will be low and noisy",
            flush=True,
        )
    return busy


def cores_between(
    before: tuple[int, int] | None, after: tuple[int, int] | None, seconds: float
) -> float | None:
    """Cores busy on average between two `machine_jiffies` readings `seconds` apart."""
    if before is None or after is None or seconds <= 0:
        return None
    return (after[0] - before[0]) / os.sysconf("SC_CLK_TCK") / seconds


def own_cpu() -> float:
    """CPU seconds of this process and its reaped children (so: a finished wrk run)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Probe:
    """Snapshots taken at the start of a measured run, turned into CPU shares at its end."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.wall = time.perf_counter()
        self.served = server.cpu_seconds()
        self.own = own_cpu()
        self.machine = machine_jiffies()

    def finish(self, found: Measurement) -> Measurement:
        """`found` with CPU filled in: in cores, and server CPU microseconds per request."""
        wall = time.perf_counter() - self.wall
        after = self.server.cpu_seconds()
        served = None if after is None or self.served is None else after - self.served
        return replace(
            found,
            server_cpu=None if served is None else served / wall,
            loadgen_cpu=(own_cpu() - self.own) / wall,
            machine_cpu=cores_between(self.machine, machine_jiffies(), wall),
            server_us=served / found.requests * 1e6 if served and found.requests else None,
        )
