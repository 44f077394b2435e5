"""Case-insensitive sort indexes for the track list

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:15:00

``GET /api/tracks?sort=artist|title|album|genre`` orders by ``lower(col), id``;
without an expression index SQLite sorts the whole table for every page.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("artist", "title", "album", "genre")


def upgrade() -> None:
    for col in COLUMNS:
        op.create_index(f"ix_tracks_lower_{col}", "tracks",
                        [sa.text(f"lower({col})"), sa.text("id")])


def downgrade() -> None:
    for col in COLUMNS:
        op.drop_index(f"ix_tracks_lower_{col}", table_name="tracks")
