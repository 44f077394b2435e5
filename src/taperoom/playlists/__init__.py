"""Playlists of the library: static and smart playlists, crates, exchange formats."""
