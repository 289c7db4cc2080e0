"""Reading a register (`app.reconcile.register`): the documented CSV columns, FHIR NDJSON and a
FHIR Bundle, each read into one Entry per flag; a row that cannot be reconciled kept as an Entry
with its problem, a register that cannot be read at all refused with RegisterError.

Spec: http://hl7.org/fhir/R4/nd-json.html, http://hl7.org/fhir/R4/bundle.html
"""

from pathlib import Path
from typing import Any

import orjson
import pytest

from app.flags.codes import vocabulary
from app.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM, nhs_number_is_valid
from app.reconcile.register import COLUMNS, Entry, RegisterError, read_register
from tests.factories import nhs_number

VOCABULARY = vocabulary("https://example.org/fhir")
IDENTIFIERS = "https://council.example/flag-ids"  # the identifier system given for bare values
HEADER = ",".join(COLUMNS)
SNOMED = "http://snomed.info/sct"
CHILD, OTHER_CHILD = nhs_number(4100), nhs_number(4101)


def _csv(tmp_path: Path, rows: list[str], header: str = HEADER) -> list[Entry]:
    path = tmp_path / "register.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return read_register(path, VOCABULARY, IDENTIFIERS)


def _ndjson(tmp_path: Path, resources: list[dict[str, Any]], name: str = "r.ndjson") -> list[Entry]:
    path = tmp_path / name
    path.write_bytes(b"\n".join(orjson.dumps(resource) for resource in resources) + b"\n")
    return read_register(path, VOCABULARY, IDENTIFIERS)


def _ours(code: str) -> dict[str, Any]:
    return {"coding": [{"system": VOCABULARY.flag_type_system, "code": code}]}


def _flag(
    *,
    subject: dict[str, Any],
    author: dict[str, Any],
    code: dict[str, Any] | None = None,
    status: str = "active",
    period: dict[str, Any] | None = None,
    identifier: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "status": status,
        "code": code if code is not None else _ours("child-protection-plan"),
        "subject": subject,
        "author": author,
        "period": period if period is not None else {"start": "2026-01-05"},
    }
    if identifier is not None:
        resource["identifier"] = identifier
    return resource


