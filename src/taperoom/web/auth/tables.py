"""The user and session tables of an app's database (SQLAlchemy Core).

Each app keeps its own accounts in its own database, in tables named after the
app (``library_users``, ``recorder_users``...) so that the library and the
recorder may share one PostgreSQL database. Each app's Alembic migrations
create them; this module only declares them on the app's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, DateTime, ForeignKey, Integer, MetaData, String, Table

#: Longest user name.
MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class AuthTables:
    """The two tables of one app.

    Attributes
    ----------
    users : Table
        ``id``, ``name`` (unique), ``password_hash`` (Argon2id PHC string),
        ``created_at`` (naive UTC).
    sessions : Table
        Signed-in browsers: ``id`` (SHA-256 hex of the cookie's token; the token
        itself is never stored), ``user_id`` (deleted with its user),
        ``csrf_token``, ``created_at`` and ``expires_at`` (naive UTC).
    """

    users: Table
    sessions: Table


def define_auth_tables(metadata: MetaData, app: str) -> AuthTables:
    """Declare ``<app>_users`` and ``<app>_auth_sessions`` on `metadata`.

    Parameters
    ----------
    metadata : MetaData
        The app's metadata (its naming convention names the constraints).
    app : str
        Table name prefix: ``library`` or ``recorder``.
    """
    users = Table(
        f"{app}_users", metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(MAX_NAME_LENGTH), nullable=False, unique=True),
        Column("password_hash", String(255), nullable=False),
        Column("created_at", DateTime, nullable=False),
    )
    sessions = Table(
        f"{app}_auth_sessions", metadata,
        Column("id", String(64), primary_key=True),
        Column("user_id", Integer, ForeignKey(f"{app}_users.id", ondelete="CASCADE"),
               nullable=False, index=True),
        Column("csrf_token", String(64), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("expires_at", DateTime, nullable=False, index=True),
    )
    return AuthTables(users, sessions)
