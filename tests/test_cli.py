"""`safeguard serve` hands its limits to uvicorn: idle keep-alive connections are closed,
and requests beyond the connection limit get 503; checked against a real server. Several
workers share their metrics, so a scrape of any of them counts them all."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import cli
from app.cli import uvicorn_options
from app.metrics import MULTIPROCESS_DIR
from app.settings import Settings
from tests.serving import PING, serving, status_of


def test_the_limits_reach_uvicorn() -> None:
    options = uvicorn_options(Settings(keep_alive_seconds=2.5, max_connections=7))
    assert options["timeout_keep_alive"] == 2.5 and options["limit_concurrency"] == 7
    assert options["server_header"] is False and options["access_log"] is False


async def _closed_after_idle(port: int, idle: float) -> bool:
    """Whether the server closed a keep-alive connection left idle for `idle` seconds."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(PING)
    assert await status_of(reader) == 200
    await asyncio.sleep(idle)
    try:
        await asyncio.wait_for(reader.read(), 0.5)  # the answer's rest, then EOF if closed
    except TimeoutError:
        return False
    finally:
        writer.close()
    return reader.at_eof()


async def test_an_idle_keep_alive_connection_is_closed(settings: Settings) -> None:
    async with serving(settings, keep_alive_seconds=0.3) as port:
        assert await _closed_after_idle(port, 1.0)
    async with serving(settings, keep_alive_seconds=30) as port:
        assert not await _closed_after_idle(port, 1.0)


async def test_requests_beyond_the_connection_limit_get_503(settings: Settings) -> None:
    async with serving(settings, max_connections=1) as port:
        _, holding = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(PING)
        assert await status_of(reader) == 503
        for connection in (holding, writer):
            connection.close()


def test_several_workers_share_their_metrics_through_a_temporary_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR, raising=False)
    seen: list[str | None] = []

    def run(target: str, **options: Any) -> None:
        folder = os.environ.get(MULTIPROCESS_DIR)
        seen.append(folder if folder and Path(folder).is_dir() else None)

    monkeypatch.setattr(cli.uvicorn, "run", run)
    cli.run_server(Settings(), "127.0.0.1", 8000, 1)
    cli.run_server(Settings(), "127.0.0.1", 8000, 3)
    assert seen[0] is None and seen[1] is not None
    assert not Path(seen[1]).exists() and MULTIPROCESS_DIR not in os.environ


def test_a_metrics_folder_given_is_emptied_of_an_earlier_runs_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    own = f"counter_{os.getpid()}.db"  # this process's, when it serves alone
    monkeypatch.setenv(MULTIPROCESS_DIR, str(tmp_path))
    monkeypatch.setattr(cli.uvicorn, "run", lambda target, **_: None)
    for workers, left in ((1, ["README", own]), (2, ["README"])):
        for name in ("counter_123.db", "gauge_livesum_123.db", own):
            (tmp_path / name).write_bytes(b"earlier")
        (tmp_path / "README").write_text("kept")
        cli.run_server(Settings(), "127.0.0.1", 8000, workers)
        assert sorted(p.name for p in tmp_path.iterdir()) == left


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def two_workers(settings: Settings, folder: Path) -> AsyncIterator[str]:
    """The app served by two uvicorn worker processes, as `safeguard serve --workers 2` runs
    them (`run_server`; `serve` itself keeps SQLite to one worker), their metrics in
    `folder`; yields the origin once both answer."""
    port = _free_port()
    env = {
        **os.environ,
        "SAFEGUARD_DATABASE_URL": settings.database_url,
        "SAFEGUARD_NOTIFY_INTERVAL_SECONDS": "0",
        "SAFEGUARD_AUDIT_SEAL_INTERVAL_SECONDS": "0",
        MULTIPROCESS_DIR: str(folder),
    }
    script = (
        "from app.cli import run_server; from app.settings import get_settings; "
        f"run_server(get_settings(), '127.0.0.1', {port}, 2)"
    )
    server = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-c", script], env=env, stderr=subprocess.DEVNULL
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # 60 s at most: two processes start on a busy machine
            if len(_files(folder, "gauge_livesum_*.db")) == 2 and await _answers(origin):
                break  # both have started (their pools sampled) and one answers
            await asyncio.sleep(0.1)
        yield origin
    finally:
        server.send_signal(signal.SIGINT)
        await asyncio.to_thread(server.wait, 30)


def _files(folder: Path, pattern: str) -> set[str]:
    return {path.name for path in folder.glob(pattern)}


async def _answers(origin: str) -> bool:
    try:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"{origin}/metrics")).status_code == 200
    except httpx.TransportError:
        return False


def _sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


async def test_a_scrape_of_any_worker_adds_up_every_workers_metrics(
    settings: Settings, tmp_path: Path
) -> None:
    async with two_workers(settings, tmp_path) as origin:
        for _ in range(20):  # a connection each: the kernel spreads them over the workers
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{origin}/_ping")).status_code == 200
        scrapes = []
        for _ in range(6):
            async with httpx.AsyncClient() as http:
                scrapes.append((await http.get(f"{origin}/metrics")).text)
    pings = {"route": "/_ping", "method": "GET", "status": "200"}
    assert [_sample(text, "safeguard_http_requests_total", **pings) for text in scrapes] == [20] * 6
    pool = "writer" if settings.database_url.startswith("sqlite") else "main"
    opened = _sample(scrapes[-1], "safeguard_db_pool_connections_open", pool=pool)
    assert opened == 2 if pool == "writer" else opened >= 2  # both workers' pools
    assert len(_files(tmp_path, "counter_*.db")) == 2