def _by_identifier(nhs: str = CHILD, ods: str = "9ZZ", **more: Any) -> dict[str, Any]:
    """A Flag naming its child and author by identifier (no resource in the file needed)."""
    return _flag(
        subject={"identifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs}},
        author={"identifier": {"system": ODS_SYSTEM, "value": ods}},
        **more,
    )


def _invalid(number: str) -> str:
    """`number` with its check digit wrong."""
    wrong = f"{number[:9]}{(int(number[9]) + 1) % 10}"
    assert not nhs_number_is_valid(wrong)
    return wrong


# CSV


def test_a_csv_row_with_our_code_is_read_into_an_entry(tmp_path: Path) -> None:
    entries = _csv(tmp_path, [f"{CHILD},child-protection-plan,2026-01-05,,9ZZ,"])
    assert entries == [
        Entry("line 2", CHILD, "child-protection-plan", "2026-01-05", None, "9ZZ", None, None)
    ]


def test_a_csv_row_with_a_snomed_code_is_read_as_our_equivalent_code(tmp_path: Path) -> None:
    entries = _csv(
        tmp_path,
        [
            f"{CHILD},764841000000100,2026-01-05,,9ZZ,",
            f"{OTHER_CHILD},342191000000101,2026-01-05,,9ZZ,",
        ],
    )
    assert [e.flag_type for e in entries] == ["looked-after-child", "child-protection-plan"]
    assert [e.problem for e in entries] == [None, None]


def test_a_csv_end_date_is_kept(tmp_path: Path) -> None:
    (entry,) = _csv(tmp_path, [f"{CHILD},young-carer,2026-01-05,2026-03-01,9ZZ,"])
    assert (entry.start, entry.end, entry.problem) == ("2026-01-05", "2026-03-01", None)


def test_an_empty_csv_end_date_is_none(tmp_path: Path) -> None:
    (entry,) = _csv(tmp_path, [f"{CHILD},young-carer,2026-01-05,  ,9ZZ,"])
    assert entry.end is None


def test_a_csv_identifier_given_as_system_bar_value_keeps_its_system(tmp_path: Path) -> None:
    given = "https://other.example/ids|F-1"
    (entry,) = _csv(tmp_path, [f"{CHILD},young-carer,2026-01-05,,9ZZ,{given}"])
    assert entry.identifier == ("https://other.example/ids", "F-1")


def test_a_bare_csv_identifier_takes_the_given_identifier_system(tmp_path: Path) -> None:
    (entry,) = _csv(tmp_path, [f"{CHILD},young-carer,2026-01-05,,9ZZ,F-2"])
    assert entry.identifier == (IDENTIFIERS, "F-2")


def test_a_csv_row_without_identifier_has_none(tmp_path: Path) -> None:
    (entry,) = _csv(tmp_path, [f"{CHILD},young-carer,2026-01-05,,9ZZ,"])
    assert entry.identifier is None


def test_a_csv_nhs_number_with_spaces_is_normalised(tmp_path: Path) -> None:
    spaced = f"{CHILD[:3]} {CHILD[3:6]} {CHILD[6:]}"
    (entry,) = _csv(tmp_path, [f"{spaced},young-carer,2026-01-05,,9ZZ,"])
    assert (entry.nhs_number, entry.problem) == (CHILD, None)


def test_a_csv_author_ods_code_is_upper_cased(tmp_path: Path) -> None:
    (entry,) = _csv(tmp_path, [f"{CHILD},young-carer,2026-01-05,,rzz1a,"])
    assert entry.author_ods == "RZZ1A"


def test_csv_cells_are_stripped_of_surrounding_spaces(tmp_path: Path) -> None:
    (entry,) = _csv(tmp_path, [f" {CHILD} , young-carer , 2026-01-05 , , 9ZZ , F-3 "])
    assert entry == Entry(
        "line 2", CHILD, "young-carer", "2026-01-05", None, "9ZZ", (IDENTIFIERS, "F-3"), None
    )


def test_csv_entries_say_their_line_counting_the_header_as_line_one(tmp_path: Path) -> None:
    rows = [f"{nhs_number(4200 + n)},young-carer,2026-01-05,,9ZZ," for n in range(3)]
    assert [e.where for e in _csv(tmp_path, rows)] == ["line 2", "line 3", "line 4"]


def test_csv_line_numbers_count_a_blank_line(tmp_path: Path) -> None:
    rows = [
        f"{CHILD},young-carer,2026-01-05,,9ZZ,",
        "",
        f"{OTHER_CHILD},young-carer,2026-01-05,,9ZZ,",
    ]
    assert [e.where for e in _csv(tmp_path, rows)] == ["line 2", "line 4"]


def test_a_csv_register_may_leave_out_the_optional_columns(tmp_path: Path) -> None:
    header = "nhs_number,flag_type,start_date,author_ods"
    (entry,) = _csv(tmp_path, [f"{CHILD},young-carer,2026-01-05,9ZZ"], header=header)
    assert entry == Entry("line 2", CHILD, "young-carer", "2026-01-05", None, "9ZZ", None, None)


def test_a_csv_register_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    path.write_bytes(("\ufeff" + HEADER + f"\n{CHILD},young-carer,2026-01-05,,9ZZ,\n").encode())
    (entry,) = read_register(path, VOCABULARY, IDENTIFIERS)
    assert (entry.nhs_number, entry.problem) == (CHILD, None)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        pytest.param(
            f"{_invalid(CHILD)},young-carer,2026-01-05,,9ZZ,",
            "not a valid NHS number",
            id="invalid-nhs-number",
        ),
        pytest.param(
            f"{CHILD[:9]},young-carer,2026-01-05,,9ZZ,", "not a valid NHS number", id="nine-digits"
        ),
        pytest.param(
            f"{CHILD},not-a-flag-type,2026-01-05,,9ZZ,",
            "flag type 'not-a-flag-type' is not in the safeguarding flag-type value set",
            id="unknown-flag-type",
        ),
        pytest.param(
            f"{CHILD},young-carer,05/01/2026,,9ZZ,",
            "the start date is not a date (YYYY-MM-DD)",
            id="bad-start-date",
        ),
        pytest.param(
            f"{CHILD},young-carer,20260105,,9ZZ,",
            "the start date is not a date (YYYY-MM-DD)",
            id="start-date-without-dashes",
        ),
        pytest.param(
            f"{CHILD},young-carer,,,9ZZ,",
            "the start date is not a date (YYYY-MM-DD)",
            id="no-start-date",
        ),
        pytest.param(
            f"{CHILD},young-carer,2026-01-05,2026-01-04,9ZZ,",
            "the end date is not a date on or after the start",
            id="end-before-start",
        ),
        pytest.param(
            f"{CHILD},young-carer,2026-01-05,2026-02-30,9ZZ,",
            "the end date is not a date on or after the start",
            id="end-not-a-date",
        ),
        pytest.param(
            f"{CHILD},young-carer,2026-01-05,,,",
            "no author ODS code",
            id="missing-author",
        ),
    ],
)
def test_a_csv_row_that_cannot_be_reconciled_is_kept_with_its_problem(
    tmp_path: Path, row: str, problem: str
) -> None:
    good = f"{OTHER_CHILD},young-carer,2026-01-05,,9ZZ,"
    entries = _csv(tmp_path, [row, good])
    assert [(e.where, e.problem) for e in entries] == [("line 2", problem), ("line 3", None)]


