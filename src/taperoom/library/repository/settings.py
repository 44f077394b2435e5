"""SQL of the ``settings`` table, and the text codec of setting values.

A setting's value is stored as text beside its type (``string``, ``int``,
``float``, ``bool`` or ``json``), as the original schema did; :func:`encode_value`
checks a client's value against the type before it is stored and
:func:`decode_value` turns the stored text back into a JSON value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from taperoom.errors import InvalidInput
from taperoom.library import models

#: Types a setting may have.
SETTING_TYPES = ("string", "int", "float", "bool", "json")

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class SettingValueError(InvalidInput):
    """A setting value does not fit its type.

    Attributes
    ----------
    loc : tuple
        Where the value was in the request body (``("value",)`` or
        ``("settings", 2, "value")``).
    reason : str
        What is wrong, e.g. ``"must be an integer for type 'int'"``.
    """

    def __init__(self, loc: tuple[str | int, ...], reason: str) -> None:
        super().__init__(f"{'.'.join(str(p) for p in loc)} {reason}")
        self.loc = loc
        self.reason = reason


@dataclass(frozen=True)
class SettingWrite:
    """One setting to create or replace.

    Attributes
    ----------
    key : str
        Setting name (1-100 characters).
    value : Any
        JSON value sent by the client; checked against `type`.
    type : str or None
        One of :data:`SETTING_TYPES`; None keeps the stored type, or infers it
        from `value` for a new key.
    category, description : str or None
        None keeps the stored text (or leaves it empty for a new key).
    """

    key: str
    value: Any
    type: str | None = None
    category: str | None = None
    description: str | None = None


def infer_type(value: Any) -> str:
    """The setting type a JSON value naturally has (``bool`` before ``int``)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dict | list):
        return "json"
    return "string"


def encode_value(value: Any, type_: str, *, loc: tuple[str | int, ...] = ("value",)
                 ) -> str | None:
    """Check `value` against `type_` and return its stored text.

    Parameters
    ----------
    value : Any
        A JSON value (None stores NULL for every type).
    type_ : str
        One of :data:`SETTING_TYPES`.
    loc : tuple
        Location of the value in the request, for the error.

    Returns
    -------
    str or None
        ``"true"``/``"false"`` for bools, decimal text for numbers, compact JSON
        for ``json``, the text itself for strings.

    Raises
    ------
    SettingValueError
        If the value does not fit the type (``"abc"`` as ``int``, ``1.5`` as
        ``int``, ``NaN`` as ``float``, an object or text with a NUL character
        as ``string``, ...).
    """
    if value is None:
        return None
    if type_ == "string":
        if isinstance(value, dict | list):
            raise SettingValueError(loc, "must be a string for type 'string'")
        if isinstance(value, bool):
            return "true" if value else "false"
        if "\x00" in str(value):
            raise SettingValueError(loc, "must not contain a NUL character")
        return str(value)
    if type_ == "bool":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int) and value in (0, 1):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return "true" if value.strip().lower() in _TRUE else "false"
        raise SettingValueError(loc, "must be a boolean for type 'bool'")
    if type_ == "int":
        if isinstance(value, bool):
            raise SettingValueError(loc, "must be an integer for type 'int'")
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return str(int(value))
        if isinstance(value, str):
            try:
                return str(int(value.strip()))
            except ValueError:
                pass
        raise SettingValueError(loc, "must be an integer for type 'int'")
    if type_ == "float":
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is None or not math.isfinite(number):
            raise SettingValueError(loc, "must be a finite number for type 'float'")
        return repr(number)
    if type_ == "json":
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    raise SettingValueError((*loc[:-1], "type"), f"must be one of {', '.join(SETTING_TYPES)}")


def decode_value(text: str | None, type_: str) -> Any:
    """The JSON value of a stored setting text.

    Text that does not parse as its type (a row edited by hand) is returned as
    it is, so that one bad row never breaks the settings routes.
    """
    if text is None:
        return None
    try:
        if type_ == "bool":
            return text.strip().lower() in _TRUE
        if type_ == "int":
            return int(text)
        if type_ == "float":
            return float(text)
        if type_ == "json":
            return json.loads(text)
    except ValueError:
        return text
    return text


def setting_dict(row: models.Setting) -> dict[str, Any]:
    """Setting object of the contract: ``{key, value (parsed), type, category, description}``."""
    return {"key": row.key, "value": decode_value(row.value, row.type), "type": row.type,
            "category": row.category, "description": row.description}


def list_settings(session: Session, category: str | None = None) -> Sequence[models.Setting]:
    """All settings (of one category when given), ordered by category then key."""
    stmt = select(models.Setting).order_by(models.Setting.category, models.Setting.key)
    if category is not None:
        stmt = stmt.where(models.Setting.category == category)
    return session.scalars(stmt).all()


def categories(session: Session) -> list[str]:
    """Distinct non-empty categories, sorted."""
    stmt = (select(models.Setting.category).where(models.Setting.category.is_not(None))
            .distinct().order_by(models.Setting.category))
    return [c for c in session.scalars(stmt).all() if c]


def get_setting(session: Session, key: str) -> models.Setting | None:
    """The setting named `key`, or None."""
    return session.get(models.Setting, key)


def put_settings(session: Session, writes: Sequence[SettingWrite], *, bulk: bool = False
                 ) -> list[models.Setting]:
    """Create or replace settings, all of them or none.

    Every value is checked before anything is written, so one bad entry leaves
    the table untouched (the caller's transaction is not even dirtied). A key
    given twice takes its last entry. `bulk` only changes the error location
    (``("settings", i, "value")`` instead of ``("value",)``).

    Raises
    ------
    SettingValueError
        If a type is unknown or a value does not fit its type.
    """
    keys = [w.key for w in writes]
    existing = {row.key: row for row in session.scalars(
        select(models.Setting).where(models.Setting.key.in_(keys))).all()}
    planned: dict[str, tuple[SettingWrite, str, str | None]] = {}
    for i, w in enumerate(writes):
        loc: tuple[str | int, ...] = ("settings", i, "value") if bulk else ("value",)
        row = existing.get(w.key)
        type_ = w.type or (row.type if row is not None else infer_type(w.value))
        planned[w.key] = (w, type_, encode_value(w.value, type_, loc=loc))
    out: list[models.Setting] = []
    for key, (w, type_, text) in planned.items():
        row = existing.get(key)
        if row is None:
            row = models.Setting(key=key)
            session.add(row)
        row.value = text
        row.type = type_
        if w.category is not None:
            row.category = w.category
        if w.description is not None:
            row.description = w.description
        out.append(row)
    session.flush()
    return out


def delete_setting(session: Session, key: str) -> bool:
    """Delete the setting `key`; True if it existed."""
    result = session.execute(delete(models.Setting).where(models.Setting.key == key))
    return bool(getattr(result, "rowcount", 0))
