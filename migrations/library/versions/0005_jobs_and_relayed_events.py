"""Jobs of the job layer and events relayed between worker processes

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 03:34:34

``library_jobs`` holds every queued, running and finished background job (folder
scans now, analysis next): what each worker process reads to answer for a job,
the cancel flag, the progress of a running job and its result. The unique
``active_key`` (``<kind>:<subject>`` while queued or running) lets at most one
active job exist per subject across processes. ``library_events`` carries the
events of one worker process to the WebSocket clients of the others for a few
minutes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('library_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('origin', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_library_events'))
    )
    with op.batch_alter_table('library_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_library_events_created_at'), ['created_at'], unique=False)

    op.create_table('library_jobs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('active_key', sa.String(length=100), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=True),
    sa.Column('progress', sa.JSON(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_library_jobs')),
    sa.UniqueConstraint('active_key', name=op.f('uq_library_jobs_active_key'))
    )
    with op.batch_alter_table('library_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_library_jobs_finished_at'), ['finished_at'], unique=False)
        batch_op.create_index('ix_library_jobs_kind_subject', ['kind', 'subject'], unique=False)
        batch_op.create_index(batch_op.f('ix_library_jobs_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('library_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_library_jobs_state'))
        batch_op.drop_index('ix_library_jobs_kind_subject')
        batch_op.drop_index(batch_op.f('ix_library_jobs_finished_at'))

    op.drop_table('library_jobs')
    with op.batch_alter_table('library_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_library_events_created_at'))

    op.drop_table('library_events')
