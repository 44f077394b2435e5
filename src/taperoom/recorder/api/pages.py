"""Server-rendered dashboard of the recorder (HTML pages, mounted without prefix).

Pages render their first view from the services (so they
work without JavaScript and never wait on a second request); actions (save,
delete, record, stop, retry, backup) and live status go through the ``/api/...``
endpoints and the ``/ws`` WebSocket from small vanilla scripts in
``recorder/web/static`` (served by the app at ``/static``). Every time shown is
in the configured zone (``TZ``), which the footer names.

Routes
------
``/`` dashboard; ``/streams``, ``/streams/new``, ``/streams/{id}/edit``,
``/streams/{id}/artwork`` (the stored cover image, for previews);
``/schedules``, ``/schedules/new``, ``/schedules/{id}/edit``; ``/sessions``;
``/logs``; ``/settings``; ``/backup``. An unknown or malformed id answers a 404
HTML page, never a JSON error or a 500.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from pydantic import SecretStr

from taperoom import __version__
from taperoom.config import redact_url
from taperoom.errors import NotFound
from taperoom.recorder.api.deps import (
    FeedBaseDep,
    FeedServiceDep,
    RecordingServiceDep,
    ScheduleServiceDep,
    SessionServiceDep,
    SettingsDep,
    StationServiceDep,
)
from taperoom.recorder.logs import LEVELS as LOG_LEVELS
from taperoom.recorder.logs import OPERATION_TYPES as LOG_OPERATIONS
from taperoom.recorder.models import SessionStatus
from taperoom.recorder.scheduler import describe
from taperoom.recorder.schedules import ScheduleService
from taperoom.recorder.schemas import PATTERN_FIELDS, ErrorPublic
from taperoom.recorder.service import RecordingService
from taperoom.recorder.sessions import SessionService
from taperoom.recorder.settings import RecorderSettings
from taperoom.recorder.stations import StationService
from taperoom.web.auth import current_csrf_token, current_user

log = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parent.parent / "web"
TEMPLATES = WEB / "templates"

#: Main navigation: (key, href, label).
NAV: tuple[tuple[str, str, str], ...] = (
    ("dashboard", "/", "Dashboard"),
    ("streams", "/streams", "Stations"),
    ("schedules", "/schedules", "Schedules"),
    ("sessions", "/sessions", "Sessions"),
    ("logs", "/logs", "Logs"),
    ("settings", "/settings", "Settings"),
    ("backup", "/backup", "Backup"),
)

#: Cron presets offered by the schedule form: (label, expression).
CRON_PRESETS: tuple[tuple[str, str], ...] = (
    ("every day 21:00", "0 21 * * *"),
    ("weekdays 21:00", "0 21 * * 1-5"),
    ("weekends 10:00", "0 10 * * 0,6"),
    ("Mondays 18:30", "30 18 * * 1"),
    ("every hour", "0 * * * *"),
    ("1st of the month 12:00", "0 12 1 * *"),
)

#: Sessions listed per page of ``/sessions``.
SESSIONS_PER_PAGE = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECRET_NAME = re.compile(r"secret|password|passwd|token|api_?key|private", re.I)


# -- formatting (pure) ---------------------------------------------------------------------


def to_local(value: datetime | str | None, zone: tzinfo) -> datetime | None:
    """An instant in `zone`.

    Parameters
    ----------
    value : datetime, str or None
        A stored naive-UTC datetime, an aware datetime, or an ISO 8601 string
        (with offset, as the API sends; without one it is taken as UTC).
    zone : tzinfo
        Target zone.

    Returns
    -------
    datetime or None
        Aware datetime in `zone`; None for None, an empty or unparsable string.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone)


