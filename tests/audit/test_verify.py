"""`safeguard audit verify`, run as the CLI runs it against the database the app under test
serves: an intact chain passes; a record altered, inserted or removed straight in the database
is the first line of the report, exit status 1; so is a record left unsealed over a minute."""

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.audit.chain import seal_pending
from app.audit.events import links_of
from app.clock import now_micros
from app.settings import Settings, get_settings
from tests import factories as f
from tests.audit.chains import Sealed, chain, chained, execute, run, store, synthetic
from tests.audit.trails import audit_event_refusing
from tests.conftest import database
from tests.http import create


async def _sealed_trail(app: FastAPI, client: httpx.AsyncClient) -> list[Sealed]:
    """A few requests' AuditEvents, sealed: the chain, five records long at least."""
    child = await create(client, f.patient(family="Verified"))
    for path in (f"/Patient/{child['id']}", "/Patient?family=Verified", "/Flag", "/Condition"):
        await client.get(path)
    await seal_pending(database(app))
    records = await chain(app)
    assert len(records) >= 5
    return records


async def test_an_intact_chain_verifies(
    app: FastAPI, client: httpx.AsyncClient, same_settings: Settings
) -> None:
    records = await _sealed_trail(app, client)
    result = await run("audit", "verify")
    assert result.exit_code == 0, result.output
    head = f"head seq {records[-1].seq} hash {records[-1].seal_hash}"
    assert result.output.splitlines() == [f"{len(records)} records verified, chain intact ({head})"]


async def _alter_body(app: FastAPI, records: list[Sealed]) -> tuple[int, str]:
    event = orjson.loads(records[2].body)
    event["outcome"] = "8"
    forged = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    await execute(app, "UPDATE audit_event SET body = $1 WHERE seal_seq = 3", forged)
    return 3, "altered or inserted: its hash does not match"


async def _alter_outcome(app: FastAPI, records: list[Sealed]) -> tuple[int, str]:
    await execute(app, "UPDATE audit_event SET outcome = '8' WHERE seal_seq = 4")
    return 4, "altered: its outcome column is not what its sealed body says"


async def _alter_client(app: FastAPI, records: list[Sealed]) -> tuple[int, str]:
    await execute(app, "UPDATE audit_event SET client_id = 'someone-else' WHERE seal_seq = 2")
    return 2, "altered: its client_id column is not what its sealed body says"


async def _alter_link(app: FastAPI, records: list[Sealed]) -> tuple[int, str]:
    target = next(r for r in records if any(k == "patient" for k, _ in links_of(_event(r))))
    await execute(
        app,
        "UPDATE audit_link SET value = 'Patient/someone-else' "
        "WHERE audit_id = $1 AND kind = 'patient'",
        target.id,
    )
    return target.seq, "altered: its audit_link rows are not what its sealed body says"


async def _remove(app: FastAPI, records: list[Sealed]) -> tuple[int, str]:
    await execute(app, "DELETE FROM audit_event WHERE seal_seq = 3")
    return 3, "removed: this record is missing from the chain"


async def _append_forged(app: FastAPI, records: list[Sealed]) -> tuple[int, str]:
    """A record inserted after the head, with a hash that is not the chain's."""
    head = records[-1].seq + 1
    await _insert_sealed(app, head, "f" * 64)
    return head, "altered or inserted: its hash does not match"


async def _replace_forged(app: FastAPI, records: list[Sealed]) -> tuple[int, str]:
    """A record swapped for a forged one whose own hash is right: the next one breaks."""
    await execute(app, "DELETE FROM audit_event WHERE seal_seq = 3")
    await _insert_sealed(app, 3, None, previous=records[1].seal_hash)
    return 4, "altered or inserted: its hash does not match"


