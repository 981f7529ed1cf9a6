"""Job slots: the per-user cap on active jobs kept by a unique index, not a user-row lock.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 04:35:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slot', sa.Integer(), nullable=True))
    # The jobs active now take slots 0, 1, ... of their user, oldest first.
    op.execute(
        "UPDATE jobs SET slot = numbered.n FROM ("
        " SELECT id, row_number() OVER (PARTITION BY user_id ORDER BY created_at, id) - 1 AS n"
        " FROM jobs WHERE status IN ('queued', 'running')) AS numbered"
        " WHERE jobs.id = numbered.id"
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_user_active')
        batch_op.create_index('ux_jobs_user_active_slot', ['user_id', 'slot'], unique=True,
                              postgresql_where=ACTIVE, sqlite_where=ACTIVE)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ux_jobs_user_active_slot')
        batch_op.create_index('ix_jobs_user_active', ['user_id'], unique=False,
                              postgresql_where=ACTIVE, sqlite_where=ACTIVE)
        batch_op.drop_column('slot')
