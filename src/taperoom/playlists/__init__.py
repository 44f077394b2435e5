"""Playlists of the library: static, smart and session playlists, crates, smart-playlist
criteria, harmonic mixing and exchange formats."""
