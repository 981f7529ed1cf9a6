"""Job versions: every committed change of a job row moves its version on, kept by the database.

The job-status cache in Redis (shared.jobs.status_cache) orders what writers hand it by this
number, so a late writer can never roll a job's cached status back. A trigger rather than
each UPDATE statement: a path that forgets it would otherwise break the ordering silently.

SQLite note: batch_alter_table recreates a table and drops its triggers; a later migration
that alters `jobs` in batch mode must create jobs_version again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 21:40:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('version', sa.Integer(), server_default='0', nullable=False))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("""
            CREATE FUNCTION jobs_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                NEW.version := OLD.version + 1;
                RETURN NEW;
            END $$
        """)
        op.execute("CREATE TRIGGER jobs_version BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_bump_version()")
    else:
        # SQLite cannot assign NEW in a trigger: bump the row once more after the update
        # (the WHEN stops that second update from bumping again).
        op.execute("""
            CREATE TRIGGER jobs_version AFTER UPDATE ON jobs FOR EACH ROW WHEN NEW.version = OLD.version
            BEGIN
                UPDATE jobs SET version = OLD.version + 1 WHERE id = OLD.id;
            END
        """)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS jobs_version" + (" ON jobs" if op.get_bind().dialect.name == 'postgresql' else ""))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS jobs_bump_version()")
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('version')
