"""Who loses sight of a resource through a write (`access.visibility.losses`): the rules of
who sees a row, applied to the row before and after, table by table."""

import pytest

from app.access.visibility import HEALTH, LOCAL_AUTHORITY, Audience, Sight, losses

A, B, X, Y = "org-a", "org-b", "la-x", "la-y"


def _sight(
    child: str | None = "c1",
    author: str | None = A,
    restricted: bool = False,
    responsible: tuple[str, ...] = (X,),
) -> Sight:
    return Sight(child, author, restricted, frozenset(responsible))


CASES = [
    # (what changed, type, before, after, who lost sight)
    ("nothing", "Condition", _sight(), _sight(), []),
    ("labelled restricted", "Condition", _sight(), _sight(restricted=True), [(HEALTH, None, A)]),
    (
        "restricted, no author",
        "Condition",
        _sight(author=None),
        _sight(None, None, True),
        [(HEALTH, None, None)],
    ),
    ("label removed", "Condition", _sight(restricted=True), _sight(), []),
    (
        "restricted, author changed",
        "Condition",
        _sight(restricted=True),
        _sight(author=B, restricted=True),
        [(HEALTH, A, None), (LOCAL_AUTHORITY, A, None)],
    ),
    ("child moves", "Patient", _sight(), _sight(responsible=(Y,)), [(LOCAL_AUTHORITY, X, None)]),
    ("still responsible", "Patient", _sight(), _sight(responsible=(X, Y)), []),
    ("the author keeps it", "Flag", _sight(author=X), _sight(author=X, responsible=()), []),
    (
        "record moved",
        "Condition",
        _sight(),
        _sight("c2", responsible=(Y,)),
        [(LOCAL_AUTHORITY, X, None)],
    ),
    ("an Organization", "Organization", _sight(None), _sight(None, B, responsible=()), []),
    (
        "restricted Organization",
        "Organization",
        _sight(None, responsible=()),
        _sight(None, restricted=True, responsible=()),
        [(HEALTH, None, A)],
    ),
]


@pytest.mark.parametrize(
    ("resource_type", "before", "after", "lost"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_who_loses_sight(
    resource_type: str, before: Sight, after: Sight, lost: list[tuple[str, str | None, str | None]]
) -> None:
    assert losses(resource_type, before, after) == [Audience(*who) for who in lost]