async def _insert_sealed(app: FastAPI, seq: int, seal: str | None, previous: str = "") -> None:
    row = synthetic(1)[0]
    seal = seal or chained(previous, seq, row.body)
    await execute(
        app,
        "INSERT INTO audit_event (id, recorded, client_id, client_org, subtype, action, "
        "outcome, body, seal_seq, seal_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        row.id, row.recorded, row.client_id, row.client_org, row.subtype, row.action,
        row.outcome, row.body, seq, seal,
    )  # fmt: skip


def _event(record: Sealed) -> dict[str, object]:
    event: dict[str, object] = orjson.loads(record.body)
    return event


Tampering = Callable[[FastAPI, list[Sealed]], Awaitable[tuple[int, str]]]
TAMPERINGS: list[Tampering] = [
    _alter_body,
    _alter_outcome,
    _alter_client,
    _alter_link,
    _remove,
    _append_forged,
    _replace_forged,
]


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda t: t.__name__.strip("_"))
async def test_a_record_tampered_with_in_the_database_is_reported_first(
    app: FastAPI, client: httpx.AsyncClient, same_settings: Settings, tamper: Tampering
) -> None:
    records = await _sealed_trail(app, client)
    seq, what = await tamper(app, records)
    result = await run("audit", "verify")
    assert result.exit_code == 1, result.output
    first, *_, summary = result.output.splitlines()
    assert first.startswith(f"seq {seq}") and what in first, first
    assert f"chain broken at seq {seq}" in summary


async def test_a_chain_cut_short_is_caught_by_the_head_kept_from_before(
    app: FastAPI, client: httpx.AsyncClient, same_settings: Settings
) -> None:
    """Removing the last records leaves a chain that holds together: only the head an earlier
    verify reported, given back as --anchor, shows it was longer."""
    await _sealed_trail(app, client)
    before = orjson.loads((await run("audit", "verify", "--json")).output)
    head = before["head"]
    cut = head["seq"] - 1
    await execute(
        app,
        "DELETE FROM audit_link WHERE audit_id IN "
        "(SELECT id FROM audit_event WHERE seal_seq >= $1)",
        cut,
    )
    await execute(app, "DELETE FROM audit_event WHERE seal_seq >= $1", cut)
    assert (await run("audit", "verify")).exit_code == 0
    result = await run("audit", "verify", "--anchor", f"{head['seq']}:{head['hash']}")
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"seq {head['seq']}: removed: the anchored record is gone")


def sealing_refused(app: FastAPI) -> AbstractAsyncContextManager[None]:
    """While inside, the database refuses to seal any record (the sealer is stuck)."""
    return audit_event_refusing(app, "refuse_seal", "UPDATE OF seal_seq", "seal_seq IS NULL")


async def test_a_record_left_unsealed_over_a_minute_is_reported(
    app: FastAPI, client: httpx.AsyncClient, same_settings: Settings
) -> None:
    await _sealed_trail(app, client)
    stale, fresh = synthetic(1, recorded=now_micros() - 61_000_000), synthetic(2)
    async with sealing_refused(app):
        await store(app, [*stale, *fresh])
        result = await run("audit", "verify")
        as_json = orjson.loads((await run("audit", "verify", "--json")).output)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    oldest = f"AuditEvent/{stale[0].id}"
    assert lines[0].startswith(f"1 record unsealed for over 60 s, the oldest {oldest} recorded")
    assert "chain intact" in lines[1] and lines[1].endswith("but 1 record left unsealed")
    assert as_json["unsealed"] == {"olderThanSeconds": 60, "count": 1, "oldestId": stale[0].id}
    await seal_pending(database(app))
    assert (await run("audit", "verify")).exit_code == 0


async def test_a_trail_that_cannot_be_read_exits_with_status_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    for url in ("postgresql://nobody@127.0.0.1:1/none", f"sqlite:///{tmp_path}/none.db"):
        monkeypatch.setenv("SAFEGUARD_DATABASE_URL", url)
        get_settings.cache_clear()
        result = await run("audit", "verify")
        assert result.exit_code == 2, result.output
        assert "cannot read the audit trail" in result.output
    get_settings.cache_clear()
