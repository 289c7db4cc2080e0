"""token and reference index entries in resource order; PostgreSQL statistics across columns

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WIDER = {
    "idx_token": (["param", "code", "system"], ["param", "code", "system", "resource_pk"]),
    "idx_reference": (
        ["param", "target_id", "target_type"],
        ["param", "target_id", "target_type", "resource_pk"],
    ),
}
# The planner assumes columns independent; param, system and code are anything but, and a
# tenfold underestimate of a code's rows turns a paged search into a hash of every match.
STATISTICS = {
    "st_idx_token_param_system_code": ("idx_token", "param, system, code"),
    "st_idx_reference_param_target_type": ("idx_reference", "param, target_type"),
}


def _name(table: str, columns: list[str]) -> str:
    return f"ix_{table}_{'_'.join(columns)}"


def upgrade() -> None:
    for table, (narrow, wide) in WIDER.items():
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_index(_name(table, narrow))
            batch_op.create_index(_name(table, wide), wide)
    if op.get_bind().dialect.name == "postgresql":
        for name, (table, columns) in STATISTICS.items():
            op.execute(f"CREATE STATISTICS {name} (dependencies, mcv) ON {columns} FROM {table}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")
    for table, (narrow, wide) in WIDER.items():
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_index(_name(table, wide))
            batch_op.create_index(_name(table, narrow), narrow)
