"""FastAPI dependencies of the library routers: the services of the running app.

Each route names the service it uses with one of the ``...Dep`` aliases below
(as the FastAPI full-stack template's ``api/deps.py``); the services are those
:func:`taperoom.library.app.create_app` stored on ``app.state.services``. The
dependencies are ``async`` so that FastAPI calls them on the event loop, without
a thread hop per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket

from taperoom.enginelink.status import EngineStatus
from taperoom.leader import Leadership
from taperoom.library.analysis import AnalysisService
from taperoom.library.context import LibraryServices
from taperoom.library.directories import DirectoryService
from taperoom.library.duplicates import DuplicateService
from taperoom.library.fileops import FileOperations
from taperoom.library.leadercalls import WatcherControls
from taperoom.library.scanner.manager import ScanQueue
from taperoom.library.settings_service import SettingsService
from taperoom.library.suggestions import SuggestionService
from taperoom.library.tracks import TrackService
from taperoom.playlists.crates import CrateService
from taperoom.playlists.exporter import PlaylistExporter
from taperoom.playlists.importer import PlaylistImporter
from taperoom.playlists.service import PlaylistService
from taperoom.playlists.sessions import SessionService
from taperoom.playlists.smartlists import SmartPlaylists
from taperoom.playlists.thinking import ThinkingPlaylist
from taperoom.web.ws import WebSocketHub


def _services(request: Request) -> LibraryServices:
    services: LibraryServices = request.app.state.services
    return services


async def track_service(request: Request) -> TrackService:
    """The track service."""
    return _services(request).tracks


async def suggestion_service(request: Request) -> SuggestionService:
    """The next-track suggestions."""
    return _services(request).suggestions


async def directory_service(request: Request) -> DirectoryService:
    """The directory service."""
    return _services(request).directories


async def duplicate_service(request: Request) -> DuplicateService:
    """The duplicate service."""
    return _services(request).duplicates


async def file_operations(request: Request) -> FileOperations:
    """The file operations (move, rename, delete)."""
    return _services(request).fileops


async def scan_queue(request: Request) -> ScanQueue:
    """The scan manager."""
    return _services(request).scans


async def watcher(request: Request) -> WatcherControls:
    """The file watcher's controls (it runs in the leader process)."""
    return _services(request).watcher_controls


async def settings_service(request: Request) -> SettingsService:
    """The user settings."""
    return _services(request).settings_store


async def analysis_service(request: Request) -> AnalysisService:
    """The analysis queue."""
    return _services(request).analysis


async def playlist_service(request: Request) -> PlaylistService:
    """The playlists and their tracks."""
    return _services(request).playlists


async def session_service(request: Request) -> SessionService:
    """The DJ sessions."""
    return _services(request).sessions


async def smart_playlists(request: Request) -> SmartPlaylists:
    """Refresh, conversion and explanation of smart playlists."""
    return _services(request).smart


async def thinking_playlist(request: Request) -> ThinkingPlaylist:
    """The thinking playlist."""
    return _services(request).thinking


async def crate_service(request: Request) -> CrateService:
    """The playlist folders (crates)."""
    return _services(request).crates


async def playlist_exporter(request: Request) -> PlaylistExporter:
    """The M3U8 and rekordbox XML exports."""
    return _services(request).exporter


async def playlist_importer(request: Request) -> PlaylistImporter:
    """The imports of M3U and rekordbox XML files."""
    return _services(request).importer


async def leadership(request: Request) -> Leadership:
    """This worker process's leadership."""
    return _services(request).leadership


async def engine_status(request: Request) -> EngineStatus:
    """The status of the link to the audio engine."""
    return _services(request).engine_status


async def websocket_hub(websocket: WebSocket) -> WebSocketHub:
    """The app's WebSocket hub (forwards bus events to ``/ws`` clients)."""
    hub: WebSocketHub = websocket.app.state.hub
    return hub


TrackServiceDep = Annotated[TrackService, Depends(track_service)]
SuggestionServiceDep = Annotated[SuggestionService, Depends(suggestion_service)]
DirectoryServiceDep = Annotated[DirectoryService, Depends(directory_service)]
DuplicateServiceDep = Annotated[DuplicateService, Depends(duplicate_service)]
FileOperationsDep = Annotated[FileOperations, Depends(file_operations)]
ScanQueueDep = Annotated[ScanQueue, Depends(scan_queue)]
WatcherDep = Annotated[WatcherControls, Depends(watcher)]
SettingsServiceDep = Annotated[SettingsService, Depends(settings_service)]
AnalysisServiceDep = Annotated[AnalysisService, Depends(analysis_service)]
PlaylistServiceDep = Annotated[PlaylistService, Depends(playlist_service)]
SessionServiceDep = Annotated[SessionService, Depends(session_service)]
SmartPlaylistsDep = Annotated[SmartPlaylists, Depends(smart_playlists)]
ThinkingPlaylistDep = Annotated[ThinkingPlaylist, Depends(thinking_playlist)]
CrateServiceDep = Annotated[CrateService, Depends(crate_service)]
PlaylistExporterDep = Annotated[PlaylistExporter, Depends(playlist_exporter)]
PlaylistImporterDep = Annotated[PlaylistImporter, Depends(playlist_importer)]
LeadershipDep = Annotated[Leadership, Depends(leadership)]
EngineStatusDep = Annotated[EngineStatus, Depends(engine_status)]
WebSocketHubDep = Annotated[WebSocketHub, Depends(websocket_hub)]
