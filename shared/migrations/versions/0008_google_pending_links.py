"""Pending Google links: exchanged tokens wait for the app of the user who asked.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 19:00:00
"""
from alembic import op
import sqlalchemy as sa
import shared.models
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('google_pending_links',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('refresh_token_encrypted', sa.Text(), nullable=False),
    sa.Column('access_token_encrypted', sa.Text(), nullable=True),
    sa.Column('access_token_expires_at', shared.models.UTCDateTime(), nullable=True),
    sa.Column('created_at', shared.models.UTCDateTime(), nullable=False),
    sa.Column('expires_at', shared.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_google_pending_links_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_google_pending_links')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_google_pending_links_code_hash'))
    )
    with op.batch_alter_table('google_pending_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_google_pending_links_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_google_pending_links_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('google_pending_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_google_pending_links_user_id'))
        batch_op.drop_index(batch_op.f('ix_google_pending_links_expires_at'))
    op.drop_table('google_pending_links')
