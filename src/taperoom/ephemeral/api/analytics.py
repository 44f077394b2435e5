"""Analytics: ``GET /api/analytics`` (JSON or CSV) and the ``GET /analytics`` page.

Both show, for one track (``?filename=``) or for all, the plays per time bucket
and how the degradation grew (:mod:`taperoom.ephemeral.analytics`). The page
is server-rendered (Jinja2) and draws its charts with Chart.js, served from
``/static/vendor`` (nothing is loaded from another site); it reads
``/api/analytics`` and follows new plays over ``/ws/wear``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from taperoom import __version__
from taperoom.ephemeral.analytics.schemas import CSV_COLUMNS, AnalyticsPublic
from taperoom.ephemeral.analytics.service import AnalyticsService
from taperoom.ephemeral.api.deps import ServiceDep
from taperoom.ephemeral.schemas import error_responses
from taperoom.errors import NotFound

router = APIRouter(tags=["analytics"])

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
#: Version of the Chart.js build in ``static/vendor`` (README: "Analytics").
CHART_JS_VERSION = "4.6.2"


async def analytics_service(request: Request) -> AnalyticsService:
    """The app's :class:`~taperoom.ephemeral.analytics.service.AnalyticsService`."""
    found: AnalyticsService = request.app.state.services.analytics
    return found


AnalyticsDep = Annotated[AnalyticsService, Depends(analytics_service)]

_CSV = {"schema": {"type": "string"},
        "example": ",".join(CSV_COLUMNS) + "\r\n2026-01-01T12:00:00Z,1767268800,3,0.75\r\n"}
ANALYTICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "JSON (format=json), or CSV (format=csv): a header row "
                         f"`{','.join(CSV_COLUMNS)}`, then one row per bucket",
          "content": {"text/csv": _CSV}},
    **error_responses(400, 404),
}


@router.get("/api/analytics", response_model=AnalyticsPublic, responses=ANALYTICS_RESPONSES)
def analytics(
        analytics: AnalyticsDep,
        filename: Annotated[str | None, Query(
            description="One track (404 when unknown); empty or absent for all tracks")] = None,
        format: Annotated[Literal["json", "csv"], Query(
            description="json (the declared body) or csv")] = "json",
        from_: Annotated[str | None, Query(
            alias="from", description="Start: Unix seconds or ISO 8601 (UTC without an "
                                      "offset); default the first recorded play, or "
                                      "an hour before `to` when that is earlier")] = None,
        to: Annotated[str | None, Query(
            description="End: Unix seconds or ISO 8601; default now")] = None,
        bucket: Annotated[Literal["auto", "minute", "hour", "day"], Query(
            description="Bucket size; auto takes the smallest that gives at most 240 "
                        "buckets")] = "auto",
) -> Response:
    """Plays per time bucket and the growth of degradation, for a track or for all."""
    report = analytics.report(filename, start=from_, end=to, bucket=bucket)
    if format == "csv":
        return Response(analytics.to_csv(report), media_type="text/csv; charset=utf-8")
    return JSONResponse(report.model_dump(mode="json", by_alias=True))


PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such track: the page, saying so",
          "content": {"text/html": {"schema": {"type": "string"}}}},
    **error_responses(),
}


@router.get("/analytics", response_class=HTMLResponse, responses=PAGE_RESPONSES)
async def analytics_page(
        service: ServiceDep, analytics: AnalyticsDep,
        filename: Annotated[str | None, Query(
            description="One track; empty or absent for all tracks")] = None,
) -> HTMLResponse:
    """The analytics page: charts of plays and degradation over time.

    An unknown track answers this page with status 404 and says so."""
    tracks = [t.filename for t in await run_in_threadpool(service.tracks)]
    name, status, error = None, 200, None
    if filename:
        try:
            name = await run_in_threadpool(analytics.track_name, filename)
        except NotFound:
            status, error = 404, f"No track is called {filename!r}."
    html = _env.get_template("analytics.html").render(
        version=__version__, chart_version=CHART_JS_VERSION, tracks=tracks,
        filename=name, error=error)
    return HTMLResponse(html, status_code=status)
