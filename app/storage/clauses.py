"""Search criteria and the SQL each becomes: a test on the index rows of a resource.

Spec: http://hl7.org/fhir/R4/search.html (prefixes: #prefix, chaining: #chaining, _has: #has)
"""

from collections.abc import Callable

from app.criteria import Criterion, RangeValue, ReferenceValue, StringValue, TokenValue
from app.normalise import EARLIEST, LATEST
from app.storage.person_links import PARAM as LINKED_PATIENT
from app.storage.statements import Sql, sees_everything

TABLES = {
    "token": "idx_token",
    "uri": "idx_token",
    "reference": "idx_reference",
    "string": "idx_string",
    "date": "idx_date",
    "quantity": "idx_quantity",
}
_TOP_TEXT = "\U0010ffff"
# References the server computes rather than reads from the body (a relative's own Patient
# record, `person_links`): a caller may match, test or sort on them only where it may see
# the target, or they would reveal resources hidden from it.
COMPUTED = frozenset({LINKED_PATIENT})


def _token(sql: Sql, t: str, value: TokenValue) -> str:
    parts = []
    if value.code is not None:
        parts.append(f"{t}.code = {sql.arg(value.code)}")
    if value.system_given:
        system = value.system
        parts.append(f"{t}.system = {sql.arg(system)}" if system else f"{t}.system IS NULL")
    return "(" + " AND ".join(parts or ["1 = 1"]) + ")"


def _reference(sql: Sql, t: str, value: ReferenceValue) -> str:
    clause = f"{t}.target_id = {sql.arg(value.target_id)}"
    if value.target_type is not None:
        clause += f" AND {t}.target_type = {sql.arg(value.target_type)}"
    return f"({clause})"


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _string(sql: Sql, t: str, value: StringValue) -> str:
    if value.mode == "exact":
        return f"({t}.value = {sql.arg(value.folded)} AND {t}.exact = {sql.arg(value.exact)})"
    if value.mode == "contains":
        return f"({t}.value LIKE {sql.arg(_like_pattern(value.folded))} ESCAPE '\\')"
    if value.mode == "phonetic":
        return f"({t}.value = {sql.arg(value.folded)})"
    upper = _successor(value.folded)
    start = f"{t}.value >= {sql.arg(value.folded)}"
    return f"({start} AND {t}.value < {sql.arg(upper)})" if upper else f"({start})"


