"""Setting a register against the flags a server holds (`app.reconcile.matching`): each entry
new, the same, changed or conflicting, each held active flag no entry names missing; matching
by identifier first, else by child, flag type and start; and the plan's counts and work."""

import pytest

from app.reconcile.matching import (
    CATEGORIES,
    CHANGED,
    CONFLICTING,
    MISSING,
    NEW,
    SAME,
    Difference,
    Plan,
    ServerFlag,
    desired_status,
    reconcile,
)
from app.reconcile.register import Entry
from tests.factories import nhs_number

ORG = "9ZZ"
TODAY = "2026-06-01"
CPP = "child-protection-plan"
LAC = "looked-after-child"
IDS = "https://council.example/flag-ids"
A, B, C = (nhs_number(5100 + n) for n in range(3))
CHILDREN = {A: "patient-a", B: "patient-b", C: "patient-c"}


def _entry(
    nhs: str = A,
    flag_type: str | None = CPP,
    start: str = "2026-01-05",
    end: str | None = None,
    *,
    author: str = ORG,
    identifier: tuple[str, str] | None = None,
    problem: str | None = None,
    where: str = "line 2",
) -> Entry:
    return Entry(where, nhs, flag_type, start, end, author, identifier, problem)


def _held(
    id: str = "f1",
    nhs: str | None = A,
    flag_type: str | None = CPP,
    start: str = "2026-01-05",
    end: str | None = None,
    *,
    status: str = "active",
    identifiers: tuple[tuple[str, str], ...] = (),
) -> ServerFlag:
    patient = CHILDREN.get(nhs or "", "patient-x")
    return ServerFlag(id, "1", patient, nhs, flag_type, start, end, status, identifiers, {})


def _plan(entries: list[Entry], held: list[ServerFlag]) -> Plan:
    return reconcile(entries, ORG, CHILDREN, held, TODAY)


# desired_status


@pytest.mark.parametrize(
    ("end", "status"),
    [
        (None, "active"),
        ("2026-12-31", "active"),
        ("2026-06-02", "active"),
        (TODAY, "inactive"),
        ("2026-05-31", "inactive"),
    ],
)
def test_a_listed_flag_is_active_until_its_end_date_has_come(end: str | None, status: str) -> None:
    assert desired_status(_entry(end=end), TODAY) == status


# new, same, changed


def test_an_entry_no_held_flag_matches_is_new() -> None:
    entry = _entry()
    assert _plan([entry], []).differences == [Difference(NEW, entry)]


def test_an_entry_matching_a_held_flag_in_every_field_is_the_same() -> None:
    entry, flag = _entry(), _held()
    assert _plan([entry], [flag]).differences == [Difference(SAME, entry, flag)]


def test_an_end_date_that_has_come_changes_the_flag_to_inactive() -> None:
    entry, flag = _entry(end="2026-03-01"), _held()
    (difference,) = _plan([entry], [flag]).differences
    assert difference == Difference(
        CHANGED,
        entry,
        flag,
        (("status", "active", "inactive"), ("end", None, "2026-03-01")),
    )


def test_an_end_date_of_today_changes_the_flag_to_inactive() -> None:
    (difference,) = _plan([_entry(end=TODAY)], [_held()]).differences
    assert difference.category == CHANGED
    assert ("status", "active", "inactive") in difference.changes


def test_an_end_date_in_the_future_is_recorded_and_the_flag_stays_active() -> None:
    entry, flag = _entry(end="2026-12-31"), _held()
    (difference,) = _plan([entry], [flag]).differences
    assert difference == Difference(CHANGED, entry, flag, (("end", None, "2026-12-31"),))


def test_an_ended_held_flag_matching_an_ended_entry_is_the_same() -> None:
    entry = _entry(end="2026-03-01")
    flag = _held(end="2026-03-01", status="inactive")
    assert _plan([entry], [flag]).differences == [Difference(SAME, entry, flag)]


def test_an_inactive_held_flag_the_register_lists_without_end_is_made_active_again() -> None:
    entry, flag = _entry(), _held(end="2026-03-01", status="inactive")
    (difference,) = _plan([entry], [flag]).differences
    assert difference.category == CHANGED
    assert difference.changes == (("status", "inactive", "active"), ("end", "2026-03-01", None))


def test_an_active_held_flag_past_its_end_date_is_changed_to_inactive() -> None:
    entry, flag = _entry(end="2026-03-01"), _held(end="2026-03-01")
    (difference,) = _plan([entry], [flag]).differences
    assert difference.changes == (("status", "active", "inactive"),)


