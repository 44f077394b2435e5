"""Playlists of the library: smart-playlist criteria, harmonic mixing, exchange formats."""