def format_time(value: datetime | str | None, zone: tzinfo, *, seconds: bool = False) -> str:
    """``YYYY-MM-DD HH:MM[:SS]`` wall-clock time in `zone`; ``—`` when unknown."""
    local = to_local(value, zone)
    if local is None:
        return "—"
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def format_bytes(n: float | None) -> str:
    """Size in binary units (``1.5 MiB``; IEC 80000-13 prefixes); ``—`` for None."""
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - loop always returns


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS`` (or ``M:SS`` under an hour) of a length in seconds; ``—`` for None."""
    if seconds is None:
        return "—"
    total = max(0, round(float(seconds)))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def gap_summary(gaps: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """Count and total length of a session's gaps.

    Parameters
    ----------
    gaps : iterable of mapping, or None
        The session's ``gaps`` (``{at_seconds, started_at, length_seconds, reason}``).

    Returns
    -------
    dict
        ``{"count": int, "total_seconds": float (s, 3 decimals), "entries": list}``.
    """
    items = list(gaps or [])
    total = sum(float(g.get("length_seconds") or 0.0) for g in items)
    return {"count": len(items), "total_seconds": round(total, 3), "entries": items}


def effective_settings(settings: RecorderSettings) -> list[dict[str, str]]:
    """The recorder's effective settings for display, secrets hidden.

    Returns
    -------
    list of dict
        ``{"name": field, "env": environment variable, "value": shown text}``,
        in field order. Fields whose name suggests a secret show ``hidden``;
        URLs show no password (:func:`taperoom.config.redact_url`); nothing is
        ever read from the key files.
    """
    out = []
    for name, info in type(settings).model_fields.items():
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        env = str(choices[0]) if choices else (str(alias) if alias else name).upper()
        value = getattr(settings, name)
        if isinstance(value, SecretStr):  # shown below as a redacted URL or "hidden"
            value = value.get_secret_value()
        if _SECRET_NAME.search(name):
            shown = "hidden" if value else ""
        elif name.endswith("_url"):
            shown = redact_url(str(value or ""))
        elif isinstance(value, Path):
            shown = str(value.resolve())
        else:
            shown = str(value)
        out.append({"name": name, "env": env.upper(), "value": shown})
    return out


def ssh_key_files(folder: Path) -> list[str]:
    """Names of the private keys and ``known_hosts`` in ``SSH_CONFIG_DIR`` (never contents)."""
    if not folder.is_dir():
        return []
    names = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and ((p.name.startswith("id_") and not p.name.endswith(".pub"))
                            or p.name in ("known_hosts", "config")):
            names.append(p.name)
    return names


def system_health(settings: RecorderSettings) -> dict[str, Any]:
    """Disk (recordings and data folders), memory and CPU figures from psutil.

    Returns
    -------
    dict
        ``disks``: list of ``{label, path, total, used, free, percent}`` (bytes,
        percent used); ``memory``: ``{total, used, percent}``; ``cpu_percent``
        (since the previous call in this process; 0.0 on the first);
        ``cpu_count``; ``load``: 1/5/15 min load averages or None.
    """
    import psutil

    disks = []
    seen: set[int] = set()
    for label, path in (("Recordings", settings.recordings_dir), ("Data", settings.data_dir)):
        try:
            dev = os.stat(path).st_dev
            usage = shutil.disk_usage(path)
        except OSError:
            continue
        if dev in seen:
            continue
        seen.add(dev)
        disks.append({"label": label, "path": str(path), "total": usage.total,
                      "used": usage.used, "free": usage.free,
                      "percent": round(100.0 * usage.used / usage.total, 1)
                      if usage.total else 0.0})
    mem = psutil.virtual_memory()
    try:
        load: tuple[float, ...] | None = tuple(round(x, 2) for x in psutil.getloadavg())
    except (AttributeError, OSError):
        load = None
    return {"disks": disks,
            "memory": {"total": mem.total, "used": mem.total - mem.available,
                       "percent": round(float(mem.percent), 1)},
            "cpu_percent": round(float(psutil.cpu_percent(interval=None)), 1),
            "cpu_count": psutil.cpu_count() or 1, "load": load}


def parse_id(raw: str) -> int:
    """A positive integer id from a path segment; NotFound otherwise (the page is a 404)."""
    if not raw.isdigit() or len(raw) > 18 or int(raw) <= 0:
        raise NotFound(f"no such id {raw!r}")
    return int(raw)


def _int_or_none(raw: str | None, *, lo: int = 0) -> int | None:
    if raw is None or not raw.strip().isdigit():
        return None
    value = int(raw.strip())
    return value if value >= lo else None


@pass_context
def _localtime(context: Context, value: datetime | str | None, seconds: bool = False) -> str:
    """The ``localtime`` filter: :func:`format_time` in the page's ``zone``."""
    return format_time(value, context["zone"], seconds=seconds)


