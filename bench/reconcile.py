"""`make bench-reconcile`: a council's nightly `safeguard reconcile` at scale, over HTTP.

A fresh migrated PostgreSQL database is bulk-loaded (`app.storage.bulk`) with what last
night's run left: one local authority (`--children` 100,000 children, `--per-child` 3 flags
each, 300,000 in all, every one written as the council's client writes it, half with the
register's identifier, half keyed by child, flag type and start; a fifth of them ended). The
register of tonight differs by `--churn` (1%) of the flags in each way: ended in the register
(changed), dropped from it (missing), and new flags for children held here (new). Then one
uvicorn worker serves the database and the command runs as an operator runs it, in a process
of its own: `safeguard reconcile register.csv --apply` with the council's client and key
(SMART Backend Services), then the same register again as a dry run, which must find nothing
left to do. Each run's wall time, requests sent and counts are printed and written to
`bench/results/reconcile.json`; the server's CPU time is read from /proc.
"""

import argparse
import asyncio
import csv
import datetime
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from app.access import Caller
from app.auth.clients import local_key_pair, register
from app.flags.codes import Vocabulary, vocabulary
from app.flags.follow_ups import claimed_numbers
from app.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM
from app.reconcile.command import DEFAULT_SCOPE
from app.reconcile.matching import CHANGED, CONFLICTING, MISSING, NEW, SAME, Difference
from app.reconcile.register import COLUMNS, Entry
from app.reconcile.writing import Context, entry_of
from app.records import writing
from app.storage.bulk import bulk_load
from app.storage.db import asyncpg_dsn, make_database
from bench import population as pop
from bench.backends import UnavailableError, database
from bench.process import ROOT, Server, serve
from bench.report import write_json

OUTPUT = ROOT / "bench" / "results" / "reconcile.json"
CANONICAL = "https://safeguard-fhir.example/fhir"  # the bench server's canonical base
BASE = "http://127.0.0.1/fhir"  # references are relative, so the index does not depend on it
COUNCIL, COUNCIL_ODS, CLIENT = "bench-council", "B9C01", "bench-council-reconcile"
TARGET_SECONDS = 300.0
FIRST_DAY, LAST_START = datetime.date(2019, 1, 1), datetime.date(2026, 10, 31)


@dataclass(frozen=True, slots=True)
class Register:
    """What the server holds (as entries), tonight's register, and what tonight must find."""

    children: dict[str, str]  # NHS number -> Patient id
    held: list[Entry]
    listed: list[Entry]
    expected: dict[str, int]


def _entry(rng: random.Random, nhs: str, flag_type: str, serial: int, vocab: Vocabulary) -> Entry:
    """A flag the council raised: half with its register identifier; a fifth of them ended."""
    start = pop._day(rng, FIRST_DAY, LAST_START)
    end = None
    if rng.random() < 0.2:
        end = min(start + datetime.timedelta(days=rng.randint(1, 700)), LAST_START).isoformat()
    identifier = None
    if serial % 2:
        identifier = (vocab.url("Id", "register-flag"), f"BC-{serial}")
    return Entry("", nhs, flag_type, start.isoformat(), end, COUNCIL_ODS, identifier)


def plan(children: int, per_child: int, churn: float, seed: int, vocab: Vocabulary) -> Register:
    """Last night's flags and tonight's register, drawn from `seed`."""
    rng = random.Random(seed)
    codes = [concept.code for concept in vocab.flag_types]
    numbers = pop.nhs_numbers(rng.randrange(50_000))
    ids = {next(numbers): f"child-{n}" for n in range(children)}
    held: list[Entry] = []
    types_of: dict[str, list[str]] = {}
    for nhs in ids:
        types_of[nhs] = rng.sample(codes, per_child)
        held += [_entry(rng, nhs, t, len(held) + k, vocab) for k, t in enumerate(types_of[nhs])]
    active = [n for n, e in enumerate(held) if e.end is None]
    picked = rng.sample(active, 2 * int(churn * len(held)))
    ended, dropped = set(picked[::2]), set(picked[1::2])
    listed = [_ended(e) if n in ended else e for n, e in enumerate(held) if n not in dropped]
    raised = rng.sample(sorted(ids), int(churn * len(held)))
    new = [_new(rng, nhs, types_of, len(held) + k, vocab) for k, nhs in enumerate(raised)]
    listed += new
    expected = {
        NEW: len(new),
        CHANGED: len(ended),
        SAME: len(held) - len(ended) - len(dropped),
        MISSING: len(dropped),
        CONFLICTING: 0,
    }
    return Register(ids, held, listed, expected)


