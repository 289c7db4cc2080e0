"""One POST of a notification Bundle to a Subscription's endpoint, and nothing else: the host
is looked up first and every address it resolves to must be allowed (`access.endpoints`:
public, or in a listed private network); the connection then goes to that very address (the
URL's host kept for the Host header, TLS server name and certificate check), so a second
lookup cannot swap in another one. Redirects are never followed: a 3xx is a failure, like any
answer but 2xx.
"""

from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx

from app.access.endpoints import Network, address_issue, resolved_addresses, target_of

FHIR_JSON = "application/fhir+json"


class Undelivered(Exception):
    """A POST that did not succeed, and why (no patient data: the reason is stored)."""


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Sequence[str],
    networks: Sequence[Network],
    seconds: float,
) -> None:
    """POST `body` to `url` (Undelivered unless the answer is 2xx)."""
    host, port = target_of(url)
    try:
        addresses = await resolved_addresses(host, port)
    except OSError:
        raise Undelivered("the endpoint's host could not be looked up") from None
    refused = address_issue(addresses, networks)
    if refused is not None:
        raise Undelivered(refused)
    sent = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    for header in headers:
        name, _, value = header.partition(":")
        sent[name.strip()] = value.strip()
    sent["Host"] = urlsplit(url).netloc.rpartition("@")[2]
    try:
        answer = await client.post(
            _pinned(url, addresses[0]),
            content=body,
            headers=sent,
            timeout=seconds,
            extensions={"sni_hostname": host},
        )
    except httpx.TimeoutException:
        raise Undelivered("the endpoint did not answer in time") from None
    except httpx.HTTPError as error:
        raise Undelivered(f"the endpoint could not be reached ({type(error).__name__})") from None
    if not 200 <= answer.status_code < 300:
        raise Undelivered(f"the endpoint answered {answer.status_code}")


def _pinned(url: str, address: str) -> str:
    """`url` with its host replaced by the address it was looked up to."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def client() -> httpx.AsyncClient:
    """The notifier's HTTP client: no redirects, no proxies from the environment."""
    return httpx.AsyncClient(follow_redirects=False, trust_env=False)
