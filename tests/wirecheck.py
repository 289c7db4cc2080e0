"""Every FHIR resource the suite receives over HTTP, walked for empty arrays: FHIR JSON never
holds one (an array is absent or has members, http://hl7.org/fhir/R4/json.html#arrays).

Installed for the whole run on httpx's ASGI transport, through which the suite's clients talk
to the real app; a violation fails the request's test at once, naming the request and path.
The Bulk Data manifest is JSON but not a resource (no `resourceType`): its own specification
asks for `"error": []`, so it is not walked.
"""

from typing import Any

import httpx
import orjson

FHIR_TYPES = ("application/fhir+json", "application/json")
NDJSON = "application/fhir+ndjson"


def empty_arrays(value: Any, path: str) -> list[str]:
    """The FHIRPath-like location of every empty array within `value`."""
    if isinstance(value, list):
        if not value:
            return [path]
        return [
            found for i, item in enumerate(value) for found in empty_arrays(item, f"{path}[{i}]")
        ]
    if isinstance(value, dict):
        return [
            found for key, item in value.items() for found in empty_arrays(item, f"{path}.{key}")
        ]
    return []


def resources_in(content_type: str, body: bytes) -> list[dict[str, Any]]:
    """The FHIR resources a response body holds: one, a line each (NDJSON), or none."""
    if content_type.startswith(NDJSON):
        return [orjson.loads(line) for line in body.splitlines() if line.strip()]
    if not content_type.startswith(FHIR_TYPES) or not body:
        return []
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    return [parsed] if isinstance(parsed, dict) and "resourceType" in parsed else []


class ResponseWalk:
    """Counts the resources walked; raises on the first that holds an empty array."""

    def __init__(self) -> None:
        self.walked = 0

    def check(self, request: httpx.Request, response: httpx.Response, body: bytes) -> None:
        """Fail if any resource in this response holds an empty array."""
        for resource in resources_in(response.headers.get("content-type", ""), body):
            self.walked += 1
            found = empty_arrays(resource, resource["resourceType"])
            assert not found, f"{request.method} {request.url} sent empty arrays at {found}"

    def install(self) -> None:
        """Walk every response of httpx's ASGI transport from now on."""
        original = httpx.ASGITransport.handle_async_request
        walk = self

        async def walked(transport: httpx.ASGITransport, request: httpx.Request) -> httpx.Response:
            response = await original(transport, request)
            body = b"".join([part async for part in response.stream])  # type: ignore[union-attr]
            response.stream = httpx.ByteStream(body)
            walk.check(request, response, body)
            return response

        httpx.ASGITransport.handle_async_request = walked  # type: ignore[method-assign]
