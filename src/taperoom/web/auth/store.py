"""Users and signed-in sessions of one app (all the SQL of sign-in lives here).

Sessions are rows on the server (as Navidrome's and Django's database
sessions), so signing out really ends one: the browser's cookie holds a random
token (256 bits from :mod:`secrets`), the row holds only its SHA-256, and a
removed user's sessions go with it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import make_engine, make_sessionmaker, transaction
from taperoom.errors import Conflict, InvalidInput, NotFound
from taperoom.web.auth.passwords import (
    check_new_password,
    hash_password,
    needs_rehash,
    verify_password,
    waste_verification,
)
from taperoom.web.auth.tables import MAX_NAME_LENGTH, AuthTables


def utcnow() -> datetime:
    """Now, as the naive UTC datetime the tables store."""
    return datetime.now(UTC).replace(tzinfo=None)


def token_digest(token: str) -> str:
    """SHA-256 hex digest of a session token (FIPS 180-4): the key of its row."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def check_user_name(name: str) -> str:
    """`name` if it may name a user: 1 to 64 printable characters, no spaces at its ends.

    Raises
    ------
    InvalidInput
        Otherwise.
    """
    if not name or name != name.strip() or len(name) > MAX_NAME_LENGTH \
            or not name.isprintable():
        raise InvalidInput(f"a user name has 1 to {MAX_NAME_LENGTH} printable characters, "
                           "without spaces at its ends")
    return name


@dataclass(frozen=True)
class SignedIn:
    """A valid session.

    Attributes
    ----------
    user : str
        The user's name.
    csrf_token : str
        The session's CSRF token (sent back in ``X-CSRF-Token`` or a form field).
    expires_at : datetime
        Naive UTC end of the session.
    """

    user: str
    csrf_token: str
    expires_at: datetime


