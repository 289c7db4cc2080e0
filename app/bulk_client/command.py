"""`safeguard export`: one export run to its end, its files in a folder, an exit status a
nightly job can act on: 0 done, 1 done but the manifest lists errors, 2 failed."""

import asyncio
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from app.bulk_client.credentials import DEFAULT_SCOPE, ClientError, Credentials, read_key
from app.bulk_client.display import ProgressDisplay, summary
from app.bulk_client.export import Exporter, ExportRequest, Result, run_export

DONE, DONE_WITH_ERRORS, FAILED = 0, 1, 2
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


@dataclass(frozen=True, slots=True)
class Options:
    """What the command was asked: where, as whom, what, into which folder."""

    server: str
    out: Path
    request: ExportRequest
    token: str | None = None
    client_id: str | None = None
    key: Path | None = None
    kid: str | None = None
    scope: str = DEFAULT_SCOPE
    token_url: str | None = None
    keep: bool = False
    show_progress: bool = True


def credentials(options: Options) -> Credentials:
    """The bearer token's source: `--token`, or `--client-id` with `--key`."""
    if options.token is not None:
        return Credentials(token=options.token)
    if options.client_id is None or options.key is None:
        raise ClientError("give --token, or --client-id with --key")
    return Credentials(
        client_id=options.client_id,
        key=read_key(options.key, options.kid),
        scope=options.scope,
        token_url=options.token_url,
    )


async def _run(options: Options, display: ProgressDisplay | None) -> Result:
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
        exporter = Exporter(client, options.server, credentials(options), display)
        return await run_export(exporter, options.request, options.out, options.keep)


def export(options: Options, console: Console) -> int:
    """Run the export, print its summary; the exit status. The progress display shows only
    on a terminal: piped or logged, stderr gets no bars."""
    try:
        if options.show_progress and console.is_terminal:
            with ProgressDisplay(console) as display:
                result = asyncio.run(_run(options, display))
        else:
            result = asyncio.run(_run(options, None))
    except ClientError as exc:
        console.print(f"export failed: {exc}", markup=False)
        return FAILED
    except (httpx.HTTPError, OSError) as exc:
        console.print(f"export failed: {type(exc).__name__}: {exc}", markup=False)
        return FAILED
    for line in summary(result):
        print(line)
    print(f"files in {options.out}")
    return status_of(result)


def status_of(result: Result) -> int:
    """0 when the export is whole, 1 when its manifest lists errors."""
    return DONE_WITH_ERRORS if result.error_files else DONE
