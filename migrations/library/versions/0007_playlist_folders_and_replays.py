"""Playlist folders (crates) and replays in session playlists

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-05 09:00:00

``playlist_folders`` holds a tree of folders (``parent_id``, like rekordbox and
Serato crates) and ``playlists.folder_id`` files a playlist in one (NULL: at the
top). ``playlist_tracks`` gains ``occurrence``: the how-manieth entry of the same
track in a playlist (0 for the first). The primary key becomes
``(playlist_id, track_id, occurrence)``, so that a session playlist can log a
track a DJ plays twice, while every other playlist keeps at most one entry per
track (``occurrence`` stays 0 there, and the key refuses a second one). A
downgrade drops the replays and closes the gaps they leave.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


@contextmanager
def _entries_kept() -> Iterator[None]:
    """Keep ``playlist_tracks`` through a copy of ``playlists`` on SQLite: dropping the
    old ``playlists`` deletes every entry (ON DELETE CASCADE), so the entries wait in
    a side table and come back after."""
    op.execute("CREATE TABLE _playlist_tracks_0007 AS SELECT * FROM playlist_tracks")
    yield
    op.execute("DELETE FROM playlist_tracks")
    op.execute("INSERT INTO playlist_tracks SELECT * FROM _playlist_tracks_0007")
    op.execute("DROP TABLE _playlist_tracks_0007")


@contextmanager
def _expression_indexes_unreflected() -> Iterator[None]:
    """Silence SQLAlchemy's note that the copy of a table on SQLite does not reflect the
    expression indexes of ``tracks`` (``lower(title)`` ...): batch operations reflect the
    tables a foreign key names, and these indexes are not on the tables being copied."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based",
                                sa.exc.SAWarning)
        yield


def upgrade() -> None:
    with _expression_indexes_unreflected():
        _upgrade()


def downgrade() -> None:
    with _expression_indexes_unreflected():
        _downgrade()


def _upgrade() -> None:
    op.create_table(
        'playlist_folders',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('parent_id', sa.String(length=36), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['parent_id'], ['playlist_folders.id'],
                                name=op.f('fk_playlist_folders_parent_id_playlist_folders'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_playlist_folders')))
    op.create_index(op.f('ix_playlist_folders_parent_id'), 'playlist_folders', ['parent_id'],
                    unique=False)
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite adds a foreign key only by copying the table
        with _entries_kept(), op.batch_alter_table('playlists', schema=None) as batch_op:
            batch_op.add_column(sa.Column('folder_id', sa.String(length=36), nullable=True))
            batch_op.create_foreign_key(
                batch_op.f('fk_playlists_folder_id_playlist_folders'), 'playlist_folders',
                ['folder_id'], ['id'], ondelete='SET NULL')
    else:
        op.add_column('playlists', sa.Column('folder_id', sa.String(length=36), nullable=True))
        op.create_foreign_key(op.f('fk_playlists_folder_id_playlist_folders'), 'playlists',
                              'playlist_folders', ['folder_id'], ['id'], ondelete='SET NULL')
    op.create_index(op.f('ix_playlists_folder_id'), 'playlists', ['folder_id'], unique=False)
    op.create_index('uq_playlists_thinking', 'playlists', ['type'], unique=True,
                    sqlite_where=sa.text("type = 'temp'"),
                    postgresql_where=sa.text("type = 'temp'"))
    # playlist_tracks has no triggers, and no table refers to it: a batch operation
    # (a copy of the table on SQLite) keeps everything it has
    with op.batch_alter_table('playlist_tracks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('occurrence', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.drop_constraint('pk_playlist_tracks', type_='primary')
        batch_op.create_primary_key('pk_playlist_tracks',
                                    ['playlist_id', 'track_id', 'occurrence'])


def _downgrade() -> None:
    op.execute("DELETE FROM playlist_tracks WHERE occurrence > 0")
    op.execute(  # close the gaps the replays leave (positions 0..n-1 again)
        "UPDATE playlist_tracks SET position = (SELECT count(*) FROM playlist_tracks p2 "
        "WHERE p2.playlist_id = playlist_tracks.playlist_id "
        "AND p2.position < playlist_tracks.position)")
    with op.batch_alter_table('playlist_tracks', schema=None) as batch_op:
        batch_op.drop_constraint('pk_playlist_tracks', type_='primary')
        batch_op.create_primary_key('pk_playlist_tracks', ['playlist_id', 'track_id'])
        batch_op.drop_column('occurrence')
    op.drop_index('uq_playlists_thinking', table_name='playlists')
    op.drop_index(op.f('ix_playlists_folder_id'), table_name='playlists')
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite drops a key's column only by copying the table
        with _entries_kept(), op.batch_alter_table('playlists', schema=None) as batch_op:
            batch_op.drop_column('folder_id')
    else:
        op.drop_constraint(op.f('fk_playlists_folder_id_playlist_folders'), 'playlists',
                           type_='foreignkey')
        op.drop_column('playlists', 'folder_id')
    op.drop_index(op.f('ix_playlist_folders_parent_id'), table_name='playlist_folders')
    op.drop_table('playlist_folders')