def _ended(entry: Entry) -> Entry:
    """The entry as the register lists it once the council has ended the flag."""
    return Entry(
        "",
        entry.nhs_number,
        entry.flag_type,
        entry.start,
        "2026-11-20",
        entry.author_ods,
        entry.identifier,
    )


def _new(
    rng: random.Random, nhs: str, types_of: dict[str, list[str]], serial: int, vocab: Vocabulary
) -> Entry:
    """A flag of a type the child has none of yet, raised since last night."""
    flag_type = rng.choice([c.code for c in vocab.flag_types if c.code not in types_of[nhs]])
    types_of[nhs].append(flag_type)
    identifier = (vocab.url("Id", "register-flag"), f"BC-{serial}") if serial % 2 else None
    return Entry("", nhs, flag_type, "2026-11-25", None, COUNCIL_ODS, identifier)


def resources(register: Register, vocab: Vocabulary, today: str) -> Iterator[dict[str, Any]]:
    """The council's Organization, the children, and the flags as last night's run wrote them."""
    yield {
        "resourceType": "Organization",
        "id": COUNCIL,
        "identifier": [{"system": ODS_SYSTEM, "value": COUNCIL_ODS}],
        "name": "Bench Borough Council",
        "active": True,
    }
    for nhs, patient in register.children.items():
        identifier = [{"system": NHS_NUMBER_SYSTEM, "value": nhs}]
        yield {"resourceType": "Patient", "id": patient, "identifier": identifier}
    context = Context(vocab, COUNCIL, register.children, today, "no-longer-applicable")
    for entry in register.held:
        yield entry_of(Difference(NEW, entry=entry), context)["resource"]


def write_register(path: Path, listed: list[Entry]) -> None:
    """Tonight's register as the documented CSV."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for e in listed:
            named = e.identifier[1] if e.identifier else ""
            writer.writerow((e.nhs_number, e.flag_type, e.start, e.end or "", e.author_ods, named))


async def _load(url: str, register: Register, vocab: Vocabulary, today: str) -> int:
    """Bulk-load what the server holds, as the council's client wrote it; resources loaded."""
    council = Caller(subject=CLIENT, organisation=COUNCIL, role="local-authority")
    written_as = writing.written_as(council, vocab, CANONICAL)
    ids = await bulk_load(
        url,
        resources(register, vocab, today),
        BASE,
        claimed_numbers=claimed_numbers,
        written_as=written_as,
        caller=council,
    )
    return len(ids)


async def _register_council(url: str, public_jwks: str) -> None:
    db = make_database(url, 1, 2)
    await db.open()
    try:
        await register(
            db, CLIENT, f"Organization/{COUNCIL}", "local-authority", DEFAULT_SCOPE, public_jwks
        )
    finally:
        await db.close()


def council_key(url: str, folder: Path) -> Path:
    """Register the council's client with a fresh key; the private key's file."""
    private, public = local_key_pair()
    asyncio.run(_register_council(url, public))
    path = folder / "council-key.json"
    path.write_text(private)
    return path


def reconcile(server: Server, folder: Path, key: Path, today: str, apply: bool) -> dict[str, Any]:
    """Run `safeguard reconcile` in a process of its own; its exit status, time and report."""
    report = folder / f"report-{'apply' if apply else 'dry-run'}.json"
    argv = [sys.executable, "-m", "app.cli", "reconcile", str(folder / "register.csv")]
    argv += ["--server", f"{server.url}/fhir", "--client", CLIENT, "--key", str(key)]
    argv += ["--as-of", today, "--report", str(report), "--no-progress"]
    argv += ["--apply"] if apply else []
    cpu_before, started = server.cpu_seconds(), time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    cpu_after = server.cpu_seconds()
    found = json.loads(report.read_text()) if report.exists() else {}
    return {
        "apply": apply,
        "exit": done.returncode,
        "seconds": seconds,
        "server_cpu_seconds": _spent(cpu_before, cpu_after),
        "requests": found.get("requests"),
        "counts": found.get("counts"),
        "applied": found.get("applied"),
        "said": done.stdout[-2000:] + done.stderr[-2000:],
    }


