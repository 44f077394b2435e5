"""Paced reads (recorder.capture.pacing) on real sockets: a pause lets data gather, and
ends at once on the peer closing, a reset, or a wake-up."""

from __future__ import annotations

import socket
import struct
import threading
import time

from taperoom.recorder.capture.pacing import ReadPacer


def _pair() -> tuple[socket.socket, socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    server.close()
    return client, peer


def test_a_pause_lets_the_data_gather_and_one_read_takes_it() -> None:
    client, peer = _pair()
    pacer = ReadPacer(client, pause=0.3)
    try:
        stop = threading.Event()

        def trickle() -> None:  # a live stream: a small segment every 10 ms
            while not stop.wait(0.01):
                peer.sendall(b"x" * 300)

        t = threading.Thread(target=trickle)
        t.start()
        t0 = time.monotonic()
        assert pacer.pause(300) is False
        waited = time.monotonic() - t0
        stop.set()
        t.join()
        assert 0.25 <= waited < 1.0
        assert len(client.recv(65536)) >= 300 * 10  # many segments in one read
    finally:
        pacer.close()
        client.close()
        peer.close()


def test_a_full_read_or_waiting_data_is_not_paused() -> None:
    client, peer = _pair()
    pacer = ReadPacer(client, pause=5.0, full_read=1000)
    try:
        t0 = time.monotonic()
        pacer.pause(1000)  # the buffer was filled: more may wait
        peer.sendall(b"y" * 10)
        time.sleep(0.05)
        pacer.pause(10)  # data waiting already
        assert time.monotonic() - t0 < 1.0
    finally:
        pacer.close()
        client.close()
        peer.close()


def test_the_peer_closing_or_resetting_ends_a_pause_at_once() -> None:
    for reset in (False, True):
        client, peer = _pair()
        pacer = ReadPacer(client, pause=5.0)
        try:
            if reset:
                peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            threading.Timer(0.1, peer.close).start()
            t0 = time.monotonic()
            pacer.pause(10)
            assert time.monotonic() - t0 < 1.0, reset
        finally:
            pacer.close()
            client.close()


def test_wake_ends_a_pause_from_another_thread() -> None:
    client, peer = _pair()
    pacer = ReadPacer(client, pause=5.0)
    try:
        threading.Timer(0.1, pacer.wake).start()
        t0 = time.monotonic()
        assert pacer.pause(10) is True
        assert time.monotonic() - t0 < 1.0
        assert not pacer.waiting
    finally:
        pacer.close()
        client.close()
        peer.close()


def test_without_a_socket_nothing_is_paced() -> None:
    pacer = ReadPacer(None)
    assert not pacer.active and pacer.pause(0) is False
    pacer.wake()
    pacer.close()