def test_a_csv_end_date_on_the_start_date_is_no_problem(tmp_path: Path) -> None:
    (entry,) = _csv(tmp_path, [f"{CHILD},young-carer,2026-01-05,2026-01-05,9ZZ,"])
    assert entry.problem is None


def test_only_the_first_problem_of_a_csv_row_is_noted(tmp_path: Path) -> None:
    (entry,) = _csv(tmp_path, [f"{_invalid(CHILD)},not-a-flag-type,someday,,,"])
    assert entry.problem == "not a valid NHS number"


def test_a_csv_iso_week_date_is_not_a_start_date(tmp_path: Path) -> None:
    (entry,) = _csv(tmp_path, [f"{CHILD},young-carer,2026-W01-1,,9ZZ,"])
    assert entry.problem == "the start date is not a date (YYYY-MM-DD)"


@pytest.mark.parametrize("column", ["nhs_number", "flag_type", "start_date", "author_ods"])
def test_a_csv_register_lacking_a_required_column_is_refused_naming_it(
    tmp_path: Path, column: str
) -> None:
    header = ",".join(c for c in COLUMNS if c != column)
    with pytest.raises(RegisterError, match=column):
        _csv(tmp_path, [",".join(["x"] * (len(COLUMNS) - 1))], header=header)


def test_a_csv_register_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    path.write_bytes(HEADER.encode() + b"\n\xff\xfe,young-carer,2026-01-05,,9ZZ,\n")
    with pytest.raises(RegisterError, match="UTF-8"):
        read_register(path, VOCABULARY, IDENTIFIERS)


def test_a_register_that_cannot_be_opened_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RegisterError, match="cannot read"):
        read_register(tmp_path / "absent.csv", VOCABULARY, IDENTIFIERS)


# NDJSON


