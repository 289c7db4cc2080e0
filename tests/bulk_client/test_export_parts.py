"""The export client's pure parts: kick-off parameters, file names, Retry-After, the manifest."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from app.bulk_client.credentials import ClientError
from app.bulk_client.export import (
    ExportRequest,
    file_name,
    planned_files,
    retry_after,
    transient,
)


def test_the_kick_off_names_the_level_and_every_parameter_given() -> None:
    request = ExportRequest(
        patient_level=True,
        types=("Patient", "Flag"),
        since="2026-01-01T00:00:00Z",
        type_filters=("Flag?status=active", "Patient?gender=female"),
        elements=("id", "code"),
    )
    assert request.url("http://h/fhir/") == "http://h/fhir/Patient/$export"
    assert request.params() == (
        ("_type", "Patient,Flag"),
        ("_since", "2026-01-01T00:00:00Z"),
        ("_typeFilter", "Flag?status=active"),
        ("_typeFilter", "Patient?gender=female"),
        ("_elements", "id,code"),
    )
    assert ExportRequest().url("http://h/fhir") == "http://h/fhir/$export"
    assert ExportRequest().params() == ()


def test_files_get_names_of_our_making_numbered_per_type_and_kind() -> None:
    taken: dict[str, int] = {}
    names = [
        file_name(kind, name, taken)
        for kind, name in (
            ("output", "Flag"),
            ("output", "Flag"),
            ("output", "Patient"),
            ("deleted", "Bundle"),
            ("error", "OperationOutcome"),
        )
    ]
    assert names == [
        "Flag.ndjson",
        "Flag.2.ndjson",
        "Patient.ndjson",
        "deleted/Bundle.ndjson",
        "error/OperationOutcome.ndjson",
    ]


def test_a_type_that_is_not_a_type_name_never_becomes_a_path() -> None:
    manifest = {"output": [{"type": "../../etc/passwd", "url": "http://h/f/1"}]}
    assert [kind_type for _, kind_type, _, _ in planned_files(manifest)] == ["Unknown"]


def test_a_manifest_item_without_url_is_an_error() -> None:
    with pytest.raises(ClientError, match="without a url"):
        list(planned_files({"output": [{"type": "Flag"}]}))


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, 7.0), ("3", 3.0), ("999999", 3600.0), ("soon", 7.0)],
)
def test_retry_after_in_seconds_or_the_fallback(header: str | None, expected: float) -> None:
    headers = {} if header is None else {"Retry-After": header}
    assert retry_after(httpx.Response(202, headers=headers), 7.0) == expected


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    waited = retry_after(httpx.Response(202, headers={"Retry-After": when}), 1.0)
    assert 25.0 <= waited <= 30.0


def _outcome(status: int, code: str) -> httpx.Response:
    issue = {"severity": "error", "code": code, "diagnostics": "why"}
    return httpx.Response(status, json={"resourceType": "OperationOutcome", "issue": [issue]})


@pytest.mark.parametrize(
    ("response", "again"),
    [
        (_outcome(500, "processing"), False),  # the export failed as a whole
        (_outcome(500, "exception"), True),  # the poll failed, not the job
        (_outcome(503, "transient"), True),
        (_outcome(429, "throttled"), True),
        (httpx.Response(502, text="bad gateway"), True),
        (_outcome(404, "not-found"), False),
    ],
)
def test_a_status_poll_is_asked_again_only_when_its_error_is_transient(
    response: httpx.Response, again: bool
) -> None:
    assert transient(response) is again
