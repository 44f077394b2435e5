"""Initial recorder schema: stations, cron schedules and recording sessions.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stream_configurations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('stream_url', sa.Text(), nullable=False),
    sa.Column('artist', sa.String(length=255), nullable=False),
    sa.Column('album', sa.String(length=255), nullable=False),
    sa.Column('album_artist', sa.String(length=255), nullable=False),
    sa.Column('artwork_path', sa.String(length=500), nullable=True),
    sa.Column('output_filename_pattern', sa.String(length=500), nullable=False),
    sa.Column('scp_destination', sa.Text(), nullable=False),
    sa.Column('bitrate_kbps', sa.Integer(), nullable=True),
    sa.Column('split_tracks', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stream_configurations')),
    sa.UniqueConstraint('name', name=op.f('uq_stream_configurations_name'))
    )
    op.create_table('recording_schedules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stream_config_id', sa.Integer(), nullable=False),
    sa.Column('cron_expression', sa.String(length=100), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('next_run_time', sa.DateTime(), nullable=True),
    sa.Column('last_run_time', sa.DateTime(), nullable=True),
    sa.Column('retry_count', sa.Integer(), nullable=False),
    sa.Column('max_retries', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['stream_config_id'], ['stream_configurations.id'], name=op.f('fk_recording_schedules_stream_config_id_stream_configurations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_schedules'))
    )
    with op.batch_alter_table('recording_schedules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recording_schedules_stream_config_id'), ['stream_config_id'], unique=False)

    op.create_table('recording_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('schedule_id', sa.Integer(), nullable=True),
    sa.Column('stream_config_id', sa.Integer(), nullable=True),
    sa.Column('station_name', sa.String(length=255), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('start_time', sa.DateTime(), nullable=False),
    sa.Column('end_time', sa.DateTime(), nullable=True),
    sa.Column('planned_duration_seconds', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('output_file_path', sa.Text(), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('file_size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('duration_seconds', sa.Float(), nullable=True),
    sa.Column('reconnects', sa.Integer(), nullable=False),
    sa.Column('gaps', sa.JSON(), nullable=False),
    sa.Column('cue_sheet_path', sa.Text(), nullable=True),
    sa.Column('stream_copy', sa.Boolean(), nullable=True),
    sa.Column('source_codec', sa.String(length=32), nullable=True),
    sa.Column('transfer_status', sa.String(length=16), nullable=False),
    sa.Column('transfer_error_message', sa.Text(), nullable=True),
    sa.Column('transfer_attempts', sa.Integer(), nullable=False),
    sa.Column('remote_path', sa.Text(), nullable=True),
    sa.Column('transferred_at', sa.DateTime(), nullable=True),
    sa.Column('local_deleted', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['schedule_id'], ['recording_schedules.id'], name=op.f('fk_recording_sessions_schedule_id_recording_schedules'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['stream_config_id'], ['stream_configurations.id'], name=op.f('fk_recording_sessions_stream_config_id_stream_configurations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_sessions'))
    )
    with op.batch_alter_table('recording_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recording_sessions_schedule_id'), ['schedule_id'], unique=False)
        batch_op.create_index('ix_recording_sessions_start_time', ['start_time'], unique=False)
        batch_op.create_index('ix_recording_sessions_status', ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_recording_sessions_stream_config_id'), ['stream_config_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('recording_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recording_sessions_stream_config_id'))
        batch_op.drop_index('ix_recording_sessions_status')
        batch_op.drop_index('ix_recording_sessions_start_time')
        batch_op.drop_index(batch_op.f('ix_recording_sessions_schedule_id'))

    op.drop_table('recording_sessions')
    with op.batch_alter_table('recording_schedules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recording_schedules_stream_config_id'))

    op.drop_table('recording_schedules')
    op.drop_table('stream_configurations')
