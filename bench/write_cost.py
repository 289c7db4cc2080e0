"""What a change to the write path costs: create and update throughput of two commits, A/B.

Each commit's tree is exported (`git archive`) to a temporary folder; per backend, each gets a
fresh database migrated by its own migrations and is served by its own uvicorn worker (the
same interpreter and settings as `make bench`), both running side by side. The same load
generator then measures `POST /fhir/Flag` and `PUT /fhir/Flag/{id}` (round-robin over
`--flags` Flags) on each server in interleaved rounds, the order rotating each round, so a
slower minute of the shared machine weighs on both sides alike. Each round starts fresh server
processes on the same databases: a process's luck (memory layout, the core it lands on) moves
its throughput by up to ±10% for its whole life, and with one process per side for every
round, a run of a commit against itself read 0.88. A ratio is the median over the rounds of
after's req/s over before's in the same round; `by srv CPU` is before's server CPU per
request over after's (paired likewise).

Default: before the change feed (`aa1c542`) against the commit that added it (`98dc43c`).
"""

import argparse
import asyncio
import datetime
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from joserfc.jwk import ECKey

from app.storage.db import asyncpg_dsn, sqlite_path
from bench import machine, seed
from bench.backends import BACKENDS, UnavailableError, database
from bench.loadgen import PythonLoad
from bench.process import ROOT, Server, serve
from bench.report import write_json
from bench.scenario import Measurement, Scenario

OUTPUT = ROOT / "bench" / "results" / "write_cost.json"
MIGRATE = "import sys; from app.storage.migrate import upgrade; upgrade(sys.argv[1])"


@dataclass(frozen=True, slots=True)
class Updates(Scenario):
    """PUT of each Flag in turn, each request carrying that Flag's own body."""

    bodies: tuple[bytes, ...] = ()

    def requests(self, host: str, authorization: str | None = None) -> list[bytes]:
        """One raw request per path, with the body whose id is in that path."""
        lines = [f"Host: {host}", "Accept: application/fhir+json"]
        if authorization is not None:
            lines.append(f"Authorization: {authorization}")
        return [
            (
                f"PUT {path} HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\nContent-Type: "
                f"application/fhir+json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
            for path, body in zip(self.paths, self.bodies, strict=True)
        ]


@contextmanager
def exported(ref: str, workdir: Path) -> Iterator[Path]:
    """The tree of commit `ref`, written to a folder of `workdir`."""
    target = workdir / f"tree-{ref}"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref], cwd=ROOT, capture_output=True, check=True, timeout=60
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    yield target


def revision(url: str) -> str:
    """The schema revision Alembic recorded in the database at `url`."""
    query = "SELECT version_num FROM alembic_version"
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(sqlite_path(url))) as conn:
            return str(conn.execute(query).fetchone()[0])

    async def fetch() -> str:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return str(await conn.fetchval(query))
        finally:
            await conn.close()

    return asyncio.run(fetch())


@contextmanager
def side(backend: str, tree: Path, workdir: Path) -> Iterator[str]:
    """A database for `tree`, migrated by its own migrations; its URL."""
    folder = workdir / f"{backend}-{tree.name}"
    folder.mkdir()
    with database(backend, folder, migrate=False) as url:
        subprocess.run([sys.executable, "-c", MIGRATE, url], cwd=tree, check=True, timeout=120)
        print(f"  {tree.name}: schema at revision {revision(url)}", flush=True)
        yield url


def plan(server: Server, seeded: tuple[bytes, list[str]]) -> list[Scenario]:
    """The create and update scenarios of a seeded server (a Flag body to create, the Flags'
    paths): each update sends back the Flag as read, less its `meta` (which names the server
    that wrote it by its URL, and a new process has a new port)."""
    flag_body, paths = seeded
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=10.0) as client:
        read = [orjson.loads(client.get(path).content) for path in paths]
    bodies = tuple(orjson.dumps({k: v for k, v in r.items() if k != "meta"}) for r in read)
    return [
        Scenario("create", "POST /fhir/Flag", "POST", ("/fhir/Flag",), 201, flag_body),
        Updates("update", "PUT /fhir/Flag/{id}", "PUT", tuple(paths), 200, bodies=bodies),
    ]


def _check(server: Server, scenario: Scenario) -> None:
    body = scenario.body or (scenario.bodies[0] if isinstance(scenario, Updates) else b"")
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=10.0) as client:
        response = client.request(
            scenario.method,
            scenario.paths[0],
            content=body,
            headers={"Content-Type": "application/fhir+json"},
        )
    if response.status_code != scenario.status:
        raise RuntimeError(f"{scenario.label}: {response.status_code} {response.text[:300]}")


def measure(server: Server, scenario: Scenario, args: argparse.Namespace) -> Measurement:
    """A warm-up run (discarded), then a measured run with CPU accounting."""
    load = PythonLoad()
    load.run(server, scenario, args.connections, args.warmup)
    probe = machine.Probe(server)
    return probe.finish(load.run(server, scenario, args.connections, args.duration))


