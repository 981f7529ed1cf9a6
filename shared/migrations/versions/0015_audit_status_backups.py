"""The audit log of data access (append-only, hash-chained), the status page's incidents and
history, and hand-made backups kept longer.

The audit log's guard is a trigger, not a convention: UPDATE is refused except an erasure
clearing the unhashed `subject_id` / `actor_id`, DELETE is refused except rows a retention
checkpoint row already covers (`checkpoint_seq`), TRUNCATE always. A superuser can still
disable it; `assistant audit verify` is what catches that.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 01:40:00
"""
from alembic import op
import sqlalchemy as sa
import shared.models
from sqlalchemy.dialects import postgresql

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
SEQ = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
# Every column but the two an erasure may clear.
FIXED = ('seq', 'created_at', 'actor_kind', 'actor_hash', 'action', 'resource_type', 'resource_id', 'subject_hash',
         'request_id', 'ip', 'details', 'checkpoint_seq', 'row_hash')
REFUSED_UPDATE = "audit_log is append-only: a row is never changed (an erasure may only clear subject_id and actor_id)"
REFUSED_DELETE = "audit_log is append-only: only the retention trim deletes, rows its checkpoint covers"


def upgrade() -> None:
    with op.batch_alter_table('backups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manual', sa.Boolean(), server_default=sa.text('false'), nullable=False))

    op.create_table('audit_log',
    sa.Column('seq', SEQ, autoincrement=False, nullable=False),
    sa.Column('created_at', shared.models.UTCDateTime(), nullable=False),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_hash', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('resource_type', sa.String(length=32), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=True),
    sa.Column('subject_hash', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('details', JSON, nullable=False),
    sa.Column('checkpoint_seq', SEQ, nullable=True),
    sa.Column('row_hash', sa.String(length=64), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('subject_id', sa.Uuid(), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_subject', 'audit_log', ['subject_id', 'seq'])
    op.create_index('ix_audit_log_actor', 'audit_log', ['actor_id', 'seq'])
    op.create_index('ix_audit_log_created', 'audit_log', ['created_at'])

    if op.get_bind().dialect.name == 'postgresql':
        kept = " - ".join(["to_jsonb({})", "'subject_id'", "'actor_id'"])
        op.execute(f"""
            CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' THEN
                    IF (NEW.subject_id IS NULL OR NEW.subject_id = OLD.subject_id)
                       AND (NEW.actor_id IS NULL OR NEW.actor_id = OLD.actor_id)
                       AND {kept.format('NEW')} = {kept.format('OLD')} THEN
                        RETURN NEW;
                    END IF;
                    RAISE EXCEPTION '{REFUSED_UPDATE}';
                ELSIF TG_OP = 'DELETE' THEN
                    IF EXISTS (SELECT 1 FROM audit_log c WHERE c.checkpoint_seq >= OLD.seq) THEN
                        RETURN OLD;
                    END IF;
                    RAISE EXCEPTION '{REFUSED_DELETE}';
                END IF;
                RAISE EXCEPTION 'audit_log is append-only: TRUNCATE is refused';
            END $$
        """)
        op.execute("CREATE TRIGGER audit_log_guard BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION audit_log_guard()")
        op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard()")
    else:
        same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in FIXED)
        op.execute(f"""
            CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log FOR EACH ROW
            WHEN NOT ((NEW.subject_id IS NULL OR NEW.subject_id IS OLD.subject_id)
                      AND (NEW.actor_id IS NULL OR NEW.actor_id IS OLD.actor_id) AND {same})
            BEGIN SELECT RAISE(ABORT, '{REFUSED_UPDATE}'); END
        """)
        op.execute(f"""
            CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log FOR EACH ROW
            WHEN NOT EXISTS (SELECT 1 FROM audit_log c WHERE c.checkpoint_seq >= OLD.seq)
            BEGIN SELECT RAISE(ABORT, '{REFUSED_DELETE}'); END
        """)

    op.create_table('status_incidents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('component', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('updates', JSON, nullable=False),
    sa.Column('created_at', shared.models.UTCDateTime(), nullable=False),
    sa.Column('resolved_at', shared.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_incidents'))
    )
    op.create_index(op.f('ix_status_incidents_resolved_at'), 'status_incidents', ['resolved_at'])
    op.create_table('status_samples',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('component', sa.String(length=48), nullable=False),
    sa.Column('worst', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('day', 'component', name=op.f('pk_status_samples'))
    )


def downgrade() -> None:
    op.drop_table('status_samples')
    op.drop_index(op.f('ix_status_incidents_resolved_at'), table_name='status_incidents')
    op.drop_table('status_incidents')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TABLE audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_guard()")
    else:
        op.drop_table('audit_log')
    with op.batch_alter_table('backups', schema=None) as batch_op:
        batch_op.drop_column('manual')
