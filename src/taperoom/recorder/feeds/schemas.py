"""Response shapes of the feed routes, and the station object with its feed link."""

from __future__ import annotations

from pydantic import Field

from taperoom.recorder.schemas import StationPublic, _Public


class StationFeedPublic(StationPublic):
    """A station as ``/api/streams`` answers it: the contract's fields plus
    ``feed_url``, its podcast feed with the feed's secret token."""

    feed_url: str = Field(description="RSS podcast feed of the station's recordings, "
                                      "with its secret token")


class FeedLinkPublic(_Public):
    """One station's feed link."""

    station_id: int
    name: str
    feed_url: str


class FeedLinksPublic(_Public):
    """``GET /api/feeds``: every feed link."""

    public: bool = Field(description="PUBLIC_FEEDS: feeds open without their tokens too")
    all_feed_url: str = Field(description="Feed of the recordings of every station")
    stations: list[FeedLinkPublic]


class FeedRotatedPublic(_Public):
    """A feed's new link after its token was rotated."""

    station_id: int | None = Field(description="None for the feed of all stations")
    feed_url: str
    message: str
