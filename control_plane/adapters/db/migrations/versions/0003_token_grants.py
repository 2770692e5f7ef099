"""token grants: the record of operator and admin tokens minted (closes the bootstrap secret)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('token_grants',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('sub', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('jurisdiction', sa.String(length=16), nullable=False),
    sa.Column('issuer', sa.String(length=160), nullable=False),
    sa.Column('issued_ts', sa.BigInteger(), nullable=False),
    sa.Column('expires_ts', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('token_grants')
