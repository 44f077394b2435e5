"""Routes of /api/settings (contracts/library.md §2 Settings)."""

from __future__ import annotations

from typing import Any

from fastapi import Path as PathParam

from taperoom.library.api.deps import SettingsServiceDep
from taperoom.library.api.wire import library_router
from taperoom.library.repository.settings import SettingWrite
from taperoom.library.schemas import (
    BulkSettingsBody,
    Envelope,
    SettingBody,
    SettingPublic,
    ok,
)

#: Setting names in the path: 1-100 characters, no NUL.
KeyParam = PathParam(min_length=1, max_length=100, pattern=r"^[^\x00]+$")

router = library_router("/api/settings", tag="settings")


@router.get("", response_model=Envelope[list[SettingPublic]])
def list_settings(settings: SettingsServiceDep, category: str | None = None) -> dict[str, Any]:
    """``{success, count, data: [setting]}`` (of one category when given)."""
    rows = settings.list_settings(category or None)
    return ok(rows, count=len(rows))


@router.get("/categories", response_model=Envelope[list[str]])
def list_categories(settings: SettingsServiceDep) -> dict[str, Any]:
    """``{success, data: [category]}``."""
    return ok(settings.categories())


@router.get("/{key}", response_model=Envelope[SettingPublic])
def get_setting(settings: SettingsServiceDep, key: str = KeyParam) -> dict[str, Any]:
    """``{success, data: setting}``; 404 ``Setting not found``."""
    return ok(settings.get(key))


@router.put("", response_model=Envelope[list[SettingPublic]])
def put_many(body: BulkSettingsBody, settings: SettingsServiceDep) -> dict[str, Any]:
    """``{success, count, data: [setting]}``; one transaction; 400 on a value misfitting
    its type (``details`` names ``settings.<i>.value``)."""
    writes = [SettingWrite(i.key, i.value, i.type, i.category, i.description)
              for i in body.settings]
    rows = settings.put(writes, bulk=True)
    return ok(rows, count=len(rows))


@router.put("/{key}", response_model=Envelope[SettingPublic])
def put_one(body: SettingBody, settings: SettingsServiceDep,
            key: str = KeyParam) -> dict[str, Any]:
    """``{success, data: setting}``; 400 on a value misfitting its type."""
    write = SettingWrite(key, body.value, body.type, body.category, body.description)
    return ok(settings.put([write], bulk=False)[0])


@router.delete("/{key}", response_model=Envelope[None])
def delete_setting(settings: SettingsServiceDep, key: str = KeyParam) -> dict[str, Any]:
    """``{success, message: "Setting deleted successfully"}``; 404."""
    settings.delete(key)
    return {"success": True, "message": "Setting deleted successfully"}
