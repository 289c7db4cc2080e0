"""resources, versions, search indexes, claims

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 22:07:17.380096
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('resource',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('logical_id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.BigInteger(), nullable=False, comment='microseconds since epoch, UTC'),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=True, comment='JSON exactly as served; null if deleted'),
    sa.Column('patient_id', sa.String(length=64), nullable=True, comment='Patient compartment'),
    sa.Column('owner_org', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_resource')),
    sa.UniqueConstraint('resource_type', 'logical_id', name=op.f('uq_resource_resource_type_logical_id'))
    )
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resource_resource_type_patient_id'), ['resource_type', 'patient_id'], unique=False)

    op.create_table('resource_version',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='change sequence'),
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('logical_id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.BigInteger(), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_resource_version')),
    sa.UniqueConstraint('resource_type', 'logical_id', 'version_id', name=op.f('uq_resource_version_resource_type_logical_id_version_id'))
    )
    with op.batch_alter_table('resource_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resource_version_last_updated'), ['last_updated'], unique=False)
        batch_op.create_index(batch_op.f('ix_resource_version_resource_type_seq'), ['resource_type', 'seq'], unique=False)

    op.create_table('conditional_key',
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('match_key', sa.String(length=64), nullable=False, comment='sha256 of the normalised query'),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['resource_pk'], ['resource.pk'], name=op.f('fk_conditional_key_resource_pk_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_type', 'match_key', name=op.f('pk_conditional_key'))
    )
    op.create_table('idx_reference',
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=True),
    sa.Column('target_id', sa.String(), nullable=False, comment='logical id, or the URL if not ours')
    )
    with op.batch_alter_table('idx_reference', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idx_reference_param_target_id_target_type'), ['param', 'target_id', 'target_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_reference_resource_pk'), ['resource_pk'], unique=False)

    op.create_table('idx_token',
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('system', sa.String(), nullable=True),
    sa.Column('code', sa.String(), nullable=True)
    )
    with op.batch_alter_table('idx_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idx_token_param_code_system'), ['param', 'code', 'system'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_token_resource_pk'), ['resource_pk'], unique=False)

    op.create_table('nhs_number_claim',
    sa.Column('nhs_number', sa.String(length=10), nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['resource.pk'], name=op.f('fk_nhs_number_claim_resource_pk_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('nhs_number', name=op.f('pk_nhs_number_claim'))
    )
    with op.batch_alter_table('nhs_number_claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nhs_number_claim_resource_pk'), ['resource_pk'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('nhs_number_claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nhs_number_claim_resource_pk'))

    op.drop_table('nhs_number_claim')
    with op.batch_alter_table('idx_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_token_resource_pk'))
        batch_op.drop_index(batch_op.f('ix_idx_token_param_code_system'))

    op.drop_table('idx_token')
    with op.batch_alter_table('idx_reference', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_reference_resource_pk'))
        batch_op.drop_index(batch_op.f('ix_idx_reference_param_target_id_target_type'))

    op.drop_table('idx_reference')
    op.drop_table('conditional_key')
    with op.batch_alter_table('resource_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resource_version_resource_type_seq'))
        batch_op.drop_index(batch_op.f('ix_resource_version_last_updated'))

    op.drop_table('resource_version')
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resource_resource_type_patient_id'))

    op.drop_table('resource')