def make_environment() -> Environment:
    """The Jinja2 environment of the dashboard.

    Templates come from :data:`TEMPLATES` and are autoescaped; the filters
    ``bytes``, ``duration`` and ``localtime`` (in the ``zone`` every page is
    rendered with) and the globals ``NAV``, ``version``, ``csrf_token()`` and
    ``current_user()`` (of the signed-in session, empty without one) are set.
    """
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["bytes"] = format_bytes
    env.filters["duration"] = format_duration
    env.filters["localtime"] = _localtime
    env.globals["NAV"] = NAV
    env.globals["version"] = __version__
    env.globals["csrf_token"] = current_csrf_token
    env.globals["current_user"] = current_user
    return env


#: The dashboard's templates (the same for every app: the zone is a page variable).
ENV = make_environment()


def render(settings: RecorderSettings, template: str, *, status_code: int = 200,
           **values: Any) -> HTMLResponse:
    """Render `template` (with ``zone`` and ``zone_name`` added) as an HTML response.

    Parameters
    ----------
    settings : RecorderSettings
        ``TZ``: the zone of every time shown.
    template : str
        File name in :data:`TEMPLATES`.
    status_code : int
        HTTP status of the response.
    **values
        Template variables; the layout expects ``title``, ``active`` (nav key) and
        ``page`` (``data-page`` of the body).
    """
    html = ENV.get_template(template).render(zone=settings.zone,
                                             zone_name=settings.zone_name, **values)
    return HTMLResponse(html, status_code=status_code)


def not_found(settings: RecorderSettings, message: str) -> HTMLResponse:
    """The 404 page."""
    return render(settings, "404.html", status_code=404, title="Not found", active="",
                  page="error", message=message)


# -- page data (read through the services) ----------------------------------------------


def all_stations(stations: StationService) -> list[dict[str, Any]]:
    """Every station (``station_dict``), by name."""
    return stations.list(limit=10_000)


def schedule_rows(schedules: ScheduleService, stations: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """Every schedule with ``station_name``, ``description`` and the live next run."""
    names = {s["id"]: s["name"] for s in stations}
    rows = schedules.list(limit=10_000)
    for s in rows:
        s["station_name"] = names.get(s["stream_config_id"], f"#{s['stream_config_id']}")
        s["description"] = describe(s["cron_expression"])
        live = None
        if s["is_active"]:
            try:
                live = schedules.live_next_run(s["id"])
            except Exception:  # a broken job store must not take the page down
                log.exception("next run of schedule %s", s["id"])
        if live is not None:
            s["next_run_time"] = live.isoformat()
        elif not s["is_active"]:
            s["next_run_time"] = None
    return rows


def active_sessions(recordings: RecordingService) -> list[dict[str, Any]]:
    """Sessions being recorded or processed, with live ``progress``."""
    sessions = recordings.active()
    for s in sessions:
        s.setdefault("progress", None)
    return sessions


def session_rows(sessions: SessionService, **filters: Any) -> list[dict[str, Any]]:
    """Sessions (newest first) with their gap summary, for the tables."""
    rows = sessions.list(**filters)
    for s in rows:
        s["gap_summary"] = gap_summary(s.get("gaps"))
        s["file_name"] = Path(s["output_file_path"]).name if s["output_file_path"] else None
    return rows


# -- routes -----------------------------------------------------------------------------

#: An HTML page (documented as such in ``/openapi.json``).
PAGE: dict[str, Any] = {"response_class": HTMLResponse}
#: Pages of one station or schedule: a 404 page for an unknown or malformed id.
PAGE_404: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown or malformed id: the 404 page",
          "content": {"text/html": {"schema": {"type": "string"}}}}}
#: Media types of the stored cover images (``ARTWORK_EXTENSIONS``' Pillow formats).
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp")

router = APIRouter(tags=["pages"], responses={
    "4XX": {"model": ErrorPublic,
            "description": "Other client errors (a wrong method...): the JSON error body"}})


