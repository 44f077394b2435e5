"""The settings service: the user settings behind ``/api/settings`` (contracts/library.md §2).

Values go out parsed by their type; writes are checked against the type first
(a value that misfits it is refused with the field named) and a bulk write is
one transaction. All SQL is in :mod:`taperoom.library.repository.settings`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import InvalidFields, NotFound
from taperoom.library.repository import settings as repo

NOT_FOUND = "Setting not found"


class SettingsService:
    """Read and write the library's user settings.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    """

    def __init__(self, db: sessionmaker[Session]) -> None:
        self.db = db

    def list_settings(self, category: str | None = None) -> list[dict[str, Any]]:
        """Every setting (of one category when given), by category then key."""
        with self.db() as s:
            return [repo.setting_dict(row) for row in repo.list_settings(s, category)]

    def categories(self) -> list[str]:
        """Distinct non-empty categories, sorted."""
        with self.db() as s:
            return repo.categories(s)

    def get(self, key: str) -> dict[str, Any]:
        """One setting.

        Raises
        ------
        NotFound
            ``Setting not found`` (404).
        """
        with self.db() as s:
            row = repo.get_setting(s, key)
            if row is None:
                raise NotFound(NOT_FOUND)
            return repo.setting_dict(row)

    def put(self, writes: list[repo.SettingWrite], *, bulk: bool) -> list[dict[str, Any]]:
        """Store settings in one transaction; returns them as stored.

        Parameters
        ----------
        writes : list of SettingWrite
            ``(key, value, type, category, description)`` each.
        bulk : bool
            True for ``PUT /api/settings`` (field names ``settings.<i>.value``).

        Raises
        ------
        InvalidFields
            A value misfits its type (HTTP 400, the field named in ``details``).
        """
        try:
            with transaction(self.db) as s:
                return [repo.setting_dict(row) for row in repo.put_settings(s, writes, bulk=bulk)]
        except repo.SettingValueError as exc:
            raise InvalidFields([{"field": ".".join(str(p) for p in exc.loc),
                                  "message": exc.reason}]) from exc

    def delete(self, key: str) -> None:
        """Delete one setting.

        Raises
        ------
        NotFound
            ``Setting not found`` (404).
        """
        with transaction(self.db) as s:
            if not repo.delete_setting(s, key):
                raise NotFound(NOT_FOUND)
