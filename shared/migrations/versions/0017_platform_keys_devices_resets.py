"""The platform's own idempotency keys in a scope of their own; devices keyed by (user, token);
password-reset links.

Internal keys (action:, schedule:, webhook:, beat:) move from `idempotency_key` to
`internal_key`, under a unique index of its own: a user's Idempotency-Key can no longer take
one first and make the platform's submission raise. Devices were unique per token alone, so
whoever knew a Web Push endpoint could register it again with their own keys.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 01:30:00
"""
from alembic import op
import sqlalchemy as sa

import shared.models

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

INTERNAL_PREFIXES = ("action:", "schedule:", "webhook:", "beat:")


def upgrade() -> None:
    # add_column and create_index need no batch mode on SQLite, so jobs keeps its version trigger.
    op.add_column('jobs', sa.Column('internal_key', sa.String(length=255), nullable=True))
    where = " OR ".join(f"idempotency_key LIKE '{prefix}%'" for prefix in INTERNAL_PREFIXES)
    op.execute(f"UPDATE jobs SET internal_key = idempotency_key, idempotency_key = NULL WHERE {where}")
    op.create_index('ux_jobs_user_internal_key', 'jobs', ['user_id', 'internal_key'], unique=True)

    with op.batch_alter_table('devices') as batch_op:
        batch_op.drop_constraint('uq_devices_platform_token_hash', type_='unique')
        batch_op.create_unique_constraint('uq_devices_user_id_platform_token_hash',
                                          ['user_id', 'platform', 'token_hash'])
        batch_op.create_index('ix_devices_token_hash', ['token_hash'])

    op.create_table(
        'password_resets',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', shared.models.UTCDateTime(), nullable=False),
        sa.Column('expires_at', shared.models.UTCDateTime(), nullable=False),
        sa.Column('used_at', shared.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_resets_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_password_resets')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_password_resets_token_hash')),
    )
    op.create_index(op.f('ix_password_resets_user_id'), 'password_resets', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_password_resets_user_id'), table_name='password_resets')
    op.drop_table('password_resets')
    # Rows of one token under several users cannot all stay: keep the newest.
    op.execute("DELETE FROM devices WHERE id IN (SELECT d.id FROM devices d JOIN devices n"
               " ON n.platform = d.platform AND n.token_hash = d.token_hash AND n.created_at > d.created_at)")
    with op.batch_alter_table('devices') as batch_op:
        batch_op.drop_index('ix_devices_token_hash')
        batch_op.drop_constraint('uq_devices_user_id_platform_token_hash', type_='unique')
        batch_op.create_unique_constraint('uq_devices_platform_token_hash', ['platform', 'token_hash'])
    op.drop_index('ux_jobs_user_internal_key', table_name='jobs')
    op.execute("UPDATE jobs SET idempotency_key = internal_key WHERE internal_key IS NOT NULL")
    # A plain DROP COLUMN (SQLite 3.35+), not batch mode: that would drop jobs_version (see 0010).
    op.execute("ALTER TABLE jobs DROP COLUMN internal_key")