def _successor(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix` (code point order)."""
    while prefix:
        following = ord(prefix[-1]) + 1
        if following == 0xD800:  # surrogates cannot be stored; skip past them
            following = 0xE000
        if following <= 0x10FFFF:
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


def range_test(sql: Sql, low: str, high: str, value: RangeValue, closed: bool = False) -> str:
    """A target range [low, high) (or [low, high] for quantities) against a prefixed value.

    Dates compare ranges (search.html#prefix); quantities compare `eq`/`ne`/`ap` by the
    value's precision range and the others by the value itself.
    """
    prefix = value.prefix
    if prefix in ("eq", "ne", "ap") or not closed:
        marks: dict[str, str] = {}

        def mark(end: str) -> str:
            if end not in marks:
                marks[end] = sql.arg(value.low if end == "low" else value.high)
            return marks[end]

        def sl() -> str:
            return mark("low")

        def sh() -> str:
            return mark("high")

        lte, gte = ("<=", ">=") if closed else ("<", ">")

        def within() -> str:
            return f"({low} >= {sl()} AND {high} {'<' if closed else '<='} {sh()})"

        tests: dict[str, Callable[[], str]] = {
            "eq": within,
            "ne": lambda: f"NOT {within()}",
            "ap": lambda: f"({low} {lte} {sh()} AND {high} {gte} {sl()})",
            "gt": lambda: f"{high} > {sh()}",
            "lt": lambda: f"{low} < {sl()}",
            "ge": lambda: f"({high} > {sh()} OR {within()})",
            "le": lambda: f"({low} < {sl()} OR {within()})",
            "sa": lambda: f"{low} >= {sh()}",
            "eb": lambda: f"{high} <= {sl()}",
        }
        return f"({tests[prefix]()})"
    n = sql.arg(value.number)
    comparisons = {
        "gt": (high, ">"),
        "lt": (low, "<"),
        "ge": (high, ">="),
        "le": (low, "<="),
        "sa": (low, ">"),
        "eb": (high, "<"),
    }
    column, operator = comparisons[prefix]
    return f"({column} {operator} {n})"


def _quantity(sql: Sql, t: str, value: RangeValue) -> str:
    clause = range_test(sql, f"{t}.low", f"{t}.high", value, closed=True)
    if value.unit_given:
        if value.system:
            clause += f" AND {t}.system = {sql.arg(value.system)}"
        if value.code:
            clause += f" AND {t}.code = {sql.arg(value.code)}"
    return f"({clause})"


def _values(sql: Sql, criterion: Criterion, t: str) -> str:
    kind = criterion.kind
    if kind in ("token", "uri"):
        tests = [_token(sql, t, v) for v in criterion.values]
    elif kind == "reference":
        tests = [_reference(sql, t, v) for v in criterion.values]
    elif kind == "string":
        tests = [_string(sql, t, v) for v in criterion.values]
    elif kind == "date":
        tests = [range_test(sql, f"{t}.low", f"{t}.high", v) for v in criterion.values]
    else:
        tests = [_quantity(sql, t, v) for v in criterion.values]
    return "(" + " OR ".join(tests) + ")"


def _index_test(
    sql: Sql, criterion: Criterion, outer: str, driving: bool, bound: tuple[str, int] | None
) -> str:
    """A test on the resource `outer` through its rows in one index table."""
    t = sql.alias("t")
    table = TABLES[criterion.kind]
    conditions = [f"{t}.param = {sql.arg(criterion.param)}"]
    if criterion.missing is None:
        conditions.append(_values(sql, criterion, t))
    if driving and bound is not None:
        conditions.append(f"{t}.resource_pk {bound[0]} {sql.arg(bound[1])}")
    if criterion.param in COMPUTED:
        conditions.append(_target_visible(sql, t))
    where = " AND ".join(conditions)
    if driving and not criterion.negate and criterion.missing is None:
        return f"{outer}.pk IN (SELECT {t}.resource_pk FROM {table} {t} WHERE {where})"
    exists = f"EXISTS (SELECT 1 FROM {table} {t} WHERE {t}.resource_pk = {outer}.pk AND {where})"
    if criterion.missing is not None and criterion.kind == "reference":
        i = sql.alias("t")  # a reference by identifier alone is a value too
        exists = (
            f"({exists} OR EXISTS (SELECT 1 FROM idx_token {i} WHERE {i}.resource_pk = "
            f"{outer}.pk AND {i}.param = {sql.arg(criterion.param + ':identifier')}))"
        )
    return f"NOT {exists}" if criterion.negate or criterion.missing is True else exists


def _target_visible(sql: Sql, t: str) -> str:
    """Index row `t`'s target is a resource the caller may see: for references the server
    computes (`COMPUTED`), which the resource's body does not show."""
    if sees_everything(sql.caller):
        return "1 = 1"
    g = sql.alias("g")
    return (
        f"EXISTS (SELECT 1 FROM resource {g} WHERE {g}.resource_type = {t}.target_type AND "
        f"{g}.logical_id = {t}.target_id AND {sql.visible(g)})"
    )


def _chain(sql: Sql, criterion: Criterion, outer: str, driving: bool) -> str:
    tests = []
    for chain in criterion.values:
        c, target = sql.alias("c"), sql.alias("r")
        types = ", ".join(sql.arg(t) for t in chain.target_types)
        inner = criterion_sql(sql, chain.inner, target, driving=True)
        joined = (
            f"FROM idx_reference {c} JOIN resource {target} "
            f"ON {target}.resource_type = {c}.target_type AND {target}.logical_id = {c}.target_id "
            f"WHERE {c}.param = {sql.arg(criterion.param)} AND {c}.target_type IN ({types}) "
            f"AND {sql.visible(target)} AND {inner}"
        )
        if driving:
            tests.append(f"{outer}.pk IN (SELECT {c}.resource_pk {joined})")
        else:
            tests.append(f"EXISTS (SELECT 1 {joined} AND {c}.resource_pk = {outer}.pk)")
    return "(" + " OR ".join(tests) + ")"


def _has(sql: Sql, criterion: Criterion, outer: str) -> str:
    tests = []
    for has in criterion.values:
        h, source = sql.alias("h"), sql.alias("r")
        inner = criterion_sql(sql, has.inner, source, driving=True)
        tests.append(
            f"{outer}.logical_id IN (SELECT {h}.target_id FROM idx_reference {h} "
            f"JOIN resource {source} ON {source}.pk = {h}.resource_pk "
            f"WHERE {h}.param = {sql.arg(criterion.param)} AND {h}.target_type = "
            f"{sql.arg(has.target_type)} AND {source}.resource_type = {sql.arg(has.source_type)} "
            f"AND {sql.visible(source)} AND {inner})"
        )
    return "(" + " OR ".join(tests) + ")"


def criterion_sql(
    sql: Sql,
    criterion: Criterion,
    outer: str,
    driving: bool = False,
    bound: tuple[str, int] | None = None,
) -> str:
    """The SQL test of one criterion on the resource aliased `outer`."""
    kind = criterion.kind
    if kind == "id":
        marks = ", ".join(sql.arg(v) for v in criterion.values)
        return f"{outer}.logical_id {'NOT IN' if criterion.negate else 'IN'} ({marks})"
    if kind == "last_updated":
        low, high = f"{outer}.last_updated", f"({outer}.last_updated + 1)"
        return "(" + " OR ".join(range_test(sql, low, high, v) for v in criterion.values) + ")"
    if kind == "chain":
        return _chain(sql, criterion, outer, driving)
    if kind == "has":
        return _has(sql, criterion, outer)
    return _index_test(sql, criterion, outer, driving, bound)


_SORT_COLUMNS = {
    "string": ("idx_string", "value", "value"),
    "token": ("idx_token", "code", "code"),
    "uri": ("idx_token", "code", "code"),
    "reference": ("idx_reference", "target_id", "target_id"),
    "date": ("idx_date", "low", "high"),
    "quantity": ("idx_quantity", "low", "high"),
}


def sort_expression(sql: Sql, param: str, kind: str, descending: bool) -> str:
    """A resource's sort value for a parameter: its least value ascending, greatest descending;
    resources without one sort last either way."""
    if param == "_id":
        return "r.logical_id"
    if param == "_lastUpdated":
        return "r.last_updated"
    table, ascending_column, descending_column = _SORT_COLUMNS[kind]
    column = descending_column if descending else ascending_column
    t = sql.alias("o")
    pick = "max" if descending else "min"
    last: object
    if kind == "date":
        last = EARLIEST if descending else LATEST
    elif kind == "quantity":
        last = -1e308 if descending else 1e308
    else:
        last = "" if descending else _TOP_TEXT
    visible = f" AND {_target_visible(sql, t)}" if param in COMPUTED else ""
    return (
        f"COALESCE((SELECT {pick}({t}.{column}) FROM {table} {t} WHERE {t}.resource_pk = r.pk "
        f"AND {t}.param = {sql.arg(param)}{visible}), {sql.arg(last)})"
    )