def one_round(
    number: int,
    servers: dict[str, Server],
    plans: dict[str, list[Scenario]],
    runs: dict[str, dict[str, list[Measurement]]],
    args: argparse.Namespace,
) -> None:
    """One run of each (side, scenario), in an order that rotates with the round number."""
    order = [(s, i) for i in range(2) for s in servers]
    for name, index in order[number % len(order) :] + order[: number % len(order)]:
        scenario = plans[name][index]
        found = measure(servers[name], scenario, args)
        runs[name].setdefault(scenario.name, []).append(found)
        cpu = "-" if found.server_us is None else f"{found.server_us:,.0f} us/req"
        print(
            f"  [round {number + 1}] {name:<6} {scenario.label:<20} {found.rps:>7,.0f} req/s "
            f"(server {cpu}, {found.errors} errors)",
            flush=True,
        )


def compare(runs: dict[str, dict[str, list[Measurement]]]) -> dict[str, Any]:
    """Per scenario: medians of each side, and the paired ratios after/before."""
    found: dict[str, Any] = {}
    for scenario in runs["before"]:
        before, after = runs["before"][scenario], runs["after"][scenario]
        pairs = list(zip(before, after, strict=True))
        by_cpu = [b.server_us / a.server_us for b, a in pairs if b.server_us and a.server_us]
        found[scenario] = {
            "before_rps": statistics.median(m.rps for m in before),
            "after_rps": statistics.median(m.rps for m in after),
            "ratio": statistics.median(a.rps / b.rps for b, a in pairs if b.rps),
            "ratio_by_server_cpu": statistics.median(by_cpu) if by_cpu else None,
            "before_us": statistics.median(m.server_us or 0 for m in before),
            "after_us": statistics.median(m.server_us or 0 for m in after),
            "errors": sum(m.errors for m in before + after),
            "rounds": {"before": [m.rps for m in before], "after": [m.rps for m in after]},
        }
    return found


def bench_backend(backend: str, trees: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    """Both sides served at once, by fresh server processes each round (one process's luck
    of memory layout and scheduling would otherwise weigh on every round of its side);
    seeded and checked in the first round; measured in interleaved rounds."""
    with tempfile.TemporaryDirectory(prefix="safeguard-ab-") as tmp, ExitStack() as stack:
        urls = {
            name: stack.enter_context(side(backend, tree, Path(tmp)))
            for name, tree in trees.items()
        }
        keys: dict[str, ECKey] = {}
        seeded: dict[str, tuple[bytes, list[str]]] = {}
        runs: dict[str, dict[str, list[Measurement]]] = {name: {} for name in trees}
        for number in range(args.rounds):
            with ExitStack() as serving:
                servers = {
                    name: serving.enter_context(
                        serve(urls[name], Path(tmp), root=trees[name], key=keys.get(name))
                    )
                    for name in trees
                }
                if not seeded:
                    keys = {name: server.tokens.key for name, server in servers.items()}
                    seeded = {
                        name: seed.seed(server, args.flags) for name, server in servers.items()
                    }
                plans = {name: plan(server, seeded[name]) for name, server in servers.items()}
                if number == 0:
                    for name, server in servers.items():
                        for scenario in plans[name]:
                            _check(server, scenario)
                    machine.quiet_check(backend)
                one_round(number, servers, plans, runs, args)
        return compare(runs)


def table(results: dict[str, Any], refs: dict[str, str]) -> str:
    """The figures, one line per backend and scenario."""
    lines = [
        f"{'backend':<11} {'scenario':<20} {'before ' + refs['before']:>16} "
        f"{'after ' + refs['after']:>16} {'after/before':>13} {'by srv CPU':>11} errors"
    ]
    for backend, scenarios in results.items():
        for name, row in scenarios.items():
            by_cpu = row["ratio_by_server_cpu"]
            lines.append(
                f"{backend:<11} {name:<20} {row['before_rps']:>12,.0f} r/s "
                f"{row['after_rps']:>12,.0f} r/s {row['ratio']:>13.2f} "
                f"{'-' if by_cpu is None else format(by_cpu, '.2f'):>11} {row['errors']}"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.write_cost", description=__doc__)
    add = parser.add_argument
    add("--before", default="aa1c542", help="the commit before the change")
    add("--after", default="98dc43c", help="the commit with the change")
    add("--backend", choices=[*BACKENDS, "all"], default="all")
    add("--duration", type=int, default=6, help="measured seconds per run")
    add("--warmup", type=int, default=1, help="warm-up seconds before each run")
    add("--rounds", type=int, default=5, help="interleaved rounds; medians are reported")
    add("--connections", type=int, default=16, help="concurrent keep-alive connections")
    add("--flags", type=int, default=100, help="Flags updated round-robin")
    add("--output", type=Path, default=OUTPUT)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write the JSON; 1 if a request failed or nothing could run."""
    args = parse_args(argv)
    refs = {"before": args.before, "after": args.after}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="safeguard-trees-") as tmp, ExitStack() as stack:
        trees = {name: stack.enter_context(exported(ref, Path(tmp))) for name, ref in refs.items()}
        for backend in BACKENDS if args.backend == "all" else (args.backend,):
            print(f"{backend}:", flush=True)
            try:
                results[backend] = bench_backend(backend, trees, args)
            except UnavailableError as exc:
                print(f"  skipped: {exc}", flush=True)
    if not results:
        print("no backend could be benchmarked", file=sys.stderr)
        return 1
    print("\n" + table(results, refs))
    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    settings = {k: str(v) for k, v in vars(args).items()}
    write_json(args.output, {"when": when, "settings": settings, "backends": results})
    print(f"\nresults written to {args.output}")
    failed = any(row["errors"] for found in results.values() for row in found.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
