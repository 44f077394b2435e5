"""Analysis results on the track row, user-set analysis fields, analysis job retries

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12 09:00:00

``tracks`` gains the analyzer's results that the original schema had no column
for (key strength, beat consistency, tuning frequency, true peak, ReplayGain
gain and peak, loudness range, dynamic complexity) and ``user_fields``: the
analysis fields a user set himself (BPM, key, first beat, energy level), which
re-analysis leaves alone. ``analysis_jobs`` gains ``next_attempt_at`` (a
failed job waits until then before its next attempt), ``remote_job_id`` (the
job id an external analysis server answered) and ``callback_token`` (the
secret that server's callbacks carry).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TRACK_FLOATS = ('key_strength', 'beat_consistency', 'tuning_frequency', 'true_peak',
                'replaygain_gain', 'replaygain_peak', 'loudness_range', 'dynamic_complexity')


def upgrade() -> None:
    # plain ALTER TABLE ADD/DROP COLUMN (SQLite 3.35+ and PostgreSQL): a batch
    # operation would rebuild ``tracks`` on SQLite and lose its expression indexes
    # (``ix_tracks_lower_*`` of 0002) and the full-text triggers
    for name in TRACK_FLOATS:
        op.add_column('tracks', sa.Column(name, sa.Float(), nullable=True))
    op.add_column('tracks', sa.Column('user_fields', sa.JSON(), nullable=True))
    op.add_column('analysis_jobs', sa.Column('next_attempt_at', sa.DateTime(), nullable=True))
    op.add_column('analysis_jobs',
                  sa.Column('remote_job_id', sa.String(length=128), nullable=True))
    op.add_column('analysis_jobs',
                  sa.Column('callback_token', sa.String(length=64), nullable=True))
    op.create_index(op.f('ix_analysis_jobs_remote_job_id'), 'analysis_jobs',
                    ['remote_job_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_analysis_jobs_remote_job_id'), table_name='analysis_jobs')
    for name in ('callback_token', 'remote_job_id', 'next_attempt_at'):
        op.drop_column('analysis_jobs', name)
    op.drop_column('tracks', 'user_fields')
    for name in reversed(TRACK_FLOATS):
        op.drop_column('tracks', name)
