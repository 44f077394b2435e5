"""FastAPI dependencies of the recorder's routers: the services, by type.

Each alias (``StationServiceDep``...) is an ``Annotated[Service, Depends(...)]``
that hands a route the service built by the composition root
(:func:`taperoom.recorder.context.build_services`), read from
``request.app.state.services`` -- as the FastAPI full-stack template's
``api/deps.py`` does. Routers never build or look up a service themselves.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from taperoom.recorder.artwork import ArtworkFolder
from taperoom.recorder.backup import BackupService
from taperoom.recorder.context import RecorderServices
from taperoom.recorder.exports import ExportService
from taperoom.recorder.feeds.service import FeedService
from taperoom.recorder.monitor import MetricsSampler, SystemMonitor
from taperoom.recorder.schedules import ScheduleService
from taperoom.recorder.service import RecordingService
from taperoom.recorder.sessions import SessionService
from taperoom.recorder.settings import RecorderSettings
from taperoom.recorder.stations import StationService


def services(request: Request) -> RecorderServices:
    """The app's services (``app.state.services``)."""
    return cast(RecorderServices, request.app.state.services)


def settings(request: Request) -> RecorderSettings:
    """The recorder's settings."""
    return services(request).settings


def station_service(request: Request) -> StationService:
    """The station service."""
    return services(request).stations


def schedule_service(request: Request) -> ScheduleService:
    """The schedule service."""
    return services(request).schedules


def export_service(request: Request) -> ExportService:
    """Export and import of the configuration document."""
    return services(request).exports


def backup_service(request: Request) -> BackupService:
    """The backup service."""
    return services(request).backups


def recording_service(request: Request) -> RecordingService:
    """The recording service (record now, stop, live progress, uploads again)."""
    return services(request).recordings


def session_service(request: Request) -> SessionService:
    """The history of recording sessions."""
    return services(request).sessions


def system_monitor(request: Request) -> SystemMonitor:
    """Health and system status."""
    return services(request).monitor


def metrics_sampler(request: Request) -> MetricsSampler:
    """Resource metrics."""
    return services(request).sampler


def artwork_folder(request: Request) -> ArtworkFolder:
    """The cover art files."""
    return services(request).artwork


def feed_service(request: Request) -> FeedService:
    """The podcast feeds."""
    return services(request).feeds


def feed_base(request: Request) -> str:
    """Start of the absolute links of feeds: ``PUBLIC_BASE_URL``, else the URL the
    request came to."""
    return services(request).feeds.base_url(str(request.base_url))


SettingsDep = Annotated[RecorderSettings, Depends(settings)]
StationServiceDep = Annotated[StationService, Depends(station_service)]
ScheduleServiceDep = Annotated[ScheduleService, Depends(schedule_service)]
ExportServiceDep = Annotated[ExportService, Depends(export_service)]
BackupServiceDep = Annotated[BackupService, Depends(backup_service)]
RecordingServiceDep = Annotated[RecordingService, Depends(recording_service)]
SessionServiceDep = Annotated[SessionService, Depends(session_service)]
SystemMonitorDep = Annotated[SystemMonitor, Depends(system_monitor)]
MetricsSamplerDep = Annotated[MetricsSampler, Depends(metrics_sampler)]
ArtworkFolderDep = Annotated[ArtworkFolder, Depends(artwork_folder)]
FeedServiceDep = Annotated[FeedService, Depends(feed_service)]
FeedBaseDep = Annotated[str, Depends(feed_base)]
