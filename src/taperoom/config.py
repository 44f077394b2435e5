"""Settings helpers shared by every app: base settings class and logging."""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic_settings import BaseSettings, SettingsConfigDict

#: Query parameters whose values are secrets (libpq's ``password``, ``sslpassword``; tokens, keys).
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)


class AppSettings(BaseSettings):
    """Base of each app's settings.

    Values come from the environment (names as in the contracts, e.g. ``AUDIO_DIR``,
    ``PORT``), then from a ``.env`` file in the working directory, then from the
    defaults. Unknown variables are ignored so that one ``.env`` can serve all apps.
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )


class AccessLogRedaction(logging.Filter):
    """Shows the request targets of uvicorn's access log lines through :func:`redact_url`.

    uvicorn logs ``'%s - "%s %s HTTP/%s" %d'`` with the arguments (client, method,
    path with query string, HTTP version, status) on the ``uvicorn.access``
    logger; a secret in the query (an analysis job's callback ``?token=``) would
    otherwise be written to the log as it was sent.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) \
                and "?" in args[2]:
            record.args = (*args[:2], redact_url(args[2]), *args[3:])
        return True


#: Library loggers whose INFO lines say nothing to the person running the servers,
#: shown from WARNING up unless ``LOG_LEVEL`` is DEBUG: huey logs two or three lines
#: for every task it runs ("Executing ...", "... executed in 0.1s", "Added task ... to
#: schedule"), tens of thousands for the first analysis of 10,000 tracks, and five
#: when each of its consumers starts (the project's job layer, ``taperoom.jobs``, logs
#: each queue's start and each job's retry and failure itself); Alembic lists its
#: autogenerate plugins at every start.
QUIET_LOGGERS = ("huey", "alembic.runtime.plugins")


class MigrationContextLines(logging.Filter):
    """Leaves out the two lines Alembic logs each time it opens a database ("Context
    impl SQLiteImpl.", "Will assume non-transactional DDL."), five times per start of
    ``taperoom serve``; the "Running upgrade ..." line of each migration applied stays."""

    PREFIXES = ("Context impl ", "Will assume ")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(self.PREFIXES))


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once, from ``LOG_LEVEL`` unless `level` is given, and
    redact secrets from uvicorn's access log (:class:`AccessLogRedaction`).

    Above DEBUG the loggers of :data:`QUIET_LOGGERS` show warnings and errors only, and
    Alembic's per-connection lines are left out (:class:`MigrationContextLines`).
    """
    name = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
    root_level = getattr(logging, name, logging.INFO)
    logging.basicConfig(
        level=root_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if isinstance(root_level, int) and root_level > logging.DEBUG:
        for quiet in QUIET_LOGGERS:
            logging.getLogger(quiet).setLevel(max(root_level, logging.WARNING))
        migration = logging.getLogger("alembic.runtime.migration")
        if not any(isinstance(f, MigrationContextLines) for f in migration.filters):
            migration.addFilter(MigrationContextLines())
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogRedaction) for f in access.filters):
        access.addFilter(AccessLogRedaction())


def redact_url(url: str) -> str:
    """`url` as it may be shown or logged: its password and secret query values as ``***``.

    The password of the user information (``scheme://user:password@host``, RFC 3986
    §3.2.1) and the value of every query parameter named like a secret
    (``password``, ``sslpassword``, ``token``, ``api_key`` ...) are replaced; the
    scheme, user, host, port, path and other parameters stay as written.

    Parameters
    ----------
    url : str
        A database, queue or stream URL.

    Returns
    -------
    str
        The URL with its secrets replaced, or ``***`` when it cannot be parsed.
    """
    if not url:
        return url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises ValueError
    except ValueError:
        return "***"
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(_SECRET_PARAM.search(name) for name, _ in pairs):
        query = urlencode([(name, "***" if _SECRET_PARAM.search(name) else value)
                           for name, value in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))