@router.get("/", **PAGE)
def dashboard(settings: SettingsDep, stations: StationServiceDep,
              schedules: ScheduleServiceDep, recordings: RecordingServiceDep,
              sessions: SessionServiceDep) -> HTMLResponse:
    """The dashboard: live recordings, next runs, recent sessions, disk and health."""
    station_list = all_stations(stations)
    rows = sorted(schedule_rows(schedules, station_list),
                  key=lambda s: (not s["is_active"], s["next_run_time"] is None,
                                 to_local(s["next_run_time"], UTC) or _EPOCH, s["id"]))
    return render(
        settings, "dashboard.html", title="Dashboard", active="dashboard", page="dashboard",
        stations=station_list, schedules=rows, live=active_sessions(recordings),
        recent=session_rows(sessions, limit=10), stats=sessions.statistics(),
        disk=recordings.disk_status(), health=system_health(settings),
        active_schedules=sum(1 for s in rows if s["is_active"]),
        max_concurrent=settings.max_concurrent_recordings)


# -- stations --


@router.get("/streams", **PAGE)
def streams(settings: SettingsDep, stations: StationServiceDep,
            schedules: ScheduleServiceDep, feeds: FeedServiceDep, base: FeedBaseDep
            ) -> HTMLResponse:
    """The stations, with how many schedules each has, and the feed of all stations."""
    station_list = all_stations(stations)
    counts: dict[int, int] = {}
    for s in schedule_rows(schedules, station_list):
        counts[s["stream_config_id"]] = counts.get(s["stream_config_id"], 0) + 1
    return render(settings, "streams.html", title="Stations", active="streams",
                  page="streams", stations=station_list, schedule_counts=counts,
                  feed_url=feeds.all_feed_url(base), public=settings.public_feeds)


def _station_form(settings: RecorderSettings, station: dict[str, Any] | None,
                  feed_url: str | None = None) -> HTMLResponse:
    return render(
        settings, "stream_form.html", title="Edit station" if station else "New station",
        active="streams", page="stream-form", station=station, feed_url=feed_url,
        public=settings.public_feeds,
        pattern_fields=sorted(PATTERN_FIELDS), max_artwork_bytes=settings.max_artwork_bytes,
        default_bitrate=settings.mp3_bitrate_kbps, default_split_tracks=settings.split_tracks)


@router.get("/streams/new", **PAGE)
def stream_new(settings: SettingsDep) -> HTMLResponse:
    """The form of a new station."""
    return _station_form(settings, None)


@router.get("/streams/{station_id}/edit", responses=PAGE_404, **PAGE)
def stream_edit(station_id: str, settings: SettingsDep, stations: StationServiceDep,
                feeds: FeedServiceDep, base: FeedBaseDep) -> HTMLResponse:
    """The form of a station, and its podcast feed link."""
    try:
        station = stations.get(parse_id(station_id))
        feed_url = feeds.feed_url(station["id"], base)
    except NotFound as exc:
        return not_found(settings, str(exc))
    return _station_form(settings, station, feed_url)


@router.get("/streams/{station_id}/artwork", response_class=FileResponse, responses={
    200: {"description": "The station's cover image",
          "content": {t: {"schema": {"type": "string", "format": "binary"}}
                      for t in IMAGE_TYPES}},
    **PAGE_404})
def stream_artwork(station_id: str, settings: SettingsDep, stations: StationServiceDep
                   ) -> Response:
    """The stored cover image of a station (for previews); the 404 page without one."""
    try:
        path = stations.artwork_file(parse_id(station_id))
    except NotFound as exc:
        return not_found(settings, str(exc))
    if path is None:
        return not_found(settings, "this station has no artwork")
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


# -- schedules --


@router.get("/schedules", **PAGE)
def schedules_page(settings: SettingsDep, stations: StationServiceDep,
                   schedules: ScheduleServiceDep) -> HTMLResponse:
    """The schedules, with their stations and next runs."""
    station_list = all_stations(stations)
    return render(settings, "schedules.html", title="Schedules", active="schedules",
                  page="schedules", schedules=schedule_rows(schedules, station_list),
                  stations=station_list)


