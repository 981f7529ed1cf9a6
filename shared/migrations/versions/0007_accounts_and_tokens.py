"""The system account under a reserved identity, squatters of it disabled; token versions.

Beat's platform jobs (backups, retention, verification) run as the system account. It
was made on first use under an email anyone could register first, and a squatter then
owned those jobs without being an admin, so they failed every night. The account now
has a role of its own, made here; a user who holds an address of the reserved domain
is disabled (signed out, schedules off) and moved off the address.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 18:30:00
"""
import uuid
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
import shared.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

SYSTEM_EMAIL = "system@assistant.invalid"
RESERVED_DOMAIN = "assistant.invalid"


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_version', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('disabled_at', shared.models.UTCDateTime(), nullable=True))

    bind = op.get_bind()
    now = sa.bindparam("now", datetime.now(timezone.utc), type_=shared.models.UTCDateTime())
    user_id = sa.bindparam("id", type_=sa.Uuid())
    # The account beat made itself (it cannot sign in: its hash is "!") becomes the system account.
    bind.execute(sa.text("UPDATE users SET role = 'system' WHERE email = :email AND password_hash = '!'"),
                 {"email": SYSTEM_EMAIL})
    squatters = bind.execute(
        sa.text("SELECT id FROM users WHERE role <> 'system' AND lower(email) LIKE :pattern")
        .columns(id=sa.Uuid()), {"pattern": f"%@{RESERVED_DOMAIN}"},
    ).scalars().all()
    for squatter in squatters:
        bind.execute(sa.text("UPDATE users SET disabled_at = :now, token_version = token_version + 1,"
                             " email = :email WHERE id = :id").bindparams(now, user_id),
                     {"id": squatter, "email": f"disabled-{squatter.hex}@{RESERVED_DOMAIN}"})
        bind.execute(sa.text("UPDATE refresh_tokens SET revoked_at = :now WHERE user_id = :id AND revoked_at IS NULL")
                     .bindparams(now, user_id), {"id": squatter})
        bind.execute(sa.text("UPDATE schedules SET enabled = false, next_run_at = NULL WHERE user_id = :id")
                     .bindparams(user_id), {"id": squatter})
    if bind.execute(sa.text("SELECT count(*) FROM users WHERE role = 'system'")).scalar() == 0:
        bind.execute(
            sa.text("INSERT INTO users (id, email, password_hash, role, timezone, digest_time, token_version,"
                    " created_at, updated_at) VALUES (:id, :email, '!', 'system', 'UTC', '07:00', 0, :now, :now)")
            .bindparams(now, user_id),
            {"id": uuid.uuid4(), "email": SYSTEM_EMAIL},
        )

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index('ux_users_system', ['role'], unique=True,
                              postgresql_where=sa.text("role = 'system'"), sqlite_where=sa.text("role = 'system'"))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ux_users_system', postgresql_where=sa.text("role = 'system'"),
                            sqlite_where=sa.text("role = 'system'"))
    # Back to what the code before this revision expects of the account beat uses.
    op.execute("UPDATE users SET role = 'admin' WHERE role = 'system'")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('disabled_at')
        batch_op.drop_column('token_version')
