"""PostgreSQL: full-text search index, canonical-track foreign key, descending sort indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 03:30:00

What 0001 and 0002 give SQLite but not PostgreSQL:

* full-text search: SQLite has the FTS5 table ``tracks_fts``; PostgreSQL gets a
  GIN index over ``taperoom_track_document(title, artist, album, genre, comment)``,
  a ``tsvector`` of the ``simple`` configuration (no stemming, no stop words, like
  FTS5's ``unicode61``) with the weights A title, B artist, C album and genre,
  D comment. Its words are lower-cased by ``taperoom_fold``, which also removes
  diacritics with the ``unaccent`` extension when the server has it (Debian's
  ``postgresql`` package does) and the migrating role may create it; otherwise
  search is case- but not diacritic-insensitive on that database;
* ``duplicate_groups.canonical_track_id -> tracks.id``: 0001 declares it with
  ``use_alter`` (the two tables point at each other), which SQLite keeps inline
  but ``CREATE TABLE`` on other databases leaves out;
* descending case-insensitive sorts: ``ORDER BY lower(artist) DESC NULLS LAST``
  cannot walk 0002's ascending index backwards on PostgreSQL (that order puts
  NULLs first), so each text sort gets its descending twin.

Nothing changes on SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CANONICAL_FK = "fk_duplicate_groups_canonical_track_id_tracks"
SEARCH_INDEX = "ix_tracks_search"
TEXT_SORTS = ("artist", "title", "album", "genre")


def _quote(bind: sa.Connection, name: str) -> str:
    return bind.dialect.identifier_preparer.quote_schema(name)


def _has_canonical_fk(bind: sa.Connection) -> bool:
    return any(fk.get("name") == CANONICAL_FK
               for fk in sa.inspect(bind).get_foreign_keys("duplicate_groups"))


def _add_canonical_fk(bind: sa.Connection) -> None:
    if _has_canonical_fk(bind):
        return
    # nothing enforced the reference so far: forget canonical ids of deleted tracks
    op.execute("UPDATE duplicate_groups SET canonical_track_id = NULL "
               "WHERE canonical_track_id IS NOT NULL "
               "AND canonical_track_id NOT IN (SELECT id FROM tracks)")
    op.create_foreign_key(CANONICAL_FK, "duplicate_groups", "tracks", ["canonical_track_id"],
                          ["id"], ondelete="SET NULL")


def _unaccent_schema(bind: sa.Connection) -> str | None:
    """Schema of the ``unaccent`` extension, creating it when possible; None without it."""
    def installed() -> str | None:
        return bind.execute(sa.text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
            "ON n.oid = e.extnamespace WHERE e.extname = 'unaccent'")).scalar()

    schema = installed()
    if schema is not None:
        return str(schema)
    available = bind.execute(sa.text(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent'")).scalar()
    if not available:
        return None
    try:
        with bind.begin_nested():  # a refusal (no privilege) must not abort the migration
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS unaccent"))
    except sa.exc.DBAPIError:
        return None
    found = installed()
    return str(found) if found is not None else None


def _create_search(bind: sa.Connection) -> None:
    schema = _quote(bind, str(bind.execute(sa.text("SELECT current_schema()")).scalar()))
    ext = _unaccent_schema(bind)
    if ext is None:
        fold = "lower(value)"
    else:
        q = _quote(bind, ext)
        dictionary = f"{q}.unaccent".replace("'", "''")
        fold = f"lower({q}.unaccent('{dictionary}'::regdictionary, value))"
    # IMMUTABLE although unaccent() is only STABLE (its rules file could change):
    # the usual wrapper that lets the folded text be indexed
    op.execute(f"CREATE OR REPLACE FUNCTION {schema}.taperoom_fold(value text) RETURNS text "
               f"LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ SELECT {fold} $$")

    def part(expr: str, weight: str) -> str:
        return (f"setweight(to_tsvector('pg_catalog.simple'::regconfig, "
                f"{schema}.taperoom_fold({expr})), '{weight}')")

    document = " || ".join((
        part("coalesce(title, '')", "A"),
        part("coalesce(artist, '')", "B"),
        part("coalesce(album, '') || ' ' || coalesce(genre, '')", "C"),
        part("coalesce(comment, '')", "D"),
    ))
    op.execute(f"CREATE OR REPLACE FUNCTION {schema}.taperoom_track_document("
               "title text, artist text, album text, genre text, comment text) "
               f"RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {document} $$")
    op.execute(f"CREATE INDEX {SEARCH_INDEX} ON tracks USING gin "
               f"({schema}.taperoom_track_document(title, artist, album, genre, comment))")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        return
    _add_canonical_fk(bind)
    if bind.dialect.name != "postgresql":
        return
    _create_search(bind)
    for col in TEXT_SORTS:
        op.execute(f"CREATE INDEX ix_tracks_lower_{col}_desc ON tracks "
                   f"(lower({col}) DESC NULLS LAST, id DESC)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        return
    if bind.dialect.name == "postgresql":
        for col in TEXT_SORTS:
            op.execute(f"DROP INDEX IF EXISTS ix_tracks_lower_{col}_desc")
        op.execute(f"DROP INDEX IF EXISTS {SEARCH_INDEX}")
        op.execute("DROP FUNCTION IF EXISTS taperoom_track_document(text, text, text, text, text)")
        op.execute("DROP FUNCTION IF EXISTS taperoom_fold(text)")
        # the unaccent extension stays: other objects of the database may use it
    if _has_canonical_fk(bind):
        op.drop_constraint(CANONICAL_FK, "duplicate_groups", type_="foreignkey")
