"""Idempotent retries: a write sent again with the same X-Request-ID gets the first answer.

(Interface in place; the request log behind it is being built.)
"""

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from app.access import Caller
from app.fhir.context import AppContext
from app.storage.db import Connection


async def write_once(
    request: Request,
    context: AppContext,
    caller: Caller,
    work: Callable[[Connection], Awaitable[Response]],
) -> Response:
    """Run `work` (which renders the response) in one write transaction, once per request id."""
    return await context.write(work)
