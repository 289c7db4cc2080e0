"""What the server holds, read over HTTP as any FHIR R4 client would: the register
organisation's Organization by ODS code, the children by NHS number (batched `_search`s),
and every Flag that organisation authored (a paged search by `author`). Never the database.
Spec: http://hl7.org/fhir/R4/search.html, http://hl7.org/fhir/R4/http.html#search
"""

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import httpx
import orjson

from app.bulk_client.credentials import ClientError
from app.flags.codes import FLAG_TYPES, Vocabulary
from app.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM
from app.reconcile.matching import ServerFlag

PAGE = 500  # resources asked for per page (the server may give fewer)
BATCH = 100  # NHS numbers or ids per batched search (the server allows 100 values)
LOOKUPS = 8  # searches by one NHS number sent at once
SEARCHES = 4  # batched searches sent at once
RETRIES = 5  # attempts of a request met by a network fault, 429 or 5xx
FHIR_JSON = "application/fhir+json"
Progress = Callable[[int], None]  # told how many more resources were read


class Authorizing(Protocol):
    """A source of the Authorization header (`bulk_client.credentials.Credentials`)."""

    async def header(self, client: httpx.AsyncClient, server: str) -> dict[str, str]: ...


class Remote:
    """A FHIR server's base URL, an HTTP client and the caller's credentials."""

    def __init__(self, client: httpx.AsyncClient, server: str, credentials: Authorizing) -> None:
        self.client, self.server, self.credentials = client, server.rstrip("/"), credentials
        self.requests = 0

    async def request(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, **more: Any
    ) -> httpx.Response:
        """One request with a current token; relative URLs are under the FHIR base. A network
        fault or an answer of 429 or 5xx is tried again, the same request (every request sent
        is a read, or a transaction whose X-Request-ID makes a second sending answer once)."""
        target = url if url.startswith(("http://", "https://")) else f"{self.server}/{url}"
        sent = {"Accept": FHIR_JSON} | (headers or {})
        for attempt in range(RETRIES):
            sent |= await self.credentials.header(self.client, self.server)
            self.requests += 1
            last = attempt == RETRIES - 1
            try:
                response = await self.client.request(method, target, headers=sent, **more)
            except httpx.TransportError as exc:
                if last:
                    raise ClientError(
                        f"the server could not be reached: {type(exc).__name__}"
                    ) from exc
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            if last or not (response.status_code == 429 or response.status_code >= 500):
                return response
            await asyncio.sleep(_wait(response, attempt))
        raise AssertionError("unreachable")

    async def json(self, method: str, url: str, **more: Any) -> dict[str, Any]:
        """A request that must answer 200 with a JSON object (ClientError otherwise)."""
        response = await self.request(method, url, **more)
        if response.status_code != 200:
            raise ClientError(
                f"{method} {url.split('?')[0]}: {response.status_code} {_said(response)}"
            )
        try:
            found = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise ClientError(f"{method} {url.split('?')[0]}: the answer is not JSON") from exc
        if not isinstance(found, dict):
            raise ClientError(f"{method} {url.split('?')[0]}: not a FHIR resource")
        return found

    async def searchset(
        self, first: str, progress: Progress | None = None, **more: Any
    ) -> list[dict[str, Any]]:
        """Every match of a search, following its `next` links."""
        found: list[dict[str, Any]] = []
        page: dict[str, Any] | None = await self.json(
            "POST" if "data" in more else "GET", first, **more
        )
        while page is not None:
            resources = [
                e["resource"]
                for e in page.get("entry") or []
                if isinstance(e, dict)
                and isinstance(e.get("resource"), dict)
                and (e.get("search") or {}).get("mode", "match") == "match"
            ]
            found += resources
            if progress is not None:
                progress(len(resources))
            following = next(
                (
                    link.get("url")
                    for link in page.get("link") or []
                    if link.get("relation") == "next"
                ),
                None,
            )
            page = await self.json("GET", following) if following else None
        return found


async def canonical_base(remote: Remote) -> str:
    """The server's canonical base, from the URL of its flag-type CodeSystem."""
    found = await remote.json("GET", f"CodeSystem/{FLAG_TYPES}")
    url = str(found.get("url") or "")
    suffix = f"/CodeSystem/{FLAG_TYPES}"
    if not url.endswith(suffix):
        raise ClientError(f"CodeSystem/{FLAG_TYPES} has no canonical URL; give --canonical-base")
    return url.removesuffix(suffix)


async def organisation_id(remote: Remote, ods: str) -> str:
    """The server's id of the Organization with ODS code `ods` (ClientError unless one)."""
    found = await remote.searchset(f"Organization?identifier={ODS_SYSTEM}|{ods}&_count=2")
    if len(found) != 1:
        raise ClientError(f"{len(found)} Organizations here have ODS code {ods}; expected one")
    return str(found[0]["id"])


