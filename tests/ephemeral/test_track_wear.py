"""Each track's wear model: set through the service, listed by GET /wear-models, used by
every play on a real server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import av
import httpx
import numpy as np
import pytest

from taperoom.audio import wav
from taperoom.ephemeral.app import create_app
from taperoom.ephemeral.context import EphemeralServices, build_services
from taperoom.ephemeral.names import track_key
from taperoom.ephemeral.settings import EphemeralSettings
from taperoom.ephemeral.wear import WEAR_MODELS, rng_for
from taperoom.errors import InvalidInput, NotFound
from tests.wavgen import write_wav

MUSIC = "scanner/real_music_tagged/12 - Maxstack - By-Product.ogg"
NAME = "By-Product.wav"


def _music(corpus: Path, seconds: float) -> np.ndarray:
    resampler = av.AudioResampler(format="flt", layout="stereo", rate=48_000)
    parts = []
    with av.open(str(corpus / MUSIC)) as container:
        for frame in container.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1, 2) for f in resampler.resample(frame)]
            if sum(map(len, parts)) > (seconds + 5) * 48_000:
                break
    return np.concatenate(parts)[5 * 48_000:round((5 + seconds) * 48_000)].astype(np.float64)


class Served:
    """A real server, its client and a second set of services on the same folders (as a
    curator's command or another worker process would have)."""

    def __init__(self, settings: EphemeralSettings, url: str) -> None:
        self.settings = settings
        self.client = httpx.Client(base_url=url, timeout=10)
        self.other: EphemeralServices = build_services(settings)

    def close(self) -> None:
        self.client.close()
        self.other.close()


@pytest.fixture
def served(eph_settings: Callable[..., EphemeralSettings], live_server: Callable[[Any], Any],
           corpus: Path) -> Iterator[Callable[..., Served]]:
    made: list[Served] = []

    def start(**overrides: Any) -> Served:
        settings = eph_settings(**{"degrade_rate_limit": "off", "degradation_rate": 10.0,
                                   **overrides})
        settings.audio_dir.mkdir(parents=True, exist_ok=True)
        write_wav(settings.audio_dir / NAME, _music(corpus, 3.0), rate=48_000)
        s = Served(settings, live_server(create_app(settings)).url)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()


def test_wear_models_route_lists_every_model_and_the_default(
        served: Callable[..., Served]) -> None:
    """GET /wear-models: the six models in registry order, with a description, and
    WEAR_MODEL's marked default."""
    s = served(wear_model="reverb")
    r = s.client.get("/wear-models", headers={"Origin": "http://player.example"})
    assert r.status_code == 200
    body = r.json()
    assert [m["name"] for m in body] == list(WEAR_MODELS)
    assert [m["default"] for m in body] == [n == "reverb" for n in WEAR_MODELS]
    assert all(set(m) == {"name", "description", "default"} and m["description"]
               for m in body)
    assert r.headers["access-control-allow-origin"] == "*"


def test_track_wear_model_defaults_to_the_setting_and_is_set_per_track(
        served: Callable[..., Served]) -> None:
    """A track without its own model uses WEAR_MODEL; the curator's choice is stored in
    its metadata beside the contract's keys, survives a reset of its counts, and None
    gives it WEAR_MODEL's again. /stats keeps exactly the contract's keys."""
    s = served(wear_model="noise")
    svc = s.other.service
    assert svc.track_wear_model(NAME).model_dump() == {
        "filename": NAME, "wear_model": "noise", "own": False}
    assert svc.set_wear_model(NAME, "lowpass").model_dump() == {
        "filename": NAME, "wear_model": "lowpass", "own": True}
    meta_file = s.settings.metadata_dir / "tracks" / f"{track_key(NAME)}.json"
    meta = json.loads(meta_file.read_bytes())
    assert meta["wear_model"] == "lowpass"
    assert meta["filename"] == NAME and len(meta["segment_play_counts"]) == 6
    stats = s.client.get(f"/stats/{quote(NAME)}").json()
    assert "wear_model" not in stats
    assert s.client.post(f"/degrade/{quote(NAME)}", json={"segment_index": 1}).status_code == 200
    assert svc.track_wear_model(NAME).wear_model == "lowpass"
    assert svc.set_wear_model(NAME, None).model_dump() == {
        "filename": NAME, "wear_model": "noise", "own": False}
    assert "wear_model" not in json.loads(meta_file.read_bytes())
    assert s.client.get(f"/stats/{quote(NAME)}").json()["segment_play_counts"][1] == 1


def test_setting_an_unknown_model_or_track_is_refused(served: Callable[..., Served]) -> None:
    """An unknown model name is InvalidInput (400), naming the known ones; an unknown
    track is NotFound (404); nothing is written."""
    s = served()
    svc = s.other.service
    with pytest.raises(InvalidInput, match="lowpass"):
        svc.set_wear_model(NAME, "tape-eater")
    with pytest.raises(NotFound):
        svc.set_wear_model("nope.wav", "lowpass")
    with pytest.raises(NotFound):
        svc.set_wear_model("../" + NAME, "lowpass")
    assert svc.track_wear_model(NAME).own is False


@pytest.mark.parametrize("model", list(WEAR_MODELS))
def test_plays_on_the_server_use_the_tracks_model(served: Callable[..., Served],
                                                  model: str) -> None:
    """After the curator sets a model (through other services, as another process), each
    POST /degrade on the real server rewrites exactly the played segment's bytes with
    that model's output for this track, segment and play count; every other byte of the
    file stays as it was."""
    s = served()
    s.other.service.set_wear_model(NAME, model)
    path = s.settings.audio_dir / NAME
    info = wav.read_info(path)
    index = 2
    start, end = s.other.store.segment_frames(info, index)
    lo, hi = info.frame_offset(start), info.frame_offset(end)
    for play in range(4):
        before = path.read_bytes()
        y = wav.decode(before[lo:hi], info)
        expected = wav.encode(WEAR_MODELS[model].apply(
            y, play_count=play, rate_percent=10.0, rng=rng_for(NAME, index, play),
            sample_rate=info.sample_rate), info)
        r = s.client.post(f"/degrade/{quote(NAME)}", json={"segment_index": index})
        assert r.json() == {"success": True, "segment_index": index, "play_count": play + 1}
        after = path.read_bytes()
        assert after[:lo] == before[:lo] and after[hi:] == before[hi:]
        assert after[lo:hi] == expected, (model, play)
        if play == 0:
            assert after == before
    assert path.read_bytes()[lo:hi] != wav.encode(y, info) or model == "dropout"


def test_default_model_comes_from_the_setting(served: Callable[..., Served]) -> None:
    """Without a track setting, plays wear with WEAR_MODEL (here bitcrush: no frame goes
    silent, unlike dropout at this strength)."""
    s = served(wear_model="bitcrush", degradation_rate=100.0)
    path = s.settings.audio_dir / NAME
    info = wav.read_info(path)
    for _ in range(2):
        s.client.post(f"/degrade/{quote(NAME)}", json={"segment_index": 0})
    start, end = s.other.store.segment_frames(info, 0)
    y = wav.decode(path.read_bytes()[info.frame_offset(start):info.frame_offset(end)], info)
    f = 240
    inner = y[f:-f] * 8  # full strength: a 4-bit grid away from the edge fades
    np.testing.assert_allclose(inner, np.rint(inner), atol=1e-9)
    assert not (y[f:-f] == 0).all(axis=1).all()