def _schedule_form(settings: RecorderSettings, stations: StationService,
                   schedule: dict[str, Any] | None, station_id: int | None) -> HTMLResponse:
    return render(
        settings, "schedule_form.html", title="Edit schedule" if schedule else "New schedule",
        active="schedules", page="schedule-form", schedule=schedule,
        stations=all_stations(stations), presets=CRON_PRESETS,
        selected_station=(schedule or {}).get("stream_config_id") or station_id,
        default_max_retries=settings.default_max_retries)


@router.get("/schedules/new", **PAGE)
def schedule_new(request: Request, settings: SettingsDep, stations: StationServiceDep
                 ) -> HTMLResponse:
    """The form of a new schedule (``?station=<id>`` preselects the station)."""
    return _schedule_form(settings, stations, None,
                          _int_or_none(request.query_params.get("station"), lo=1))


@router.get("/schedules/{schedule_id}/edit", responses=PAGE_404, **PAGE)
def schedule_edit(schedule_id: str, settings: SettingsDep, stations: StationServiceDep,
                  schedules: ScheduleServiceDep) -> HTMLResponse:
    """The form of a schedule."""
    try:
        row = schedules.get(parse_id(schedule_id))
    except NotFound as exc:
        return not_found(settings, str(exc))
    row["description"] = describe(row["cron_expression"])
    return _schedule_form(settings, stations, row, None)


# -- sessions --


@router.get("/sessions", **PAGE)
def sessions_page(request: Request, settings: SettingsDep, stations: StationServiceDep,
                  sessions: SessionServiceDep) -> HTMLResponse:
    """The session history, filtered by ``status`` and ``station``, 50 a ``page``."""
    q = request.query_params
    status = q.get("status") or None
    if status not in {s.value for s in SessionStatus}:
        status = None
    station_id = _int_or_none(q.get("station"), lo=1)
    page_no = _int_or_none(q.get("page"), lo=1) or 1
    rows = session_rows(sessions, status=status, station_id=station_id,
                        skip=(page_no - 1) * SESSIONS_PER_PAGE, limit=SESSIONS_PER_PAGE + 1)
    more = len(rows) > SESSIONS_PER_PAGE
    rows = rows[:SESSIONS_PER_PAGE]
    base = {k: v for k, v in (("status", status), ("station", station_id)) if v}

    def link(n: int) -> str:
        return "/sessions?" + urlencode({**base, "page": n})

    return render(
        settings, "sessions.html", title="Sessions", active="sessions", page="sessions",
        sessions=rows, stations=all_stations(stations), status=status, station_id=station_id,
        statuses=[s.value for s in SessionStatus],
        page_no=page_no, prev_link=link(page_no - 1) if page_no > 1 else None,
        next_link=link(page_no + 1) if more else None, stats=sessions.statistics())


# -- operations --


@router.get("/logs", **PAGE)
def logs_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The structured log viewer (filtered by ``operation_type`` and ``level``)."""
    q = request.query_params
    op = q.get("operation_type") if q.get("operation_type") in LOG_OPERATIONS else ""
    level = (q.get("level") or "").upper()
    return render(settings, "logs.html", title="Logs", active="logs", page="logs",
                  operations=LOG_OPERATIONS, levels=LOG_LEVELS, operation=op,
                  level=level if level in LOG_LEVELS else "",
                  log_dir=str(settings.log_dir.resolve()))


@router.get("/settings", **PAGE)
def settings_page(settings: SettingsDep, recordings: RecordingServiceDep) -> HTMLResponse:
    """The effective settings (secrets hidden), disks, and the SSH key files' names."""
    return render(settings, "settings.html", title="Settings", active="settings",
                  page="settings", settings_rows=effective_settings(settings),
                  health=system_health(settings), disk=recordings.disk_status(),
                  ssh_keys=ssh_key_files(settings.ssh_config_dir),
                  ssh_dir=str(settings.ssh_config_dir.resolve()))


@router.get("/backup", **PAGE)
def backup_page(settings: SettingsDep) -> HTMLResponse:
    """Backups, export and import."""
    return render(settings, "backup.html", title="Backup", active="backup", page="backup",
                  backups_dir=str(settings.backups_dir.resolve()))