# missing


def test_an_active_held_flag_no_entry_names_is_missing() -> None:
    entry, named, unnamed = _entry(), _held("f1"), _held("f2", nhs=B)
    plan = _plan([entry], [named, unnamed])
    assert plan.differences == [Difference(SAME, entry, named), Difference(MISSING, flag=unnamed)]


def test_an_inactive_held_flag_no_entry_names_is_not_reported() -> None:
    plan = _plan([], [_held(end="2026-03-01", status="inactive")])
    assert plan.differences == []


def test_missing_flags_come_after_every_entry_in_register_order() -> None:
    first, second = _entry(B, where="line 2"), _entry(C, where="line 3")
    held = [_held("f9", nhs=A, start="2025-01-01"), _held("f3", nhs=A, start="2025-02-02")]
    plan = _plan([first, second], held)
    assert [(d.category, d.entry, d.flag) for d in plan.differences] == [
        (NEW, first, None),
        (NEW, second, None),
        (MISSING, None, held[1]),
        (MISSING, None, held[0]),
    ]


# conflicting


def test_an_entry_with_a_problem_conflicts_for_that_reason() -> None:
    entry = _entry(problem="not a valid NHS number")
    plan = _plan([entry], [])
    assert plan.differences == [Difference(CONFLICTING, entry, reason="not a valid NHS number")]


def test_an_entry_another_organisation_raised_conflicts() -> None:
    entry = _entry(B, author="RZZ")
    (difference,) = _plan([entry], []).differences
    assert difference.category == CONFLICTING
    assert difference.reason is not None
    assert "RZZ" in difference.reason
    assert ORG in difference.reason


def test_the_same_key_listed_twice_conflicts_both_times_and_nothing_is_missing() -> None:
    first, second = _entry(where="line 2"), _entry(where="line 5")
    plan = _plan([first, second], [_held()])
    assert [d.category for d in plan.differences] == [CONFLICTING, CONFLICTING]
    assert [d.reason for d in plan.differences] == [
        "the same flag is listed 2 times (line 2, line 5)"
    ] * 2


def test_the_same_identifier_listed_twice_conflicts_even_with_different_fields() -> None:
    first = _entry(A, identifier=(IDS, "F-1"), where="line 2")
    second = _entry(B, LAC, "2026-02-02", identifier=(IDS, "F-1"), where="line 3")
    plan = _plan([first, second], [_held(identifiers=((IDS, "F-1"),))])
    assert [d.category for d in plan.differences] == [CONFLICTING, CONFLICTING]
    assert plan.counts()[MISSING] == 0


def test_entries_differing_only_in_end_date_are_the_same_flag_listed_twice() -> None:
    first, second = _entry(where="line 2"), _entry(end="2026-03-01", where="line 3")
    plan = _plan([first, second], [])
    assert [d.category for d in plan.differences] == [CONFLICTING, CONFLICTING]


def test_an_entry_for_a_child_not_held_here_conflicts() -> None:
    stranger = nhs_number(5900)
    entry = _entry(stranger)
    (difference,) = _plan([entry], []).differences
    assert difference == Difference(
        CONFLICTING, entry, reason="no child with this NHS number is held here"
    )


def test_a_conflicting_entry_changes_nothing() -> None:
    entry = _entry(end="2026-03-01", problem="no author ODS code", author="")
    (difference,) = _plan([entry], [_held()]).differences
    assert (difference.category, difference.changes) == (CONFLICTING, ())


# identifier and key


def test_an_identifier_matches_its_held_flag_even_with_a_different_start() -> None:
    by_identifier = _held("f1", start="2026-01-05", identifiers=((IDS, "F-1"),))
    by_key = _held("f2", start="2026-02-02")
    entry = _entry(start="2026-02-02", identifier=(IDS, "F-1"))
    plan = _plan([entry], [by_identifier, by_key])
    assert plan.differences == [
        Difference(CHANGED, entry, by_identifier, (("start", "2026-01-05", "2026-02-02"),)),
        Difference(MISSING, flag=by_key),
    ]


def test_an_identifier_match_reports_a_changed_flag_type_and_child() -> None:
    flag = _held(nhs=A, flag_type=CPP, identifiers=((IDS, "F-1"),))
    entry = _entry(B, LAC, identifier=(IDS, "F-1"))
    (difference,) = _plan([entry], [flag]).differences
    assert difference.flag == flag
    assert difference.changes == (("flag_type", CPP, LAC), ("nhs_number", A, B))


