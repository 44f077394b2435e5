"""The library's WebSocket link to the audio playback engine, and the live set.

The engine (a separate C++ program) runs a WebSocket server; the library is its
client (contracts/library.md section 4). Modules, each with one job:

* :mod:`.protocol` — parse inbound frames, build outbound ones, byte for byte as
  the contract's examples (compact JSON, keys in the contract's order, numbers as
  JavaScript writes them);
* :mod:`.trackinfo` — reads what ``getTrackInfo`` answers about a track;
* :mod:`.handlers` — what each inbound event and command does, with its
  collaborators (track service, analysis queue, stems provider, live set);
* :mod:`.liveset` — follows the decks and logs the tracks that really played
  into the active session playlist;
* :mod:`.stems` — the interface of a stems provider;
* :mod:`.outbox` — messages the library sends unasked, kept while the engine is away;
* :mod:`.client` — the connection itself: identify, ping, reconnect with backoff.
"""
