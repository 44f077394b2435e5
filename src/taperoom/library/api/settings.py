"""Routes of /api/settings (contracts/library.md §2 Settings)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from taperoom.db import transaction
from taperoom.errors import NotFound
from taperoom.library.context import LibraryContext
from taperoom.library.repository import settings as repo
from taperoom.library.schemas import no_nul, ok

SettingType = Literal["string", "int", "float", "bool", "json"]
#: Setting names in the path: 1-100 characters, no NUL.
KeyParam = PathParam(min_length=1, max_length=100, pattern=r"^[^\x00]+$")
#: Optional text of a setting (category, description), no NUL.
NoNul = AfterValidator(no_nul)


class SettingBody(BaseModel):
    """Body of ``PUT /api/settings/:key``; `value` is required (null allowed)."""

    model_config = ConfigDict(extra="ignore")

    value: Any = Field(...)
    type: SettingType | None = None
    category: Annotated[str | None, NoNul] = Field(None, max_length=32)
    description: Annotated[str | None, NoNul] = Field(None, max_length=1000)


class SettingItem(SettingBody):
    """One entry of ``PUT /api/settings``."""

    key: Annotated[str, NoNul] = Field(min_length=1, max_length=100)


class BulkSettingsBody(BaseModel):
    """Body of ``PUT /api/settings``: at least one setting."""

    settings: list[SettingItem] = Field(min_length=1, max_length=1000)


def _write(ctx: LibraryContext, writes: list[repo.SettingWrite], *, bulk: bool
           ) -> list[dict[str, Any]]:
    """Store settings in one transaction; a value that misfits its type is a 400 with details."""
    try:
        with transaction(ctx.sessions) as s:
            return [repo.setting_dict(row) for row in repo.put_settings(s, writes, bulk=bulk)]
    except repo.SettingValueError as exc:
        raise RequestValidationError([{"loc": ("body", *exc.loc), "msg": exc.reason,
                                       "type": "value_error"}]) from exc


def build_router(ctx: LibraryContext) -> APIRouter:
    """Router of the settings routes.

    Values go out parsed by their type; writes are checked against the type
    first (400 on a mismatch) and a bulk write is one transaction.
    """
    r = APIRouter()

    @r.get("")
    def list_settings(category: str | None = None) -> dict[str, Any]:
        with ctx.sessions() as s:
            rows = [repo.setting_dict(row)
                    for row in repo.list_settings(s, category or None)]
        return ok(rows, count=len(rows))

    @r.get("/categories")
    def list_categories() -> dict[str, Any]:
        with ctx.sessions() as s:
            return ok(repo.categories(s))

    @r.get("/{key}")
    def get_setting(key: str = KeyParam) -> dict[str, Any]:
        with ctx.sessions() as s:
            row = repo.get_setting(s, key)
            if row is None:
                raise NotFound("Setting not found")
            return ok(repo.setting_dict(row))

    @r.put("")
    def put_many(body: BulkSettingsBody) -> dict[str, Any]:
        writes = [repo.SettingWrite(i.key, i.value, i.type, i.category, i.description)
                  for i in body.settings]
        rows = _write(ctx, writes, bulk=True)
        return ok(rows, count=len(rows))

    @r.put("/{key}")
    def put_one(body: SettingBody, key: str = KeyParam) -> dict[str, Any]:
        write = repo.SettingWrite(key, body.value, body.type, body.category, body.description)
        return ok(_write(ctx, [write], bulk=False)[0])

    @r.delete("/{key}")
    def delete_setting(key: str = KeyParam) -> dict[str, Any]:
        with transaction(ctx.sessions) as s:
            if not repo.delete_setting(s, key):
                raise NotFound("Setting not found")
        return {"success": True, "message": "Setting deleted successfully"}

    return r
