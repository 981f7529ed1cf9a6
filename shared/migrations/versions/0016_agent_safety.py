"""Agent safety: previews and reject reasons on proposals, tainted threads, memories.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 01:30:00
"""
from alembic import op
import sqlalchemy as sa
import shared.models
from sqlalchemy.dialects import postgresql

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    # Neither table is `jobs`, so batch mode here leaves the jobs_version trigger alone (0010).
    with op.batch_alter_table('proposed_actions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preview', JSON, nullable=True))
        batch_op.add_column(sa.Column('reason', sa.String(length=1000), server_default='', nullable=False))
    with op.batch_alter_table('agent_threads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tainted', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table('memories',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('text', sa.String(length=500), nullable=False),
    sa.Column('source', JSON, nullable=False),
    sa.Column('created_at', shared.models.UTCDateTime(), nullable=False),
    sa.Column('updated_at', shared.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_memories_user_created', 'memories', ['user_id', 'created_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_memories_user_created', table_name='memories')
    op.drop_table('memories')
    with op.batch_alter_table('agent_threads', schema=None) as batch_op:
        batch_op.drop_column('tainted')
    with op.batch_alter_table('proposed_actions', schema=None) as batch_op:
        batch_op.drop_column('reason')
        batch_op.drop_column('preview')
