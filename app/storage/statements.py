"""How a statement that reads stored resources is built: its bound arguments, fresh table
aliases, and the filters on `resource` and `resource_version` rows.

Every statement that selects from those tables filters each of them through `Sql.visible`,
the one place a caller's access becomes SQL, placed where `NOT deleted` goes. The one other
filter is `every_live`, for the integrity checks of writes, which must see every live
resource whoever writes (a reference names a resource that exists; a relative's link to
their own record). Statements that only write, and SQLite's next-pk read under its write lock,
read no resource for anyone (`tests/storage/test_statements.py` lists them).
"""

from dataclasses import dataclass, field
from typing import Any

from app.access import Caller
from app.access.visibility import row_tests, sees_everything

__all__ = ["Sql", "every_live", "sees_everything"]


@dataclass(slots=True)
class Sql:
    """A statement being built for one caller: its arguments, and fresh aliases for it."""

    caller: Caller
    args: list[Any] = field(default_factory=list)
    aliases: int = 0

    def arg(self, value: Any) -> str:
        """A placeholder for `value`."""
        self.args.append(value)
        return f"${len(self.args)}"

    def alias(self, prefix: str) -> str:
        """A table alias not used elsewhere in the statement."""
        self.aliases += 1
        return f"{prefix}{self.aliases}"

    def visible(self, alias: str, *, live: bool = True) -> str:
        """The rows of `alias` (of `resource` or `resource_version`) that the caller may see
        (`access.visibility`); with `live`, deleted resources are left out too (`resource`
        only: `resource_version` has no `deleted` column, and reads that answer 410 for a
        deletion need its row)."""
        tests = [f"NOT {alias}.deleted"] if live else []
        tests.extend(row_tests(self.caller, alias, self.arg))
        return " AND ".join(tests) or "1 = 1"


def every_live(alias: str) -> str:
    """Every live resource, whoever asks: for the integrity checks of writes only."""
    return f"NOT {alias}.deleted"
