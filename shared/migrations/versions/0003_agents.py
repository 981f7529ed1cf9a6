"""AI agents: conversation threads, proposed actions awaiting approval, and token usage.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 02:01:48.527805
"""
from alembic import op
import sqlalchemy as sa
import shared.models
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agent_threads',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('created_at', shared.models.UTCDateTime(), nullable=False),
    sa.Column('updated_at', shared.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_agent_threads_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_threads'))
    )
    with op.batch_alter_table('agent_threads', schema=None) as batch_op:
        batch_op.create_index('ix_agent_threads_user_created', ['user_id', 'created_at', 'id'], unique=False)

    op.create_table('ai_usage',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=True),
    sa.Column('agent_type', sa.String(length=64), nullable=False),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.Column('created_at', shared.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_ai_usage_job_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_ai_usage_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_usage'))
    )
    with op.batch_alter_table('ai_usage', schema=None) as batch_op:
        batch_op.create_index('ix_ai_usage_user_created', ['user_id', 'created_at'], unique=False)

    op.create_table('proposed_actions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('action_job_id', sa.Uuid(), nullable=True),
    sa.Column('decided_at', shared.models.UTCDateTime(), nullable=True),
    sa.Column('created_at', shared.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['action_job_id'], ['jobs.id'], name=op.f('fk_proposed_actions_action_job_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_proposed_actions_job_id_jobs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_proposed_actions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposed_actions'))
    )
    with op.batch_alter_table('proposed_actions', schema=None) as batch_op:
        batch_op.create_index('ix_proposed_actions_job', ['job_id'], unique=False)

    op.create_table('thread_messages',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('thread_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', shared.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_thread_messages_job_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['thread_id'], ['agent_threads.id'], name=op.f('fk_thread_messages_thread_id_agent_threads'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_thread_messages_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_thread_messages'))
    )
    with op.batch_alter_table('thread_messages', schema=None) as batch_op:
        batch_op.create_index('ix_thread_messages_thread_created', ['thread_id', 'created_at', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('thread_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_thread_messages_thread_created')

    op.drop_table('thread_messages')
    with op.batch_alter_table('proposed_actions', schema=None) as batch_op:
        batch_op.drop_index('ix_proposed_actions_job')

    op.drop_table('proposed_actions')
    with op.batch_alter_table('ai_usage', schema=None) as batch_op:
        batch_op.drop_index('ix_ai_usage_user_created')

    op.drop_table('ai_usage')
    with op.batch_alter_table('agent_threads', schema=None) as batch_op:
        batch_op.drop_index('ix_agent_threads_user_created')

    op.drop_table('agent_threads')
