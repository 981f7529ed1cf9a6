"""Repeating tasks and the user's locale: tasks.repeat / repeat_start, task_completions, users.locale.

Plain ADD COLUMN rather than batch mode: SQLite adds nullable columns (and one with a
constant default) in place, so `tasks` keeps its partial reminder index untouched.

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-07 01:30:00
"""
from alembic import op
import sqlalchemy as sa
import shared.models

revision = '0014'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('tasks', sa.Column('repeat', sa.String(length=256), nullable=True))
    op.add_column('tasks', sa.Column('repeat_start', shared.models.UTCDateTime(), nullable=True))
    op.add_column('users', sa.Column('locale', sa.String(length=35), server_default=sa.text("'en-US'"),
                                     nullable=False))
    op.create_table('task_completions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('task_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('due_at', shared.models.UTCDateTime(), nullable=True),
    sa.Column('next_due_at', shared.models.UTCDateTime(), nullable=True),
    sa.Column('created_at', shared.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_task_completions_task_id_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_task_completions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_completions'))
    )
    op.create_index('ix_task_completions_task_created', 'task_completions', ['task_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_task_completions_user_id'), 'task_completions', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_task_completions_user_id'), table_name='task_completions')
    op.drop_index('ix_task_completions_task_created', table_name='task_completions')
    op.drop_table('task_completions')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locale')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('repeat_start')
        batch_op.drop_column('repeat')