async def children(
    remote: Remote, nhs_numbers: Iterable[str], progress: Progress | None = None
) -> dict[str, str]:
    """NHS number -> the server's Patient id, for those of `nhs_numbers` it holds: batched
    searches first, then one search by exact NHS number for each not found (a local authority
    sees a child it is not yet responsible for only by such a search)."""
    wanted = sorted(set(nhs_numbers))
    found = await _children_batched(remote, wanted, progress)
    unseen = [number for number in wanted if number not in found]
    for start in range(0, len(unseen), LOOKUPS):
        looked = await asyncio.gather(*(_child(remote, n) for n in unseen[start : start + LOOKUPS]))
        found |= {number: patient for number, patient in looked if patient is not None}
    return found


async def _child(remote: Remote, number: str) -> tuple[str, str | None]:
    """(NHS number, the id of the one Patient with it, if any is held)."""
    patients = await remote.searchset(f"Patient?identifier={NHS_NUMBER_SYSTEM}|{number}")
    return number, str(patients[0]["id"]) if patients else None


async def _children_batched(
    remote: Remote, wanted: list[str], progress: Progress | None
) -> dict[str, str]:
    found: dict[str, str] = {}
    batches = [wanted[start : start + BATCH] for start in range(0, len(wanted), BATCH)]
    for first in range(0, len(batches), SEARCHES):
        sent = batches[first : first + SEARCHES]
        for patients in await asyncio.gather(*(_by_numbers(remote, b) for b in sent)):
            for patient in patients:
                number = nhs_number_of(patient)
                if number is not None:
                    found.setdefault(number, str(patient["id"]))
        if progress is not None:
            progress(sum(map(len, sent)))
    return found


async def _by_numbers(remote: Remote, numbers: list[str]) -> list[dict[str, Any]]:
    """The Patients carrying any of `numbers` (one batched search)."""
    form = {
        "identifier": ",".join(f"{NHS_NUMBER_SYSTEM}|{n}" for n in numbers),
        "_count": str(PAGE),
        "_elements": "identifier",
    }
    return await remote.searchset("Patient/_search", data=form)


async def nhs_numbers_of(remote: Remote, patient_ids: Iterable[str]) -> dict[str, str]:
    """Patient id -> NHS number, for Patients read by id in batches."""
    wanted = sorted(set(patient_ids))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), BATCH):
        form = {
            "_id": ",".join(wanted[start : start + BATCH]),
            "_count": str(PAGE),
            "_elements": "identifier",
        }
        for patient in await remote.searchset("Patient/_search", data=form):
            number = nhs_number_of(patient)
            if number is not None:
                found[str(patient["id"])] = number
    return found


async def flags_by(
    remote: Remote, organisation: str, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Every Flag the Organization (server id) authored, whatever its status."""
    return await remote.searchset(
        f"Flag?author=Organization/{organisation}&_count={PAGE}", progress
    )


def nhs_number_of(patient: dict[str, Any]) -> str | None:
    """A Patient's NHS number, if it carries one."""
    for identifier in patient.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") == NHS_NUMBER_SYSTEM:
            value = identifier.get("value")
            return str(value) if value else None
    return None


def subject_of(flag: dict[str, Any]) -> str:
    """The id of the Patient a held Flag is about ("" if it names none)."""
    reference = str((flag.get("subject") or {}).get("reference") or "")
    return reference.rpartition("Patient/")[2] if "Patient/" in reference else ""


def server_flag(
    flag: dict[str, Any], nhs_by_patient: dict[str, str], vocabulary: Vocabulary
) -> ServerFlag:
    """A held Flag as the matching sees it."""
    found = flag.get("period")
    period: dict[str, Any] = found if isinstance(found, dict) else {}
    patient_id = subject_of(flag)
    identifiers = tuple(
        (str(i["system"]), str(i["value"]))
        for i in flag.get("identifier") or []
        if isinstance(i, dict) and i.get("system") and i.get("value")
    )
    return ServerFlag(
        id=str(flag["id"]),
        version=str((flag.get("meta") or {}).get("versionId") or ""),
        patient_id=patient_id,
        nhs_number=nhs_by_patient.get(patient_id),
        flag_type=vocabulary.flag_type(flag.get("code")),
        start=str(period.get("start") or "")[:10],
        end=str(period["end"])[:10] if period.get("end") else None,
        status=str(flag.get("status")),
        identifiers=identifiers,
        resource=flag,
    )


def _wait(response: httpx.Response, attempt: int) -> float:
    """Seconds before trying again: the server's Retry-After (up to 30), else 0.5 s doubling."""
    given = response.headers.get("Retry-After", "")
    return min(float(given), 30.0) if given.isdigit() else 0.5 * 2**attempt


def _said(response: httpx.Response) -> str:
    """The diagnostics of an OperationOutcome answer, or the start of its text."""
    try:
        found = response.json()
    except ValueError:
        return response.text[:200]
    issues = found.get("issue") if isinstance(found, dict) else None
    if isinstance(issues, list) and issues and isinstance(issues[0], dict):
        return str(issues[0].get("diagnostics") or issues[0].get("code") or "")
    return response.text[:200]
