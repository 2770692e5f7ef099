"""back office: operator action log, per-edge table projection

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('operator_actions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('operator', sa.String(length=128), nullable=False),
    sa.Column('jurisdiction', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('operator_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operator_actions_jurisdiction'), ['jurisdiction'], unique=False)

    op.create_table('edge_tables',
    sa.Column('edge_id', sa.String(length=64), nullable=False),
    sa.Column('table_id', sa.String(length=64), nullable=False),
    sa.Column('game', sa.String(length=32), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('status_reason', sa.String(length=256), nullable=False),
    sa.Column('feed_live', sa.Boolean(), nullable=True),
    sa.Column('round_chain', sa.String(length=64), nullable=True),
    sa.Column('round_n', sa.Integer(), nullable=True),
    sa.Column('last_void_n', sa.Integer(), nullable=True),
    sa.Column('last_void_reason', sa.String(length=256), nullable=False),
    sa.Column('updated_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_ts', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('edge_id', 'table_id')
    )
    # Entries held before this revision fill the projection on the edge's next table.* entry
    # (every edge start journals table.feed for each table).


def downgrade() -> None:
    op.drop_table('edge_tables')
    with op.batch_alter_table('operator_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operator_actions_jurisdiction'))
    op.drop_table('operator_actions')