def test_an_identifier_no_held_flag_carries_is_new_though_its_key_matches() -> None:
    entry, flag = _entry(identifier=(IDS, "F-2")), _held(identifiers=((IDS, "F-1"),))
    plan = _plan([entry], [flag])
    assert plan.differences == [Difference(NEW, entry), Difference(MISSING, flag=flag)]


def test_an_entry_without_identifier_matches_by_child_flag_type_and_start() -> None:
    flag = _held(identifiers=((IDS, "F-1"),))
    entry = _entry()
    assert _plan([entry], [flag]).differences == [Difference(SAME, entry, flag)]


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(_entry(B), id="other-child"),
        pytest.param(_entry(flag_type=LAC), id="other-flag-type"),
        pytest.param(_entry(start="2026-01-06"), id="other-start"),
    ],
)
def test_an_entry_without_identifier_differing_in_its_key_does_not_match(entry: Entry) -> None:
    flag = _held()
    plan = _plan([entry], [flag])
    assert plan.differences == [Difference(NEW, entry), Difference(MISSING, flag=flag)]


def test_a_held_flag_of_no_known_flag_type_is_never_matched_by_key() -> None:
    entry, flag = (
        _entry(flag_type=None, problem="flag type 'x' is not in ..."),
        _held(flag_type=None),
    )
    plan = _plan([entry], [flag])
    assert [(d.category, d.flag) for d in plan.differences] == [
        (CONFLICTING, None),
        (MISSING, flag),
    ]


def test_of_two_held_flags_with_one_key_an_entry_claims_an_active_one() -> None:
    ended = _held("a", end="2026-03-01", status="inactive")
    active, other = _held("b"), _held("c")
    entry = _entry()
    plan = _plan([entry], [ended, other, active])
    assert plan.differences == [Difference(SAME, entry, active), Difference(MISSING, flag=other)]


def test_two_entries_claim_two_held_flags_with_one_key_each_once() -> None:
    first, second = _entry(where="line 2"), _entry(where="line 3")
    held = [_held("a"), _held("b")]
    plan = _plan([first, second], held)
    assert [d.flag for d in plan.differences] == held
    assert plan.counts()[MISSING] == 0


# entered in error


def test_held_flags_entered_in_error_are_ignored() -> None:
    wrong = _held("e1", status="entered-in-error", identifiers=((IDS, "F-1"),))
    wrong_too = _held("e2", status="entered-in-error")
    by_identifier, by_key = _entry(identifier=(IDS, "F-1")), _entry(B)
    plan = _plan([by_identifier, by_key], [wrong, wrong_too])
    assert plan.differences == [Difference(NEW, by_identifier), Difference(NEW, by_key)]


def test_a_held_flag_entered_in_error_is_never_missing() -> None:
    assert _plan([], [_held(status="entered-in-error")]).differences == []


# the plan


def _mixed_plan() -> Plan:
    entries = [
        _entry(A, CPP, where="line 2"),  # same
        _entry(A, LAC, end="2026-03-01", where="line 3"),  # changed
        _entry(B, CPP, where="line 4"),  # new
        _entry(C, CPP, author="RZZ", where="line 5"),  # conflicting
        _entry(C, LAC, where="line 6"),  # new
    ]
    held = [_held("f1", A, CPP), _held("f2", A, LAC), _held("f3", B, LAC)]  # f3 missing
    return _plan(entries, held)


def test_plan_counts_every_category_zero_included() -> None:
    assert _mixed_plan().counts() == {NEW: 2, CHANGED: 1, SAME: 1, MISSING: 1, CONFLICTING: 1}
    assert _plan([], []).counts() == dict.fromkeys(CATEGORIES, 0)
    assert list(_plan([], []).counts()) == list(CATEGORIES)


def test_plan_to_do_is_the_new_changed_and_missing_records_in_order() -> None:
    to_do = _mixed_plan().to_do()
    assert [(d.category, d.entry.where if d.entry else d.flag and d.flag.id) for d in to_do] == [
        (CHANGED, "line 3"),
        (NEW, "line 4"),
        (NEW, "line 6"),
        (MISSING, "f3"),
    ]


def test_reconcile_takes_any_iterables() -> None:
    entry, flag = _entry(), _held()
    plan = reconcile(iter([entry]), ORG, CHILDREN, iter([flag]), TODAY)
    assert plan.differences == [Difference(SAME, entry, flag)]
