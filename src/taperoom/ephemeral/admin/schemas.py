"""Bodies of the curator's JSON API (``/admin/api/...``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from taperoom.ephemeral.schemas import ErrorPublic, _Public


class AdminTrackPublic(_Public):
    """One track as the curator's page shows it."""

    filename: str
    title: str = Field(description="The file name without its extension")
    duration: float = Field(description="Seconds")
    overall_degradation: float = Field(description="Percent, as in GET /tracks")
    total_streams: int = Field(description="Streams started")
    wear_model: str = Field(description="Name of the wear model its plays use")
    own_wear_model: bool = Field(
        description="True when the curator chose it; false when it is WEAR_MODEL's")
    pristine: bool = Field(description="A pristine copy is kept, so the track can be reset")


class DeletedPublic(_Public):
    """Answer of ``DELETE /admin/api/tracks/<f>``."""

    deleted: str = Field(description="Name of the track removed")


class RestoredPublic(_Public):
    """Answer of ``POST /admin/api/restore``."""

    restored: list[str] = Field(description="Tracks of the archive, now in place")
    removed: list[str] = Field(description="Tracks that were not in the archive, now gone")


_ADMIN_ERRORS: dict[int | str, str] = {
    400: "Bad name, not decodable audio, a malformed body or archive",
    401: "Neither a valid session nor Authorization: Bearer <ADMIN_TOKEN>",
    403: "A change with the session cookie but without its CSRF token",
    404: "No such track (or no pristine copy to reset from)",
    409: "A track of that name exists",
    413: "Over ADMIN_UPLOAD_MAX_BYTES or ADMIN_RESTORE_MAX_BYTES",
    422: "The pristine copy does not fit the track",
    429: "Too many failed sign-ins or tokens (ADMIN_LOGIN_RATE_LIMIT)",
    503: "A lock was not granted within LOCK_TIMEOUT",
    "4XX": "Any other client error (405, for instance)",
}


def admin_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of the curator's routes: each error status (and ``4XX``)
    answers :class:`~taperoom.ephemeral.schemas.ErrorPublic`."""
    keys: list[int | str] = [401, 404, 429, *statuses, "4XX"]
    return {key: {"model": ErrorPublic, "description": _ADMIN_ERRORS[key]} for key in keys}