def _spent(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


async def _analyse(url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


def bench_reconcile(
    url: str, folder: Path, register: Register, vocab: Vocabulary
) -> dict[str, Any]:
    """Load and analyse, serve, reconcile with --apply, then again as a dry run."""
    today = datetime.date.today().isoformat()
    started = time.perf_counter()
    loaded = asyncio.run(_load(url, register, vocab, today))
    asyncio.run(_analyse(url))
    print(f"  loaded {loaded:,} resources in {time.perf_counter() - started:.0f}s", flush=True)
    write_register(folder / "register.csv", register.listed)
    key = council_key(url, folder)
    environment = {"SAFEGUARD_CANONICAL_BASE_URL": CANONICAL}
    with serve(url, folder, timeout=120.0, environment=environment) as server:
        runs = [reconcile(server, folder, key, today, apply) for apply in (True, False)]
    return {"resources": loaded, "expected": register.expected, "runs": runs}


def verdicts(found: dict[str, Any], register: Register) -> list[str]:
    """What went wrong, if anything: exit statuses and counts against what was planned."""
    applied, again = found["runs"]
    wrong = []
    if applied["exit"] != 0 or applied["counts"] != register.expected:
        wrong.append(f"--apply: exit {applied['exit']}, counts {applied['counts']}")
    agreed = {category: 0 for category in register.expected} | {SAME: len(register.listed)}
    if again["exit"] != 0 or again["counts"] != agreed:
        wrong.append(f"dry rerun: exit {again['exit']}, counts {again['counts']}")
    return wrong


def report(found: dict[str, Any], register: Register) -> list[str]:
    """The figures, with the target."""
    held, listed = len(register.held), len(register.listed)
    lines = [
        f"held: {len(register.children):,} children, {held:,} flags by {COUNCIL_ODS}; register: "
        f"{listed:,} rows; planned {register.expected}",
    ]
    for run in found["runs"]:
        name = "--apply" if run["apply"] else "dry rerun"
        verdict = "PASS" if run["seconds"] < TARGET_SECONDS else "FAIL"
        cpu = run["server_cpu_seconds"]
        lines.append(
            f"{name}: {run['seconds']:.1f}s (target < {TARGET_SECONDS:.0f}s: {verdict}), "
            f"{run['requests']:,} requests, exit {run['exit']}, server CPU "
            f"{'?' if cpu is None else f'{cpu:.1f}s'}; counts {run['counts']}; "
            f"applied {run['applied']}"
        )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__)
    add = parser.add_argument
    add("--children", type=int, default=100_000)
    add("--per-child", type=int, default=3, help="flags per child")
    add("--churn", type=float, default=0.01, help="share of flags changed, missing and new")
    add("--seed", type=int, default=pop.SEED)
    add("--output", type=Path, default=OUTPUT)
    add("--strict", action="store_true", help="exit 1 when the target is missed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run, print, write the JSON; 1 if a run went wrong (or, if strict, missed the target)."""
    args = parse_args(argv)
    vocab = vocabulary(CANONICAL)
    register = plan(args.children, args.per_child, args.churn, args.seed, vocab)
    with tempfile.TemporaryDirectory(prefix="safeguard-reconcile-") as tmp:
        try:
            with database("postgresql", Path(tmp)) as url:
                found = bench_reconcile(url, Path(tmp), register, vocab)
        except UnavailableError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            return 1
    print("\n".join(report(found, register)))
    wrong = verdicts(found, register)
    for line in wrong:
        print(f"WRONG: {line}\n{found['runs'][0]['said']}", file=sys.stderr)
    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    settings = {k: str(v) for k, v in vars(args).items()}
    write_json(args.output, {"when": when, "settings": settings, **found})
    print(f"results written to {args.output}")
    missed = any(run["seconds"] >= TARGET_SECONDS for run in found["runs"])
    return 1 if wrong or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
