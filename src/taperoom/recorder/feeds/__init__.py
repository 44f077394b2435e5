"""Podcast feeds of the recorder's recordings.

Every station has an RSS 2.0 feed with the iTunes podcast tags
(``/feeds/<station id>.xml``), and ``/feeds/all.xml`` lists the recordings of
every station; each completed recording whose file is still on this machine is
one item, newest first, whose enclosure (``/feeds/audio/<session id>.mp3``) is
served with HTTP ranges. A recording whose ICY titles were written to a cue
sheet also gets podcast-namespace chapters (``/feeds/chapters/<id>.json``).

Feeds, audio, chapters and cover art are read without the dashboard's
credentials only with the feed's secret token in the URL (``?token=``), unless
``PUBLIC_FEEDS`` is true; a wrong or missing token is a 404, as an unknown feed.

Modules: :mod:`.repository` (all SQL: tokens and the recordings of a feed),
:mod:`.chapters` (cue sheet -> chapters, pure), :mod:`.rss` (the XML, built with
feedgen, pure), :mod:`.service` (access checks, URLs, files).
"""
