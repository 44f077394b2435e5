"""RSS 2.0 podcast feeds, built with feedgen and its podcast (iTunes) extension.

:func:`render_feed` is pure: a :class:`Channel` and its :class:`Episode` list in,
the XML document out. Channel: ``title``, ``link``, ``description``,
``atom:link rel="self"``, ``lastBuildDate``, ``itunes:author``,
``itunes:image``, ``itunes:explicit``, ``itunes:category``, ``itunes:type``.
Item: ``title``, ``description``, ``guid isPermaLink="false"``, ``pubDate``,
``enclosure url length type``, ``itunes:duration``, ``itunes:episode``,
``itunes:episodeType``, ``itunes:image`` and, with chapters,
``<podcast:chapters url type="application/json+chapters"/>`` of the podcast
namespace.

``itunes:image`` is written by :class:`ImageAndChapters` rather than feedgen's
setter, which requires the URL itself to end in ``.jpg``/``.png``: ours carry a
query (``?token=``) after the file name.

References: RSS 2.0 specification (RSS Advisory Board, 2009); Apple Podcasts,
*A podcaster's guide to RSS*; Podcast Index, *The podcast namespace* 1.0
(``https://podcastindex.org/namespace/1.0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from taperoom.recorder.feeds.chapters import CHAPTERS_MEDIA_TYPE

ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST_NS = "https://podcastindex.org/namespace/1.0"
#: Name under which :class:`ImageAndChapters` is registered with feedgen.
EXTENSION = "taperoom"


@dataclass(frozen=True)
class Channel:
    """What a feed says about itself.

    Attributes
    ----------
    title, description : str
    link : str
        Web page of the feed (absolute URL).
    self_url : str
        The feed's own URL (``atom:link rel="self"``).
    author : str
        ``itunes:author``.
    image_url : str or None
        Cover art (``itunes:image`` and RSS ``image``), JPEG or PNG.
    category : str
        Apple Podcasts category (``itunes:category text``).
    explicit : bool
        ``itunes:explicit``.
    updated : datetime
        ``lastBuildDate`` (aware).
    generator : str
        ``generator``.
    """

    title: str
    description: str
    link: str
    self_url: str
    author: str
    image_url: str | None
    category: str
    explicit: bool
    updated: datetime
    generator: str


@dataclass(frozen=True)
class Episode:
    """One item: a recording.

    Attributes
    ----------
    guid : str
        Stable identifier (never a URL that changes with a token).
    title, description : str
    published : datetime
        ``pubDate`` (aware).
    audio_url : str
        Enclosure URL (absolute).
    length : int
        Enclosure size, bytes.
    media_type : str
        Enclosure type (``audio/mpeg``).
    duration_seconds : float or None
        ``itunes:duration`` (written as ``H:MM:SS``).
    number : int
        ``itunes:episode``.
    image_url : str or None
        ``itunes:image`` of the item.
    chapters_url : str or None
        ``podcast:chapters`` (JSON chapters).
    """

    guid: str
    title: str
    description: str
    published: datetime
    audio_url: str
    length: int
    media_type: str
    duration_seconds: float | None
    number: int
    image_url: str | None = None
    chapters_url: str | None = None


def clock(seconds: float) -> str:
    """``H:MM:SS`` of a duration (rounded to whole seconds, negative counts as 0)."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class ImageAndChapters(BaseExtension):
    """feedgen extension of a channel: ``itunes:image`` with any URL."""

    def __init__(self) -> None:
        self.image_url: str | None = None

    def extend_ns(self) -> dict[str, str]:
        return {"podcast": PODCAST_NS}

    def extend_rss(self, rss_feed: Any) -> Any:
        if self.image_url:
            channel = rss_feed[0]
            image = etree.SubElement(channel, f"{{{ITUNES_NS}}}image")
            image.attrib["href"] = self.image_url
        return rss_feed


class ImageAndChaptersEntry(BaseEntryExtension):
    """feedgen extension of an item: ``itunes:image`` and ``podcast:chapters``."""

    def __init__(self) -> None:
        self.image_url: str | None = None
        self.chapters_url: str | None = None

    def extend_rss(self, entry: Any) -> Any:
        if self.image_url:
            image = etree.SubElement(entry, f"{{{ITUNES_NS}}}image")
            image.attrib["href"] = self.image_url
        if self.chapters_url:
            chapters = etree.SubElement(entry, f"{{{PODCAST_NS}}}chapters")
            chapters.attrib["url"] = self.chapters_url
            chapters.attrib["type"] = CHAPTERS_MEDIA_TYPE
        return entry


def render_feed(channel: Channel, episodes: Sequence[Episode]) -> bytes:
    """The RSS 2.0 document of a podcast, items in the order given.

    Parameters
    ----------
    channel : Channel
    episodes : sequence of Episode
        Newest first, as podcast apps expect.

    Returns
    -------
    bytes
        UTF-8 XML with its declaration.
    """
    fg = FeedGenerator()
    fg.load_extension("podcast")
    fg.register_extension(EXTENSION, ImageAndChapters, ImageAndChaptersEntry)
    fg.title(channel.title)
    fg.description(channel.description)
    fg.link(href=channel.self_url, rel="self")
    fg.link(href=channel.link, rel="alternate")  # RSS <link> is feedgen's last link
    fg.generator(channel.generator)
    fg.lastBuildDate(channel.updated)
    fg.podcast.itunes_author(channel.author)
    fg.podcast.itunes_explicit("yes" if channel.explicit else "no")
    fg.podcast.itunes_category(channel.category)
    fg.podcast.itunes_type("episodic")
    if channel.image_url:
        fg.image(url=channel.image_url, title=channel.title, link=channel.link)
        getattr(fg, EXTENSION).image_url = channel.image_url
    for ep in episodes:
        fe = fg.add_entry(order="append")
        fe.guid(ep.guid, permalink=False)
        fe.title(ep.title)
        fe.description(ep.description)
        fe.pubDate(ep.published)
        fe.enclosure(ep.audio_url, str(ep.length), ep.media_type)
        if ep.duration_seconds is not None:
            fe.podcast.itunes_duration(clock(ep.duration_seconds))
        fe.podcast.itunes_episode(ep.number)
        fe.podcast.itunes_episode_type("full")
        ext = getattr(fe, EXTENSION)
        ext.image_url = ep.image_url
        ext.chapters_url = ep.chapters_url
    return bytes(fg.rss_str(pretty=True, xml_declaration=True, encoding="UTF-8"))
