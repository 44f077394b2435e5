"""Secret tokens of the podcast feeds

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-12 10:00:00

Each station gets ``feed_token`` (a random URL-safe secret, unique), filled in
for the stations that exist; the feed of all stations keeps its token in
``recorder_feed_tokens`` (row ``feed = 'all'``). The column is added without
rebuilding ``stream_configurations`` (a rebuild would cascade deletes to the
schedules under SQLite's foreign keys), so it stays nullable in the database.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _token() -> str:
    return secrets.token_urlsafe(24)


def upgrade() -> None:
    op.add_column('stream_configurations',
                  sa.Column('feed_token', sa.String(length=64), nullable=True))
    stations = sa.table('stream_configurations', sa.column('id', sa.Integer),
                        sa.column('feed_token', sa.String))
    conn = op.get_bind()
    for (station_id,) in conn.execute(sa.select(stations.c.id)).all():
        conn.execute(stations.update().where(stations.c.id == station_id)
                     .values(feed_token=_token()))
    op.create_index(op.f('ix_stream_configurations_feed_token'), 'stream_configurations',
                    ['feed_token'], unique=True)
    tokens = op.create_table('recorder_feed_tokens',
    sa.Column('feed', sa.String(length=32), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('rotated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('feed', name=op.f('pk_recorder_feed_tokens')),
    sa.UniqueConstraint('token', name=op.f('uq_recorder_feed_tokens_token'))
    )
    op.bulk_insert(tokens, [{'feed': 'all', 'token': _token(),
                             'rotated_at': datetime.now(UTC).replace(tzinfo=None)}])


def downgrade() -> None:
    op.drop_table('recorder_feed_tokens')
    op.drop_index(op.f('ix_stream_configurations_feed_token'),
                  table_name='stream_configurations')
    with op.batch_alter_table('stream_configurations', schema=None) as batch_op:
        batch_op.drop_column('feed_token')