def test_ndjson_patient_and_organization_lines_resolve_a_flags_references(
    tmp_path: Path,
) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "child-1",
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": CHILD}],
    }
    organization = {
        "resourceType": "Organization",
        "id": "council",
        "identifier": [{"system": ODS_SYSTEM, "value": "9zz"}],
    }
    flag = _flag(
        subject={"reference": "Patient/child-1"},
        author={"reference": "Organization/council"},
        code=_ours("looked-after-child"),
        identifier=[{"system": IDENTIFIERS, "value": "F-1"}],
    )
    entries = _ndjson(tmp_path, [patient, organization, flag])
    assert entries == [
        Entry(
            "line 3",
            CHILD,
            "looked-after-child",
            "2026-01-05",
            None,
            "9ZZ",
            (IDENTIFIERS, "F-1"),
            None,
        )
    ]


def test_an_ndjson_flag_may_name_child_and_author_by_identifier(tmp_path: Path) -> None:
    spaced = f"{CHILD[:3]} {CHILD[3:6]} {CHILD[6:]}"
    (entry,) = _ndjson(tmp_path, [_by_identifier(nhs=spaced, ods="rzz")])
    assert entry == Entry(
        "line 1", CHILD, "child-protection-plan", "2026-01-05", None, "RZZ", None, None
    )


def test_an_ndjson_flag_coded_in_snomed_ct_is_read_as_our_code(tmp_path: Path) -> None:
    code = {"coding": [{"system": SNOMED, "code": "764841000000100"}]}
    (entry,) = _ndjson(tmp_path, [_by_identifier(code=code)])
    assert (entry.flag_type, entry.problem) == ("looked-after-child", None)


def test_an_ndjson_flag_of_another_code_system_has_no_flag_type(tmp_path: Path) -> None:
    code = {"coding": [{"system": "https://example.org/local", "code": "young-carer"}]}
    (entry,) = _ndjson(tmp_path, [_by_identifier(code=code)])
    assert entry.flag_type is None
    assert entry.problem == (
        "flag type 'young-carer' is not in the safeguarding flag-type value set"
    )


def test_an_ndjson_period_given_as_date_times_is_read_as_dates(tmp_path: Path) -> None:
    period = {"start": "2026-01-05T09:30:00Z", "end": "2026-03-01T17:00:00+00:00"}
    (entry,) = _ndjson(tmp_path, [_by_identifier(status="inactive", period=period)])
    assert (entry.start, entry.end, entry.problem) == ("2026-01-05", "2026-03-01", None)


def test_an_ndjson_flag_identifier_is_its_first_with_system_and_value(tmp_path: Path) -> None:
    identifier = [{"value": "no-system"}, {"system": IDENTIFIERS, "value": "F-9"}]
    (entry,) = _ndjson(tmp_path, [_by_identifier(identifier=identifier)])
    assert entry.identifier == (IDENTIFIERS, "F-9")


def test_an_ndjson_flag_whose_child_is_not_named_has_a_problem(tmp_path: Path) -> None:
    flag = _flag(
        subject={"reference": "Patient/not-in-the-file"},
        author={"identifier": {"system": ODS_SYSTEM, "value": "9ZZ"}},
    )
    (entry,) = _ndjson(tmp_path, [flag])
    assert (entry.nhs_number, entry.problem) == ("", "not a valid NHS number")


def test_an_ndjson_flag_without_an_author_has_a_problem(tmp_path: Path) -> None:
    flag = _by_identifier()
    del flag["author"]
    (entry,) = _ndjson(tmp_path, [flag])
    assert (entry.author_ods, entry.problem) == ("", "no author ODS code")


def test_an_ndjson_flag_entered_in_error_has_a_problem(tmp_path: Path) -> None:
    (entry,) = _ndjson(tmp_path, [_by_identifier(status="entered-in-error")])
    assert entry.problem == "only active and inactive flags can be reconciled"


def test_an_inactive_ndjson_flag_without_period_end_has_a_problem(tmp_path: Path) -> None:
    (entry,) = _ndjson(tmp_path, [_by_identifier(status="inactive")])
    assert entry.problem is not None
    assert "period.end" in entry.problem


