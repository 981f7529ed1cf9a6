"""users.has_notification_targets: whether the user has a device or a webhook.

Kept in the same transaction as every device and webhook created or deleted
(shared.notifications.refresh_targets), so a finished job of a user with neither skips
the lookup of devices and webhooks. Existing users get it from what they have now.

A plain ADD COLUMN (no batch mode): on SQLite a batch ALTER recreates the table, which
would drop triggers; `users` has none, but ADD COLUMN with a constant default needs no copy.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 01:30:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('users', sa.Column('has_notification_targets', sa.Boolean(), server_default=sa.false(),
                                     nullable=False))
    op.execute(
        "UPDATE users SET has_notification_targets = ("
        "EXISTS (SELECT 1 FROM devices WHERE devices.user_id = users.id)"
        " OR EXISTS (SELECT 1 FROM webhooks WHERE webhooks.user_id = users.id))"
    )


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('has_notification_targets')
