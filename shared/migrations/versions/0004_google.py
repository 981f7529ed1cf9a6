"""Google integrations (encrypted OAuth tokens, sync positions) and idempotent writes to Google.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-26 02:01:21.781191
"""
from alembic import op
import sqlalchemy as sa
import shared.models
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('google_integrations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('scopes', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('refresh_token_encrypted', sa.Text(), nullable=False),
    sa.Column('access_token_encrypted', sa.Text(), nullable=True),
    sa.Column('access_token_expires_at', shared.models.UTCDateTime(), nullable=True),
    sa.Column('calendar_sync_token', sa.Text(), nullable=True),
    sa.Column('mail_history_id', sa.String(length=64), nullable=True),
    sa.Column('calendar_synced_at', shared.models.UTCDateTime(), nullable=True),
    sa.Column('mail_synced_at', shared.models.UTCDateTime(), nullable=True),
    sa.Column('last_error_code', sa.String(length=64), nullable=True),
    sa.Column('calendar_channel_id', sa.String(length=64), nullable=True),
    sa.Column('calendar_channel_resource_id', sa.String(length=255), nullable=True),
    sa.Column('calendar_channel_token_hash', sa.String(length=64), nullable=True),
    sa.Column('calendar_channel_expires_at', shared.models.UTCDateTime(), nullable=True),
    sa.Column('connected_at', shared.models.UTCDateTime(), nullable=False),
    sa.Column('created_at', shared.models.UTCDateTime(), nullable=False),
    sa.Column('updated_at', shared.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_google_integrations_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_google_integrations')),
    sa.UniqueConstraint('calendar_channel_id', name=op.f('uq_google_integrations_calendar_channel_id')),
    sa.UniqueConstraint('user_id', name=op.f('uq_google_integrations_user_id'))
    )
    op.create_table('google_writes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', shared.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_google_writes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_google_writes')),
    sa.UniqueConstraint('user_id', 'kind', 'key', name=op.f('uq_google_writes_user_id_kind_key'))
    )


def downgrade() -> None:
    op.drop_table('google_writes')
    op.drop_table('google_integrations')