def test_the_problem_of_an_inactive_flag_without_end_says_it_has_none(tmp_path: Path) -> None:
    (entry,) = _ndjson(tmp_path, [_by_identifier(status="inactive")])
    assert entry.problem is not None
    assert "no period.end" in entry.problem


def test_an_inactive_ndjson_flag_with_period_end_is_no_problem(tmp_path: Path) -> None:
    period = {"start": "2026-01-05", "end": "2026-02-01"}
    (entry,) = _ndjson(tmp_path, [_by_identifier(status="inactive", period=period)])
    assert (entry.end, entry.problem) == ("2026-02-01", None)


def test_ndjson_entries_say_their_line_blank_lines_counted(tmp_path: Path) -> None:
    path = tmp_path / "register.ndjson"
    lines = [
        orjson.dumps(_by_identifier(nhs=CHILD)),
        b"",
        orjson.dumps({"resourceType": "Organization", "id": "o"}),
        orjson.dumps(_by_identifier(nhs=OTHER_CHILD)),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    entries = read_register(path, VOCABULARY, IDENTIFIERS)
    assert [(e.where, e.nhs_number) for e in entries] == [
        ("line 1", CHILD),
        ("line 4", OTHER_CHILD),
    ]


def test_ndjson_is_recognised_by_its_content_whatever_the_file_name(tmp_path: Path) -> None:
    resources = [_by_identifier(nhs=CHILD), _by_identifier(nhs=OTHER_CHILD)]
    entries = _ndjson(tmp_path, resources, name="register.json")
    assert [e.where for e in entries] == ["line 1", "line 2"]


def test_a_non_json_line_in_ndjson_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "register.ndjson"
    path.write_bytes(orjson.dumps(_by_identifier()) + b"\nnot json at all\n")
    with pytest.raises(RegisterError, match="line 2 is not JSON"):
        read_register(path, VOCABULARY, IDENTIFIERS)


def test_an_ndjson_line_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "register.ndjson"
    path.write_bytes(orjson.dumps(_by_identifier()) + b"\n[1, 2]\n")
    with pytest.raises(RegisterError, match="line 2 is not a FHIR resource"):
        read_register(path, VOCABULARY, IDENTIFIERS)


# Bundle


def test_bundle_flags_resolve_entries_by_full_url(tmp_path: Path) -> None:
    child, council = "urn:uuid:0f6b1c1e-3c1a-4d43-9a4e-1c1f8e2c0001", "urn:uuid:0f6b-council"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": child,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": CHILD}],
                },
            },
            {
                "fullUrl": council,
                "resource": {
                    "resourceType": "Organization",
                    "identifier": [{"system": ODS_SYSTEM, "value": "9ZZ"}],
                },
            },
            {
                "fullUrl": "urn:uuid:flag-1",
                "resource": _flag(
                    subject={"reference": child},
                    author={"reference": council},
                    code=_ours("elective-home-education"),
                    status="inactive",
                    period={"start": "2026-01-05", "end": "2026-04-01"},
                ),
            },
        ],
    }
    path = tmp_path / "register.json"
    path.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
    entries = read_register(path, VOCABULARY, IDENTIFIERS)
    assert entries == [
        Entry(
            "entry 2",  # its index in Bundle.entry
            CHILD,
            "elective-home-education",
            "2026-01-05",
            "2026-04-01",
            "9ZZ",
            None,
            None,
        )
    ]


def test_a_json_register_that_is_not_a_bundle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "register.json"
    path.write_bytes(orjson.dumps(_by_identifier(), option=orjson.OPT_INDENT_2))
    with pytest.raises(RegisterError, match="Bundle"):
        read_register(path, VOCABULARY, IDENTIFIERS)


def test_a_register_that_starts_like_json_but_is_not_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "register.json"
    path.write_bytes(b'{"resourceType": "Bundle", ')
    with pytest.raises(RegisterError, match="neither CSV, NDJSON nor a JSON Bundle"):
        read_register(path, VOCABULARY, IDENTIFIERS)