class AuthStore:
    """Users and sessions in one app's database.

    Parameters
    ----------
    sessions : sessionmaker
        Session factory of the app's database (migrated: the tables exist).
    tables : AuthTables
        The app's tables (:func:`taperoom.web.auth.tables.define_auth_tables`).
    """

    def __init__(self, sessions: sessionmaker[Session], tables: AuthTables) -> None:
        self.factory = sessions
        self.users = tables.users
        self.sessions = tables.sessions

    # -- users --

    def has_users(self) -> bool:
        """True when at least one user exists."""
        with self.factory() as db:
            return bool(db.execute(select(exists().select_from(self.users))).scalar())

    def add_user(self, name: str, password: str) -> None:
        """Create a user.

        Raises
        ------
        InvalidInput
            Bad name or password (see :func:`check_user_name`,
            :func:`~taperoom.web.auth.passwords.check_new_password`).
        Conflict
            The name is taken.
        """
        check_user_name(name)
        digest = hash_password(check_new_password(password))
        try:
            with transaction(self.factory) as db:
                db.execute(insert(self.users).values(name=name, password_hash=digest,
                                                     created_at=utcnow()))
        except IntegrityError:
            raise Conflict(f"user {name!r} already exists") from None

    def set_password(self, name: str, password: str) -> int:
        """Change a user's password and end their sessions; the number ended.

        Raises
        ------
        NotFound
            No such user.
        """
        digest = hash_password(check_new_password(password))
        with transaction(self.factory) as db:
            user_id = self._user_id(db, name)
            db.execute(update(self.users).where(self.users.c.id == user_id)
                       .values(password_hash=digest))
            ended = _rowcount(db.execute(delete(self.sessions)
                                         .where(self.sessions.c.user_id == user_id)))
        return ended

    def remove_user(self, name: str) -> None:
        """Delete a user and their sessions.

        Raises
        ------
        NotFound
            No such user.
        """
        with transaction(self.factory) as db:
            user_id = self._user_id(db, name)
            db.execute(delete(self.sessions).where(self.sessions.c.user_id == user_id))
            db.execute(delete(self.users).where(self.users.c.id == user_id))

    def list_users(self) -> list[dict[str, Any]]:
        """Every user: ``{name, created_at, sessions}`` (live sessions), by name."""
        now = utcnow()
        live = (select(func.count()).select_from(self.sessions)
                .where(self.sessions.c.user_id == self.users.c.id,
                       self.sessions.c.expires_at > now).scalar_subquery())
        with self.factory() as db:
            rows = db.execute(select(self.users.c.name, self.users.c.created_at, live)
                              .order_by(self.users.c.name)).all()
        return [{"name": n, "created_at": c, "sessions": int(s)} for n, c, s in rows]

    def _user_id(self, db: Session, name: str) -> int:
        user_id = db.execute(select(self.users.c.id).where(self.users.c.name == name)).scalar()
        if user_id is None:
            raise NotFound(f"no user {name!r}")
        return int(user_id)

    def authenticate(self, name: str, password: str) -> int | None:
        """The id of the user `name` when `password` is theirs, else None.

        An unknown name costs the same time as a wrong password; a hash made with
        older parameters is replaced.
        """
        with self.factory() as db:
            row = db.execute(select(self.users.c.id, self.users.c.password_hash)
                             .where(self.users.c.name == name)).first()
        if row is None:
            waste_verification(password)
            return None
        user_id, stored = int(row[0]), str(row[1])
        if not verify_password(stored, password):
            return None
        if needs_rehash(stored):
            with transaction(self.factory) as db:
                db.execute(update(self.users).where(self.users.c.id == user_id)
                           .values(password_hash=hash_password(password)))
        return user_id

    # -- sessions --

    def open_session(self, user_id: int, lifetime: timedelta) -> tuple[str, SignedIn]:
        """Start a session for `user_id`; (cookie token, session). Expired rows go."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        csrf = secrets.token_urlsafe(32)
        with transaction(self.factory) as db:
            db.execute(delete(self.sessions).where(self.sessions.c.expires_at <= now))
            db.execute(insert(self.sessions).values(
                id=token_digest(token), user_id=user_id, csrf_token=csrf, created_at=now,
                expires_at=now + lifetime))
            name = db.execute(select(self.users.c.name)
                              .where(self.users.c.id == user_id)).scalar_one()
        return token, SignedIn(str(name), csrf, now + lifetime)

    def session(self, token: str) -> SignedIn | None:
        """The live session of a cookie token, or None (unknown, expired, user gone)."""
        if not token or len(token) > 256:
            return None
        query = (select(self.users.c.name, self.sessions.c.csrf_token,
                        self.sessions.c.expires_at)
                 .join(self.users, self.users.c.id == self.sessions.c.user_id)
                 .where(self.sessions.c.id == token_digest(token),
                        self.sessions.c.expires_at > utcnow()))
        with self.factory() as db:
            row = db.execute(query).first()
        return None if row is None else SignedIn(str(row[0]), str(row[1]), row[2])

    def close_session(self, token: str) -> bool:
        """End the session of a cookie token; True when there was one."""
        with transaction(self.factory) as db:
            done = _rowcount(db.execute(delete(self.sessions)
                                        .where(self.sessions.c.id == token_digest(token))))
        return done > 0


def open_store(url: str, upgrade: Callable[[Engine], None],
               tables: AuthTables) -> tuple[AuthStore, Callable[[], None]]:
    """The user store of an app's database at `url`, migrated first, and its closer.

    For ``taperoom <app> user ...`` and the start-up access check, which need the
    users but none of the app's services.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the app's database.
    upgrade : callable(Engine)
        The app's migration to head (``taperoom.<app>.migrate.upgrade``).
    tables : AuthTables
        The app's user and session tables.

    Returns
    -------
    store : AuthStore
    close : callable()
        Disposes of the engine.
    """
    engine = make_engine(url)
    upgrade(engine)
    return AuthStore(make_sessionmaker(engine), tables), engine.dispose
