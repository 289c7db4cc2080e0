"""Hostile input on every route: never a 500, always an OperationOutcome, nothing half-written.

Each case sends one kind of hostile input to every route and names the status it expects on the
routes where that input matters (by route tag); every other route must answer as it does to a
well-formed request. Body cases go to the body routes of every hosted type; elsewhere the types
take turns. The database is empty and writes carry a resource that breaks a rule (a bad
identifier.use: 422), so no write can succeed and `_history` must stay empty.
"""

import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.http import FHIR_JSON, create

ID = "hostile-1"
TYPES = ("Patient", "Organization", "Flag", "Condition", "RelatedPerson")
PATCH_JSON = "application/json-patch+json"
OVER_LIMIT = 64 * 1024 + 1
XML = b'<Patient xmlns="http://hl7.org/fhir"/>'
Expect = dict[str, int | tuple[int, str]]  # route tag -> status, or (status, issue expression)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    baseline: int  # the status of a well-formed request on an empty database
    tags: frozenset[str]


def _route(method: str, path: str, baseline: int, *tags: str) -> Route:
    return Route(method, path, baseline, frozenset(tags))


ROUTES = (
    _route("GET", "/metadata", 200, "fhir"),
    _route("GET", "/_history", 200, "fhir", "paged", "since"),
    _route("GET", "/{type}", 200, "fhir", "typed", "search", "paged"),
    _route("POST", "/{type}/_search", 200, "fhir", "typed", "search", "paged", "form"),
    _route("GET", "/Patient/{id}/Flag", 200, "fhir", "id", "search", "paged"),
    _route("POST", "/{type}", 422, "fhir", "typed", "body", "create"),
    _route("PUT", "/{type}", 422, "fhir", "typed", "body", "cond-url", "if-match"),
    _route("DELETE", "/{type}", 200, "fhir", "typed", "cond-url"),
    _route("GET", "/{type}/_history", 200, "fhir", "typed", "paged", "since"),
    _route("GET", "/{type}/{id}", 404, "fhir", "typed", "id"),
    _route("PUT", "/{type}/{id}", 422, "fhir", "typed", "id", "put-id", "body", "if-match"),
    _route("PATCH", "/{type}/{id}", 404, "fhir", "typed", "id", "patch", "if-match"),
    _route("DELETE", "/{type}/{id}", 200, "fhir", "typed", "id", "delete-id", "if-match"),
    _route("GET", "/{type}/{id}/_history", 404, "fhir", "typed", "id", "paged", "since"),
    _route("GET", "/{type}/{id}/_history/{vid}", 404, "fhir", "typed", "id"),
    _route("GET", "http://test/_ping", 200, "health"),
    _route("GET", "http://test/_status", 200, "health"),
)


def late(resource_type: str, **changes: Any) -> dict[str, Any]:
    """A structurally valid resource that breaks a rule (422), so it is never stored."""
    made = {
        "Patient": f.patient,
        "Organization": f.organization,
        "Flag": lambda: f.flag(subject="Patient/absent"),
        "Condition": lambda: f.condition(subject="Patient/absent"),
        "RelatedPerson": lambda: f.related_person(patient="Patient/absent"),
    }[resource_type if resource_type in TYPES else "Patient"]()
    return made | {"id": ID, "identifier": [{"use": "bogus", "value": "hostile"}]} | changes


Body = Callable[[str], bytes | AsyncIterator[bytes]]  # resource type -> request content


def raw(data: bytes) -> Body:
    return lambda _type: data


def resource(**changes: Any) -> Body:
    return lambda resource_type: json.dumps(late(resource_type, **changes)).encode()


def nested(levels: int) -> dict[str, Any]:
    """An extension nested `levels` deep (two JSON levels each): valid FHIR, deep JSON."""
    extension: dict[str, Any] = {"url": "http://example.org/x", "valueString": "deep"}
    for _ in range(levels):
        extension = {"url": "http://example.org/x", "extension": [extension]}
    return extension


