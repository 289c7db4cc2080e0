"""Paging cursors that this server did not issue for the search at hand: tampered values of
the wrong type or out of range, the wrong number of keys, not JSON, or a real cursor of another
`_sort`. Each is a 400 naming `_cursor` before any SQL runs (never a database error).

Spec: http://hl7.org/fhir/R4/http.html#paging
"""

import base64
import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import factories as f
from tests.dates import HYPOTHESIS
from tests.http import create, outcome_expressions, reference

HUGE = 2**63


def cursor(document: object) -> str:
    """A cursor as the server shapes them: unpadded URL-safe base64 of JSON."""
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sorted_by(sort: str, **params: str) -> dict[str, str]:
    """Query parameters, with `_sort` unless the search is in the default order."""
    return params | ({"_sort": sort} if sort else {})


async def refused(client: httpx.AsyncClient, path: str, raw: str, sort: str = "") -> None:
    response = await client.get(path, params=sorted_by(sort, _cursor=raw, _count="1"))
    assert response.status_code == 400, f"{path} _cursor={raw}: {response.text}"
    assert outcome_expressions(response) == ["_cursor"]


async def _next_cursor(client: httpx.AsyncClient, sort: str) -> str:
    page = (await client.get("/Patient", params=sorted_by(sort, _count="1"))).json()
    url = next(link["url"] for link in page["link"] if link["relation"] == "next")
    return str(httpx.URL(url).params["_cursor"])


async def _patients(client: httpx.AsyncClient) -> None:
    for given_name, born in (("Amy", "2015-03-01"), ("Ben", "9999-12-31"), ("Cal", "0001")):
        await create(client, f.patient(given=given_name, birth_date=born))


TAMPERED: list[tuple[str, Any]] = [
    ("", {"k": ["x"], "b": False}),
    ("", {"k": [HUGE], "b": False}),
    ("", {"k": [-HUGE - 1], "b": False}),
    ("", {"k": [1.5], "b": False}),
    ("", {"k": [True], "b": False}),
    ("", {"k": [None], "b": False}),
    ("", {"k": [[1]], "b": False}),
    ("", {"k": [], "b": False}),
    ("", {"k": [1, 2], "b": False}),
    ("", {"k": [1], "b": "no"}),
    ("", {"k": [1]}),
    ("", {"k": 1, "b": False}),
    ("", [1, False]),
    ("", "k"),
    ("", b"not json"),
    ("", b"\xff\xfe"),
    ("", {"k": [1], "b": False, "s": "birthdate"}),
    ("birthdate", {"k": ["x", 1], "b": False}),
    ("birthdate", {"k": [1.5, 1], "b": False}),
    ("birthdate", {"k": [2**62 + 1, 1], "b": False}),
    ("birthdate", {"k": [1], "b": False}),
    ("birthdate", {"k": [1, "1"], "b": False}),
    ("birthdate", {"k": [1, 1], "b": False, "s": "-birthdate"}),
    ("-_lastUpdated", {"k": ["2020", 1], "b": False}),
    ("-_lastUpdated", {"k": [HUGE, 1], "b": False}),
    ("family", {"k": [5, 1], "b": False}),
    ("family", {"k": ["a\u0000b", 1], "b": False}),
    ("family", {"k": ["a" * 5000, 1], "b": False}),
    ("_id", {"k": [1, 1], "b": True}),
    ("family,birthdate", {"k": ["smith", "x", 1], "b": False}),
    ("family,birthdate", {"k": ["smith", 1], "b": False}),
]


@pytest.mark.parametrize(("sort", "document"), TAMPERED, ids=[str(d)[:60] for _, d in TAMPERED])
async def test_a_tampered_cursor_is_400_naming_it(
    client: httpx.AsyncClient, sort: str, document: Any
) -> None:
    await _patients(client)
    await refused(client, "/Patient", cursor(document), sort)


@pytest.mark.parametrize("raw", ["%%%", "x", "", "e30", "=" * 8, "a" * 5001])
async def test_a_cursor_that_is_not_base64_json_is_400(client: httpx.AsyncClient, raw: str) -> None:
    await refused(client, "/Patient", raw)


@pytest.mark.parametrize(
    ("issued_under", "used_under"),
    [
        ("birthdate", "family"),
        ("family", "given"),
        ("birthdate", "-birthdate"),
        ("_lastUpdated", "birthdate"),
        ("family", "_id"),
        ("family,birthdate", "family"),
        ("", "_id"),
    ],
)
async def test_a_cursor_of_another_sort_is_400(
    client: httpx.AsyncClient, issued_under: str, used_under: str
) -> None:
    await _patients(client)
    foreign = await _next_cursor(client, issued_under)
    await refused(client, "/Patient", foreign, used_under)


@pytest.mark.parametrize("sort", ["", "birthdate", "-birthdate", "family", "-_lastUpdated", "_id"])
async def test_a_cursor_is_followed_under_its_own_sort(
    client: httpx.AsyncClient, sort: str
) -> None:
    await _patients(client)
    issued = await _next_cursor(client, sort)
    response = await client.get("/Patient", params=sorted_by(sort, _count="1", _cursor=issued))
    assert response.status_code == 200, response.text
    assert len(response.json().get("entry", [])) == 1


async def test_a_well_typed_cursor_at_the_extremes_pages_from_there(
    client: httpx.AsyncClient,
) -> None:
    """Values of the right type at the edges of their range are a position, not an error."""
    await _patients(client)
    for sort, keys in (("", [HUGE - 1]), ("birthdate", [2**62, -HUGE]), ("family", ["", 0])):
        params = sorted_by(sort, _cursor=cursor({"k": keys, "b": False}))
        response = await client.get("/Patient", params=params)
        assert response.status_code == 200, response.text


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=6,
)


@HYPOTHESIS
@given(
    sort=st.sampled_from(["", "birthdate", "-family", "_lastUpdated,_id"]),
    keys=st.lists(JSON, max_size=3),
    backwards=JSON,
)
async def test_no_cursor_document_is_a_server_error(
    client: httpx.AsyncClient, sort: str, keys: list[Any], backwards: Any
) -> None:
    """Whatever a cursor decodes to, the answer is a page or a 400 naming `_cursor`."""
    raw = cursor({"k": keys, "b": backwards})
    response = await client.get("/Patient", params=sorted_by(sort, _cursor=raw))
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert outcome_expressions(response) == ["_cursor"]


async def test_a_flag_search_cursor_is_checked_too(client: httpx.AsyncClient) -> None:
    child = reference(await create(client, f.patient()))
    await create(client, f.flag(subject=child))
    await refused(client, "/Flag", cursor({"k": ["x", 1], "b": False}), "date")
    await refused(client, f"/Patient/{child.split('/')[1]}/Flag", cursor({"k": ["x"], "b": False}))


@pytest.mark.parametrize("raw", ["x", "-1", "1.5", "9" * 19, str(HUGE), "%C2%B9"])
@pytest.mark.parametrize("path", ["/_history", "/Patient/_history"])
async def test_a_history_cursor_that_is_not_a_change_number_is_400(
    client: httpx.AsyncClient, path: str, raw: str
) -> None:
    await refused(client, path, raw)
