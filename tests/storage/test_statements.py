"""Every SQL text in app/ that reads `resource` or `resource_version` is built where a filter
is applied: the caller's (`Sql.visible`) or, for the integrity checks of writes,
`every_live`. A static companion to tests/fhir/test_visibility.py, which checks the statements
routes actually run: this one also covers code no test happens to reach."""

import ast
import re
from pathlib import Path

from app.access import Caller
from app.storage.statements import Sql, every_live, sees_everything

APP = Path(__file__).resolve().parents[2] / "app"
READS = re.compile(r"\b(?:FROM|JOIN)\s+resource(?:_version)?\b")
WRITES = re.compile(r"^\s*(?:INSERT|UPDATE|DELETE)\b|^\s*WITH \w+ AS \(\s*(?:INSERT|UPDATE)")
FILTERS = ("visible(", "every_live(", "_where(")  # query._where adds Sql.visible
# Statements that read the tables without either filter, and why that is right.
WHO_HELD = "an auditor's search by a child's identifier: every Patient that held it, ids only"
UNFILTERED = {
    "SELECT COALESCE(MAX(pk), 0) FROM resource": "the next pks, under SQLite's write lock",
    "SELECT v.logical_id, v.body FROM resource_version v WHERE v.resource_type = 'Patient' AND "
    "position($1 in v.body) > 0": WHO_HELD,
    "SELECT v.logical_id, v.body FROM resource_version v WHERE v.resource_type = 'Patient' AND "
    "instr(v.body, $1) > 0": WHO_HELD,
}
# The filter itself: its subqueries read only index rows, which only live resources have.
THE_FILTER = "access/visibility.py"
MIGRATIONS = (
    "storage/migrations/"  # they read every row to rebuild columns: no caller to filter for
)


def _sql_literals(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    """(node, text) of every string or f-string, the f-string's literal parts joined."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
            found.append((node, "".join(str(p) for p in parts)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node, node.value))
    return found


def _enclosing(tree: ast.Module, target: ast.AST) -> ast.AST:
    """The function holding `target`, or the module-level statement if it is in none."""
    best: ast.AST = tree
    scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for node in [*tree.body, *scopes]:
        deeper = best is tree or getattr(node, "lineno", 0) >= getattr(best, "lineno", 0)
        if deeper and any(child is target for child in ast.walk(node)):
            best = node
    return best


def _unfiltered_reads(root: Path = APP) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative == THE_FILTER or relative.startswith(MIGRATIONS):
            continue
        source = path.read_text()
        tree = ast.parse(source)
        for node, text in _sql_literals(tree):
            if not READS.search(text) or WRITES.match(text) or text.strip() in UNFILTERED:
                continue
            scope = ast.get_source_segment(source, _enclosing(tree, node)) or source
            if not any(name in scope for name in FILTERS):
                problems.append(f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}: {text}")
    return problems


def test_every_read_of_the_resource_tables_is_built_with_a_filter() -> None:
    assert _unfiltered_reads() == []


def test_the_scan_finds_an_unfiltered_read(tmp_path: Path) -> None:
    (tmp_path / "leak.py").write_text(
        'async def peek(conn):\n    return await conn.fetch("SELECT body FROM resource r")\n'
    )
    assert _unfiltered_reads(tmp_path) == ["leak.py:2: SELECT body FROM resource r"]


def test_the_filter_hides_deleted_rows_and_the_types_a_caller_may_not_read() -> None:
    everyone, flags = Caller("everyone"), Caller("flags", readable_types=frozenset({"Flag"}))
    assert Sql(everyone).visible("r") == "NOT r.deleted" == every_live("r")
    assert Sql(everyone).visible("v", live=False) == "1 = 1"
    restricted = Sql(flags)
    assert restricted.visible("r") == "NOT r.deleted AND r.resource_type IN ($1)"
    assert restricted.args == ["Flag"]
    assert Sql(Caller("none", readable_types=frozenset())).visible("r", live=False) == "1 = 0"
    assert sees_everything(everyone) and not sees_everything(flags)