def chunked(_type: str) -> AsyncIterator[bytes]:
    """A body over the limit sent without Content-Length."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"resourceType":"Patient","text":{"div":"'
        for _ in range(OVER_LIMIT // 8192 + 1):
            yield b"x" * 8192
        yield b'"}}'

    return chunks()


@dataclass(frozen=True)
class Case:
    name: str
    expect: Expect = field(default_factory=dict)
    body: Body | None = None  # sent to every route (PATCH gets it as json-patch+json)
    content_type: str | None = FHIR_JSON  # None: no Content-Type header
    headers: dict[str, str | bytes] = field(default_factory=dict)
    query: str = ""
    criteria: str | None = None  # on search and conditional URLs, and as If-None-Exist
    type: str | None = None
    id: str = ID
    vid: str = "1"


PARSE, TOO_BIG = {"body": 400, "patch": 400}, {"body": 413, "patch": 413}
RT: Expect = {"body": (400, "resourceType"), "patch": 400}
CT: Expect = {"body": (415, "Content-Type"), "patch": 415}


def element(name: str) -> Expect:
    return {"body": (400, f"{{type}}.{name}"), "patch": 400}


BODY_CASES = [
    Case("empty-body", PARSE, raw(b"")),
    Case("whitespace-body", PARSE, raw(b" \r\n\t")),
    Case("null", PARSE, raw(b"null")),
    Case("json-array", {"body": 400, "patch": 404}, raw(b"[]")),
    Case("array-of-resource", PARSE, lambda t: json.dumps([late(t)]).encode()),
    Case("json-string", PARSE, raw(b'"Patient"')),
    Case("json-number", PARSE, raw(b"42")),
    Case("trailing-garbage", PARSE, lambda t: json.dumps(late(t)).encode() + b"}x"),
    Case("deep-array-5000", PARSE, raw(b"[" * 5000 + b"]" * 5000)),
    Case("deep-object-5000", PARSE, raw(b'{"a":' * 5000 + b"1" + b"}" * 5000)),
    Case("deep-extension-200", PARSE, resource(extension=[nested(200)])),
    Case("int-over-64-bits", PARSE, raw(b'{"resourceType":"Patient","a":99999999999999999999}')),
    Case("number-infinite", PARSE, raw(b'{"resourceType":"Patient","a":-1e400}')),
    Case("nul-escaped", PARSE, resource(language="en\u0000")),
    Case("nul-byte", PARSE, raw(b'{"resourceType":"Patient","language":"e\x00n"}')),
    Case("nul-in-key", PARSE, raw(b'{"resourceType":"Patient","\\u0000":1}')),
    Case("invalid-utf8", PARSE, raw(b'{"resourceType":"Patient","language":"\xff\xfe"}')),
    Case("lone-surrogate", PARSE, raw(b'{"resourceType":"Patient","language":"\\ud800"}')),
    Case("utf8-bom", PARSE, lambda t: b"\xef\xbb\xbf" + json.dumps(late(t)).encode()),
    Case("utf16", PARSE, lambda t: json.dumps(late(t)).encode("utf-16"), f"{FHIR_JSON}; utf-16"),
    Case("xml-as-json", PARSE, raw(XML)),
    Case("xml-no-content-type", {"body": 400, "patch": 415}, raw(XML), None),
    Case("garbage-no-content-type", {"body": RT["body"], "patch": 415}, raw(b"{}"), None),
    Case("content-type-fhir-xml", CT, raw(XML), "application/fhir+xml"),
    Case("content-type-xml", CT, raw(XML), "application/xml"),
    Case("content-type-text-plain", CT, resource(), "text/plain"),
    Case("content-type-form", CT, raw(b"a=1"), "application/x-www-form-urlencoded"),
    Case("content-type-multipart", CT, resource(), "multipart/form-data; boundary=x"),
    Case(
        "content-type-garbage",
        CT | {"form": 415},
        resource(),
        None,
        {"content-type": b"\xff/\x00"},
    ),
    Case("huge-content-length", TOO_BIG, resource(text="x" * OVER_LIMIT)),
    Case("huge-chunked", TOO_BIG, chunked),
    Case(
        "content-length-5000-digits",
        TOO_BIG | {"form": 413},
        resource(),
        headers={"content-length": "9" * 5000},
    ),
    Case("content-length-superscript", {"patch": 400}, resource(), headers={"content-length": "²"}),
    Case("missing-resourceType", RT, raw(b'{"id":"hostile-1"}')),
    Case("resourceType-null", RT, resource(resourceType=None)),
    Case("resourceType-number", RT, resource(resourceType=5)),
    Case("resourceType-other", RT, resource(resourceType="Basic")),
    Case("resourceType-unknown", RT, resource(resourceType="Hostile")),
    Case("resourceType-lowercase", RT, resource(resourceType="patient")),
    Case("unknown-element", element("hostile"), resource(hostile=1)),
    Case("name-is-number", element("name"), resource(name=5)),
    Case("birthDate-2020-13-45", element("birthDate"), resource(birthDate="2020-13-45")),
    Case("meta-is-string", element("meta"), resource(meta="x")),
    Case("contained-unknown-type", PARSE, resource(contained=[{"resourceType": "Hostile"}])),
    Case("emoji-and-bidi-text", {"patch": 400}, resource(language="\U0001f600\u202e\u200d")),
    pytest.param(
        Case("boolean-as-string", element("active"), resource(active="yes"), type="Patient"),
        marks=pytest.mark.xfail(strict=True, reason="fhir.resources coerces 'yes' to True"),
    ),
]

ACCEPT, FORMAT = {"fhir": (406, "Accept")}, {"fhir": (406, "_format")}
STRICT: dict[str, str | bytes] = {"prefer": "handling=strict"}
ID_CASE, BAD_URL = {"put-id": (400, "id"), "id": 404}, {"cond-url": 400, "create": 400}
BAD_CRITERIA: Expect = {"search": 400, **BAD_URL}
REQUEST_CASES = [
    Case("accept-fhir-xml", ACCEPT, headers={"accept": "application/fhir+xml"}),
    Case("accept-xml", ACCEPT, headers={"accept": "application/xml, text/xml;q=0.9"}),
    Case("accept-garbage", ACCEPT, headers={"accept": b";;;,\x00,\xff"}),
    Case("format-xml", FORMAT, query="_format=xml"),
    Case("format-empty", FORMAT, query="_format="),
    Case("if-match-garbage", {"if-match": (400, "If-Match")}, headers={"if-match": "seven"}),
    Case("if-match-huge", {"if-match": 400}, headers={"if-match": 'W/"99999999999999999999"'}),
    Case("if-match-nul", {"if-match": 400}, headers={"if-match": 'W/"1"\x00'}),
    Case("if-match-unknown", {"patch": 404, "if-match": 412}, headers={"if-match": 'W/"9"'}),
    Case("prefer-garbage", {}, headers={"prefer": b"return=;;,=,==handling\x00,\xff"}),
    Case(
        "prefer-strict",
        dict.fromkeys(("search", "cond-url", "create", "put-id", "patch", "delete-id"), 400),
        headers=STRICT,
        query="hostile=1",
    ),
    Case("headers-nul-and-latin1", {}, headers={"x-request-id": "a\x00b", "prefer": b"\xff"}),
    Case("header-huge", {}, headers={"x-request-id": "x" * 60_000}),
    Case("count-negative", {"paged": (400, "_count")}, query="_count=-1"),
    Case("count-abc", {"paged": (400, "_count")}, query="_count=abc"),
    Case("count-zero", {"since": (400, "_count")}, query="_count=0"),
    Case("count-superscript", {"paged": 400}, query="_count=%C2%B2"),
    Case("count-over-64-bits", {}, query="_count=99999999999999999999"),
    Case("count-5000-digits", {}, query="_count=" + "9" * 5000),
    Case("since-garbage", {"since": (400, "_since")}, query="_since=garbage"),
    Case("since-nul", {"since": 400}, query="_since=2020-01-01%00"),
    Case("since-9999-12-31", {}, query="_since=9999-12-31"),
    Case("since-year-1-plus-14h", {}, query="_since=0001-01-01T00:00:00%2B14:00"),
    Case("cursor-garbage", {"paged": (400, "_cursor")}, query="_cursor=garbage"),
    Case("cursor-over-64-bits", {"paged": 400}, query="_cursor=99999999999999999999"),
    Case("cursor-5000-digits", {"paged": 400}, query="_cursor=" + "9" * 5000),
    Case("cursor-superscript", {"paged": 400}, query="_cursor=%C2%B9"),
    Case("unknown-parameter", {"cond-url": 400}, query="hostile=1&%FF%00=%FF"),
    Case("no-criteria", BAD_URL, criteria=""),
    Case("control-only-criteria", BAD_URL, criteria="_count=1"),
    Case("unknown-criteria", BAD_URL, criteria="hostile=x"),
    Case("garbage-criteria", BAD_URL, criteria="%%%&&&==="),
    Case("empty-value", BAD_CRITERIA, criteria="identifier="),
    Case("nul-value", BAD_CRITERIA, criteria="identifier=a%00b"),
    Case("nul-in-id-value", BAD_CRITERIA, criteria="_id=a%00"),
    Case("bad-modifier", BAD_CRITERIA, criteria="identifier:above=x"),
    Case("wrong-type-modifier", BAD_CRITERIA, criteria="subject:Patient=Group/1", type="Flag"),
    Case("21-parameters", BAD_CRITERIA, criteria="&".join(f"identifier=a{n}" for n in range(21))),
    Case("101-values", BAD_CRITERIA, criteria="_id=" + ",".join(["a"] * 101)),
    Case("escapes", {}, criteria="identifier=a\\|b|c\\,d,\\\\,|,\\&_id=\\"),
    Case("absolute-url", {}, criteria="subject=http://x.example/Patient/1", type="Condition"),
    Case("own-base-url", {}, criteria="patient=http://test/fhir/Patient/1", type="Flag"),
    Case("emoji-value", {}, criteria="identifier=%F0%9F%98%80|%E2%80%AE"),
    Case("long-value", {}, criteria="identifier=" + "x" * 10_000),
    Case("max-code-point-prefix", {}, criteria="family=%F4%8F%BF%BF", type="Patient"),
    Case(
        "chain-too-deep",
        BAD_CRITERIA,
        criteria="patient.organization.partof.partof.name=x",
        type="Flag",
    ),
    Case("has-without-parameter", BAD_CRITERIA, criteria="_has:Flag:patient=x", type="Patient"),
    Case("sort-unknown", {"search": (400, "_sort")}, query="_sort=shoe-size"),
    Case("include-unknown-type", {"search": (400, "_include")}, query="_include=Nope:x"),
    Case(
        "cursor-tampered",
        {"paged": (400, "_cursor")},
        query="_cursor=eyJrIjpbeyJhIjoxfV0sImIiOmZhbHNlfQ",
    ),
    Case("total-garbage", {"search": (400, "_total")}, query="_total=some"),
    Case("summary-garbage", {"search": (400, "_summary")}, query="_summary=TRUE"),
    Case("id-300-chars", ID_CASE, id="a" * 300),
    Case("id-encoded-slash", {"id": 404}, id="a%2Fb"),
    Case("id-percent", ID_CASE, id="%25"),
    Case("id-nul", ID_CASE, id="a%00"),
    Case("id-invalid-utf8", ID_CASE, id="%FF%FE"),
    Case("id-emoji", ID_CASE, id="%F0%9F%98%80"),
    Case("version-superscript", {}, vid="%C2%B2"),
    Case("version-over-64-bits", {}, vid="99999999999999999999"),
    Case("version-negative", {}, vid="-1"),
    Case("type-unknown", {"typed": 404}, type="UnknownType"),
    Case("type-lowercase", {"typed": 404}, type="patient"),
    Case("type-nul", {"typed": 404}, type="Patient%00"),
    Case("type-300-chars", {"typed": 404}, type="P" * 300),
]


def _expected(case: Case, route: Route) -> tuple[int, str | None]:
    for tag, outcome in case.expect.items():
        if tag in route.tags:
            return outcome if isinstance(outcome, tuple) else (outcome, None)
    return route.baseline, None


def _types(case: Case, index: int, route: Route) -> tuple[str, ...]:
    if case.type is not None:
        return (case.type,)
    if case.body is not None and route.tags & {"body", "patch"}:
        return TYPES
    return (TYPES[(index + len(case.name)) % len(TYPES)],)


def _request(case: Case, route: Route, resource_type: str) -> dict[str, Any]:
    url = route.path.format(type=resource_type, id=case.id, vid=case.vid)
    query, headers = [case.query] if case.query else [], {}
    if "cond-url" in route.tags:
        query.insert(0, "identifier=hostile" if case.criteria is None else case.criteria)
    elif "search" in route.tags and case.criteria:
        query.insert(0, case.criteria)
    elif "create" in route.tags and case.criteria is not None:
        headers["if-none-exist"] = case.criteria
    content, content_type = None, case.content_type
    if "form" in route.tags:  # resource bodies are not for it; its own body is a form
        content, content_type = b"", "application/x-www-form-urlencoded"
    elif case.body is not None:
        content = case.body(resource_type)
        if "patch" in route.tags and content_type and "json" in content_type:
            content_type = PATCH_JSON
    elif "patch" in route.tags:
        content, content_type = b'[{"op":"add","path":"/language","value":"en"}]', PATCH_JSON
    elif "body" in route.tags:
        content = json.dumps(late(resource_type)).encode()
    if content is not None and content_type is not None:
        headers["content-type"] = content_type
    url += ("&" if "?" in url else "?") + "&".join(query) if query else ""
    headers |= {
        k: v if isinstance(v, bytes) else v.encode("latin-1") for k, v in case.headers.items()
    }
    return {"method": route.method, "url": url, "content": content, "headers": headers}


async def send(client: httpx.AsyncClient, **request: Any) -> httpx.Response:
    """The response; an exception the app let escape (a 500) fails the test, naming the route."""
    try:
        return await client.request(**request)
    except Exception as exc:  # the ASGI transport re-raises what no handler caught
        raise AssertionError(f"{request['method']} {request['url'][:120]}: {exc!r:.300}") from exc


def assert_outcome(response: httpx.Response, expression: str | None = None) -> None:
    """An error response is an OperationOutcome in FHIR JSON, naming `expression` if given."""
    assert response.headers["content-type"].startswith(FHIR_JSON), response.headers
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"], body
    assert all(issue["severity"] in ("error", "warning") for issue in body["issue"]), body
    if expression is not None:
        found = [e for issue in body["issue"] for e in issue.get("expression", [])]
        assert expression in found, body


async def history_size(client: httpx.AsyncClient) -> int:
    response = await client.get("/_history", params={"_count": "500"})
    assert response.status_code == 200, response.text
    return len(response.json().get("entry", []))


@pytest.mark.parametrize("case", BODY_CASES + REQUEST_CASES, ids=lambda case: case.name)
async def test_hostile_input_on_every_route(client: httpx.AsyncClient, case: Case) -> None:
    for index, route in enumerate(ROUTES):
        for resource_type in _types(case, index, route):
            request = _request(case, route, resource_type)
            response = await send(client, **request)
            status, expression = _expected(case, route)
            where = f"{request['method']} {request['url'][:120]}"
            assert response.status_code == status, f"{where}: {response.text[:500]}"
            if status >= 400:
                assert_outcome(response, expression and expression.format(type=resource_type))
    assert await history_size(client) == 0


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("POST", "/Patient/123", 405),
        ("PATCH", "/Patient", 405),
        ("POST", "/Patient/_history", 405),
        ("PUT", "/Patient/1/_history/1", 405),
        ("OPTIONS", "/Patient", 405),
        ("POST", "http://test/_ping", 405),
        ("GET", "/UnknownType", 404),
        ("GET", "/Patient/1/2/3/4/5", 404),
        ("GET", "http://test/nowhere", 404),
    ],
    ids=str,
)
async def test_405_and_404_are_operation_outcomes(
    client: httpx.AsyncClient, method: str, url: str, status: int
) -> None:
    response = await send(client, method=method, url=url, content=b"{}")
    assert response.status_code == status
    assert_outcome(response)


def op(name: str, path: str, **members: Any) -> dict[str, Any]:
    return {"op": name, "path": path, **members}


EXTENSION = op("add", "/extension", value=[{"url": "http://example.org/x", "valueString": "x"}])
COPY_BOMB = [EXTENSION] + [op("copy", "/extension/-", **{"from": "/extension"})] * 20
DEEP_BY_ADDS = [
    op("add", "/extension" + "/0/extension" * 30 * n, value=[nested(30)]) for n in (0, 1, 2)
]
PATCHES = [  # (id, document, status, expression); "Flag." ones patch a Flag, the rest a Patient
    ("not-a-list", {"op": "remove", "path": "/gender"}, 400, None),
    ("operation-not-an-object", [5], 400, "[0].op"),
    ("missing-op", [{"path": "/gender"}], 400, "[0].op"),
    ("unknown-op", [op("frobnicate", "/gender")], 400, "[0].op"),
    ("missing-path", [{"op": "remove"}], 400, "[0].path"),
    ("path-not-a-pointer", [op("remove", "gender")], 400, "[0].path"),
    ("path-bad-escape", [op("remove", "/~2")], 400, "[0].path"),
    ("missing-value", [op("add", "/language")], 400, "[0].value"),
    ("missing-from", [op("copy", "/x")], 400, "[0].from"),
    ("from-not-a-string", [op("move", "/x", **{"from": 5})], 400, "[0].from"),
    ("path-absent", [op("replace", "/nope/0", value=1)], 422, None),
    ("index-over-64-bits", [op("add", "/name/99999999999999999999", value={})], 422, None),
    ("test-fails", [op("test", "/gender", value="male")], 422, None),
    ("changes-id", [op("replace", "/id", value="other")], 422, "Patient.id"),
    ("removes-id", [op("remove", "/id")], 422, "Patient.id"),
    ("changes-resourceType", [op("replace", "/resourceType", value="Flag")], 422, "resourceType"),
    ("removes-resourceType", [op("remove", "/resourceType")], 422, "resourceType"),
    ("root-to-array", [op("replace", "", value=[])], 422, "resourceType"),
    ("bad-birthDate", [op("add", "/birthDate", value="2020-13-45")], 400, "Patient.birthDate"),
    ("unknown-element", [op("add", "/hostile", value=1)], 400, "Patient.hostile"),
    ("nul-value", [op("add", "/language", value="\u0000")], 400, None),
    ("deep-value", [op("add", "/extension", value=[nested(200)])], 400, None),
    ("deep-by-adds", DEEP_BY_ADDS, 400, None),
    ("copy-doubling-bomb", COPY_BOMB, 422, None),
    ("removes-required-element", [op("remove", "/subject")], 400, "Flag.subject"),
]


@pytest.mark.parametrize(
    ("document", "status", "expression"), [pytest.param(*p, id=name) for name, *p in PATCHES]
)
async def test_malformed_json_patch_changes_nothing(
    client: httpx.AsyncClient, document: Any, status: int, expression: str | None
) -> None:
    patient = await create(client, f.patient())
    flag = await create(client, f.flag(subject=f"Patient/{patient['id']}"))
    target = flag if (expression or "").startswith("Flag.") else patient
    url = f"/{target['resourceType']}/{target['id']}"
    headers = {"content-type": PATCH_JSON}
    response = await send(client, method="PATCH", url=url, json=document, headers=headers)
    assert response.status_code == status, response.text
    assert_outcome(response, expression)
    assert (await client.get(url)).json() == target
    assert await history_size(client) == 2


EXTERNAL = "http://other.example/fhir/Patient/1"
DECIMAL = {"url": "http://example.org/x", "valueDecimal": 1e20}
BIG = secrets.token_hex(3000)  # 6000 characters, over the ~2700 bytes a btree entry can hold
ODD = [  # (id, resource made for a Patient id, search that finds it)
    ("emoji-and-bidi-text", lambda p: f.patient(family="\U0001f600\u202eévé"), None),
    ("absolute-reference", lambda p: f.condition(subject=EXTERNAL), f"subject={EXTERNAL}"),
    ("own-base-reference", lambda p: f.flag(subject=f"http://test/fhir/Patient/{p}"), "patient"),
    ("decimal-1e20", lambda p: f.patient() | {"extension": [DECIMAL]}, None),
    ("identifier-6000-chars", lambda p: f.organization(ods=BIG), f"identifier={BIG}"),
    (
        "reference-6000-chars",
        lambda p: f.condition(subject=f"http://x.example/{BIG}"),
        f"subject=http://x.example/{BIG}",
    ),
]


@pytest.mark.parametrize(("build", "search"), [pytest.param(*o, id=n) for n, *o in ODD])
async def test_odd_but_acceptable_resources_are_stored(
    client: httpx.AsyncClient,
    build: Callable[[str], dict[str, Any]],
    search: str | None,
) -> None:
    patient = await create(client, f.patient())
    body = build(patient["id"])
    response = await send(client, method="POST", url=f"/{body['resourceType']}", json=body)
    assert response.status_code == 201, response.text
    stored = response.json()
    assert (await client.get(f"/{body['resourceType']}/{stored['id']}")).json() == stored
    if search is not None:
        query = f"patient={patient['id']}" if search == "patient" else search
        found = (await client.get(f"/{body['resourceType']}?{query}")).json()
        assert [entry["resource"]["id"] for entry in found.get("entry", [])] == [stored["id"]]
