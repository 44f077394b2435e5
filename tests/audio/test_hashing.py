"""Audio-content hashes on real files: re-tagging keeps them, audio changes break them."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import av
import mutagen
import pytest
import xxhash
from mutagen.apev2 import APEv2
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, COMM, ID3, TIT2, TPE1
from mutagen.mp4 import MP4, MP4Cover
from mutagen.ogg import OggPage

from taperoom.audio.hashing import (
    DEMUX,
    QUICK_CHUNK,
    audio_hash,
    audio_hash_demuxed,
    audio_hash_method,
    quick_hash,
    raw_hash,
)
from taperoom.errors import MediaError
from tests.conftest import CORPUS

TAGGED = ("scanner", "real_music_tagged")

#: One corpus file per container, the smaller ones where there is a choice.
SAMPLES = {
    "mp3": "01 - Muldjord - Armygeddon.mp3",  # ID3v2.4 with a PNG cover, VBR with Xing frame
    "mp3cbr": "16 - various (librosa example data) - Kevin MacLeod - P I Tchaikovsky Dance of "
              "the Sugar Plum Fairy.mp3",  # UTF-16 ID3, CBR with Info frame
    "flac": "odd/UPPER.FLAC",
    "m4a": "03 - Muldjord - Internal Degeneration.m4a",
    "ogg": "04 - Muldjord - Mutilated Mime.ogg",
    "opus": "21 - LMMS demo - CapDan-ReggaetonTry.opus",
    "wav": "odd/mono_22k.wav",
    "aiff": "07 - John Garner - Partita No. 1 in B minor: Double (BWV1002).aiff",
}
SUFFIX = {"mp3cbr": "mp3"}

HEX128 = re.compile(r"[0-9a-f]{32}")
LONG_COMMENT = "A long liner note. " * 6000  # ~110 kB: overflows ID3 padding, Ogg pages
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
BIG_ART = PNG_1X1 + bytes(range(256)) * 1200  # 300 kB "image": moves everything after it


def copy_sample(corpus: Path, kind: str, dest_dir: Path, name: str = "") -> Path:
    """Copy the sample of `kind` into `dest_dir` (writable)."""
    src = corpus.joinpath(*TAGGED, SAMPLES[kind])
    dest = dest_dir / (name or f"{kind}.{SUFFIX.get(kind, kind)}")
    shutil.copyfile(src, dest)
    return dest


# --------------------------------------------------------------------------- re-tagging


def set_tags(path: Path, *, title: str | None = None, comment: str | None = None,
             art: bytes | None = None, remove_art: bool = False) -> None:
    """Rewrite tags of `path` in place with mutagen, in the file's own tag family."""
    audio = mutagen.File(path)
    assert audio is not None, path
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    if isinstance(tags, ID3):
        if title is not None:
            tags.add(TIT2(encoding=3, text=title))
        if comment is not None:
            tags.add(COMM(encoding=3, lang="eng", desc="", text=comment))
        if remove_art:
            tags.delall("APIC")
        if art is not None:
            tags.add(APIC(encoding=3, mime="image/png", type=3, desc="front", data=art))
    elif isinstance(audio, MP4):
        if title is not None:
            tags["©nam"] = [title]
        if comment is not None:
            tags["©cmt"] = [comment]
        if remove_art and "covr" in tags:
            del tags["covr"]
        if art is not None:
            tags["covr"] = [MP4Cover(art, imageformat=MP4Cover.FORMAT_PNG)]
    else:  # Vorbis comments: FLAC, Ogg Vorbis, Opus
        if title is not None:
            tags["title"] = [title]
        if comment is not None:
            tags["comment"] = [comment]
        pic = None
        if art is not None:
            pic = Picture()
            pic.type, pic.mime, pic.data = 3, "image/png", art
        if isinstance(audio, FLAC):
            if remove_art:
                audio.clear_pictures()
            if pic is not None:
                audio.add_picture(pic)
        else:
            if remove_art and "metadata_block_picture" in tags:
                del tags["metadata_block_picture"]
            if pic is not None:
                tags["metadata_block_picture"] = [base64.b64encode(pic.write()).decode()]
    audio.save()


RETAGS: dict[str, Callable[[Path], None]] = {
    "title": lambda p: set_tags(p, title="Completely Different Title (Extended Mix)"),
    "long-comment": lambda p: set_tags(p, comment=LONG_COMMENT),
    "add-art": lambda p: set_tags(p, art=BIG_ART),
    "remove-art": lambda p: set_tags(p, remove_art=True),
    "all-at-once": lambda p: set_tags(p, title="T", comment=LONG_COMMENT, art=BIG_ART),
}


@pytest.mark.parametrize("retag", list(RETAGS))
@pytest.mark.parametrize("kind", list(SAMPLES))
def test_retagging_keeps_audio_hash(corpus: Path, tmp_path: Path, kind: str, retag: str) -> None:
    """Rewriting tags and art changes the file but neither the walked nor the demuxed hash."""
    path = copy_sample(corpus, kind, tmp_path)
    if retag == "remove-art":
        set_tags(path, art=PNG_1X1)  # not every sample has art to remove
    before_audio, before_raw, before_quick = audio_hash(path), raw_hash(path), quick_hash(path)
    RETAGS[retag](path)
    assert raw_hash(path) != before_raw  # the file really changed ...
    assert quick_hash(path) != before_quick  # ... and the screening hash sees it
    assert audio_hash(path) == before_audio  # ... but its audio did not
    digest, method = audio_hash_method(path)
    assert method != DEMUX  # the container walker took it ...
    assert digest == audio_hash_demuxed(path) == before_audio  # ... with the reference digest


def test_retagging_twice_round_trip(corpus: Path, tmp_path: Path) -> None:
    """Add art and a long comment, then remove them again: same hash at every step."""
    path = copy_sample(corpus, "ogg", tmp_path)
    hashes = {audio_hash(path)}
    set_tags(path, comment=LONG_COMMENT, art=BIG_ART)
    hashes.add(audio_hash(path))
    set_tags(path, comment="", remove_art=True)
    hashes.add(audio_hash(path))
    assert len(hashes) == 1


MUTAGEN_DATA = ("scanner", "tagtests", "mutagen-1.48.1", "tests", "data")
BEETS_RSRC = ("scanner", "tagtests", "beets-2.14.1", "test", "rsrc")


@pytest.mark.parametrize("name", [
    "mutagen/mac-399.ape", "beets/full.ape", "mutagen/silence-44-s.wv", "beets/full.wv",
    "mutagen/silence-44-s.tak", "beets/full.mpc", "mutagen/sv8_header.mpc",
    "mutagen/empty.tta", "beets/full.dsf", "mutagen/silence-1.wma", "mutagen/empty.spx",
    "mutagen/empty.oggflac",
])
def test_retagging_rarer_formats_keeps_audio_hash(corpus: Path, tmp_path: Path,
                                                  name: str) -> None:
    """APEv2 (Monkey's Audio, WavPack, TAK, Musepack), ID3 (TTA, DSF), ASF, Speex, Ogg FLAC."""
    source, _, filename = name.partition("/")
    src = corpus.joinpath(*(MUTAGEN_DATA if source == "mutagen" else BEETS_RSRC), filename)
    path = tmp_path / filename
    shutil.copyfile(src, path)
    before, before_raw = audio_hash(path), raw_hash(path)
    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    if isinstance(audio.tags, ID3):
        audio.tags.add(TIT2(encoding=3, text="new title"))
        audio.tags.add(COMM(encoding=3, lang="eng", desc="", text=LONG_COMMENT))
    else:
        audio.tags["Title"] = "new title"
        audio.tags["Comment"] = LONG_COMMENT
    audio.save()
    assert raw_hash(path) != before_raw
    assert audio_hash(path) == before


def _id3v24_with_footer(tmp_path: Path) -> bytes:
    """An ID3v2.4 tag with a footer, as appended to the end of files by some taggers."""
    tag = ID3()
    tag.add(TIT2(encoding=3, text="appended"))
    tag.add(APIC(encoding=3, mime="image/png", type=3, desc="", data=BIG_ART[:20000]))
    blob = tmp_path / "tag.id3"
    blob.write_bytes(b"")
    tag.save(blob, padding=lambda info: 0)
    raw = blob.read_bytes()
    body = raw[10:]
    size = bytes([(len(body) >> 21) & 0x7F, (len(body) >> 14) & 0x7F,
                  (len(body) >> 7) & 0x7F, len(body) & 0x7F])
    header = raw[:5] + bytes([raw[5] | 0x10]) + size
    return header + body + b"3DI" + header[3:]


def _apev2(tmp_path: Path) -> bytes:
    blob = tmp_path / "tag.ape"
    blob.write_bytes(b"")
    tag = APEv2()
    tag["Title"] = "ape title"
    tag["Comment"] = LONG_COMMENT[:30000]
    tag.save(blob)
    return blob.read_bytes()


ID3V1 = b"TAG" + b"v1 title".ljust(30, b"\x00") + b"\x00" * 94 + b"\x11"
_LYRICS = b"LYRICSBEGIN" + b"IND00002" + b"10" + b"LYR00011la la la la"
LYRICS3V2 = _LYRICS + str(len(_LYRICS)).zfill(6).encode() + b"LYRICS200"


@pytest.mark.parametrize("kind", ["mp3", "mp3cbr", "flac", "ogg", "opus", "m4a", "wav"])
@pytest.mark.parametrize("appended", ["id3v1", "apev2+id3v1", "lyrics3+id3v1", "id3v2.4-footer",
                                      "all"])
def test_appended_tags_keep_audio_hash(corpus: Path, tmp_path: Path, kind: str,
                                       appended: str) -> None:
    """Tags appended after the audio (which raw-stream demuxers would hand out) do not count."""
    path = copy_sample(corpus, kind, tmp_path)
    before = audio_hash(path)
    blobs = {
        "id3v1": ID3V1,
        "apev2+id3v1": _apev2(tmp_path) + ID3V1,
        "lyrics3+id3v1": LYRICS3V2 + ID3V1,
        "id3v2.4-footer": _id3v24_with_footer(tmp_path),
    }
    blobs["all"] = blobs["id3v2.4-footer"] + blobs["apev2+id3v1"]
    with open(path, "ab") as f:
        f.write(blobs[appended])
    assert audio_hash(path) == before
    assert audio_hash_demuxed(path) == before


@pytest.mark.parametrize("save", ["id3v2.3", "id3v1", "apev2"])
def test_mp3_tag_versions_keep_audio_hash(corpus: Path, tmp_path: Path, save: str) -> None:
    """ID3v2.3, an added ID3v1 and an added APEv2 tag leave the MP3 audio hash alone."""
    path = copy_sample(corpus, "mp3", tmp_path)
    before = audio_hash(path)
    audio = mutagen.File(path)
    audio.tags.add(TPE1(encoding=1, text="Ärtist ☆"))
    if save == "id3v2.3":
        audio.save(v2_version=3)
    elif save == "id3v1":
        audio.save(v1=2)
    else:
        audio.save()
        ape = APEv2()
        ape["Artist"] = "ape artist"
        ape.save(path)
    assert audio_hash(path) == before


def test_mp3_trailing_padding_is_not_audio(corpus: Path, tmp_path: Path) -> None:
    """The MP3 parser hands out bytes after the last frame as a packet; they are skipped."""
    path = copy_sample(corpus, "mp3", tmp_path)
    before = audio_hash(path)
    with open(path, "ab") as f:
        f.write(b"\x00" * 5000)
    assert audio_hash(path) == before


def test_untagged_and_heavily_tagged_copies_hash_equal(corpus: Path, tmp_path: Path) -> None:
    """A copy stripped of all tags and one with 300 kB of art and comments hash equal."""
    for kind in ("mp3", "flac", "m4a", "opus"):
        bare = copy_sample(corpus, kind, tmp_path, f"bare-{kind}.{kind}")
        rich = copy_sample(corpus, kind, tmp_path, f"rich-{kind}.{kind}")
        mutagen.File(bare).delete()
        set_tags(rich, title="Other", comment=LONG_COMMENT, art=BIG_ART)
        assert raw_hash(bare) != raw_hash(rich)
        assert audio_hash(bare) == audio_hash(rich), kind


def _remux(src: Path, dest: Path) -> None:
    """Copy the first audio stream's packets into a new container (no re-encoding)."""
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        stream = inp.streams.audio[0]
        out_stream = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = out_stream
            out.mux(packet)


@pytest.mark.parametrize("kind", ["mp3", "flac", "m4a", "ogg", "opus", "wav"])
def test_remux_keeps_audio_hash(corpus: Path, tmp_path: Path, kind: str) -> None:
    """The same encoder output in a freshly written file, and in Matroska, hashes the same."""
    src = copy_sample(corpus, kind, tmp_path)
    same = tmp_path / f"remuxed.{SUFFIX.get(kind, kind)}"
    mka = tmp_path / "remuxed.mka"
    _remux(src, same)
    _remux(src, mka)
    assert raw_hash(same) != raw_hash(src)
    assert audio_hash(same) == audio_hash(src) == audio_hash(mka)


# --------------------------------------------------------------------------- audio changes


def _middle_packet_byte(path: Path) -> int:
    """File offset of a byte in the middle of the middle audio packet."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packets = [(p.pos, p.size) for p in container.demux(stream)
                   if p.size and p.pos is not None and p.pos >= 0]
    pos, size = packets[len(packets) // 2]
    return pos + size // 2


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_changing_one_audio_byte_changes_hash(corpus: Path, tmp_path: Path, kind: str) -> None:
    """One flipped bit in the middle audio packet changes the hash of every container."""
    path = copy_sample(corpus, kind, tmp_path)
    before = audio_hash(path)
    offset = _middle_packet_byte(path)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x10]))
    assert audio_hash(path) != before


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_truncating_changes_hash(corpus: Path, tmp_path: Path, kind: str) -> None:
    """Cutting off the last tenth changes the hash (or, for MP4, loses the sample table)."""
    path = copy_sample(corpus, kind, tmp_path)
    before = audio_hash(path)
    size = path.stat().st_size
    os.truncate(path, size * 9 // 10)
    if kind == "m4a":  # the sample table (moov) sits at the end: nothing left to demux
        with pytest.raises(MediaError):
            audio_hash(path)
        return
    assert audio_hash(path) != before


def test_hash_is_128_bit_hex_and_deterministic(corpus: Path) -> None:
    """The digest is 32 hex digits and the same for str and Path arguments."""
    path = corpus.joinpath(*TAGGED, SAMPLES["mp3"])
    digest = audio_hash(path)
    assert HEX128.fullmatch(digest)
    assert audio_hash(str(path)) == digest


def test_awkward_relative_names(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                ) -> None:
    """Colons and commas in a relative name are no FFmpeg protocol or option syntax."""
    reference = audio_hash(corpus.joinpath(*TAGGED, SAMPLES["flac"]))
    path = copy_sample(corpus, "flac", tmp_path, "subfile,,end,5,,:x.flac")
    with open(path, "ab") as f:
        f.write(ID3V1)  # forces the trimmed (subfile) read
    copy_sample(corpus, "flac", tmp_path, "a:b.flac")
    monkeypatch.chdir(tmp_path)
    assert audio_hash("a:b.flac") == reference
    assert audio_hash("subfile,,end,5,,:x.flac") == reference


# --------------------------------------------------------------------------- errors


def test_media_errors(corpus: Path, tmp_path: Path) -> None:
    """Empty, non-audio, missing and directory paths raise MediaError naming the path."""
    odd = corpus.joinpath(*TAGGED, "odd")
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all\n" * 100)
    image = tmp_path / "cover.flac"
    image.write_bytes(PNG_1X1)
    cases = [odd / "zero_length.mp3", odd / "not_audio.ogg", text, image,
             tmp_path / "missing.mp3", tmp_path]
    for path in cases:
        with pytest.raises(MediaError) as info:
            audio_hash(path)
        assert info.value.path == Path(path)


def test_file_without_audio_stream(corpus: Path) -> None:
    """An image demuxes without an audio stream: MediaError "no audio stream"."""
    jpeg = corpus / "scanner" / "tagtests" / "beets-2.14.1" / "test" / "rsrc" / "abbey.jpg"
    with pytest.raises(MediaError, match="no audio stream"):
        audio_hash(jpeg)


def _relink(data: bytes, serial: int) -> bytes:
    """The Ogg stream `data` with every page moved to logical stream `serial` (CRCs redone)."""
    src, out = io.BytesIO(data), io.BytesIO()
    while src.tell() < len(data):
        page = OggPage(src)
        page.serial = serial
        out.write(page.write())
    return out.getvalue()


@pytest.mark.parametrize("serial", [None, 0x7A9E5E11], ids=["same-serial", "new-serial"])
@pytest.mark.parametrize("kind", ["ogg", "opus"])
def test_chained_ogg_hashes_every_link(corpus: Path, tmp_path: Path, kind: str,
                                       serial: int | None) -> None:
    """A chained Ogg file (RFC 3533 section 4) hashes the audio of every link, every time.

    Each link carries its own cover art, so FFmpeg opens a picture stream for the
    second link while demuxing; PyAV's end-of-stream flush then reads its list of
    wanted streams past its end, and whether that raised IndexError (a MediaError)
    or not depended on leftover heap bytes: once in a few hundred calls the file
    hashed, and ``make test`` failed once in a clean clone.
    """
    src = corpus.joinpath(*TAGGED, SAMPLES[kind])
    data = src.read_bytes()
    with av.open(str(src)) as container:
        packets = b"".join(bytes(p) for p in container.demux(container.streams.audio[0]))
    expected = xxhash.xxh3_128(packets + packets).hexdigest()
    path = tmp_path / f"chained.{kind}"
    path.write_bytes(data + (data if serial is None else _relink(data, serial)))
    assert {audio_hash_demuxed(path) for _ in range(25)} == {expected}
    assert audio_hash_method(path) == (expected, DEMUX)  # the walker leaves chains alone


def _tagtest_files() -> list[object]:
    root = CORPUS / "scanner" / "tagtests"
    if not root.is_dir():
        return [pytest.param(None, id="corpus-missing")]
    return [pytest.param(p, id=str(p.relative_to(root))) for p in sorted(root.rglob("*"))
            if p.is_file()]


@pytest.mark.parametrize("path", _tagtest_files())
def test_tagtests_hash_or_media_error(corpus: Path, path: Path) -> None:
    """Odd and broken files give a hash or MediaError, never another exception."""
    try:
        digest = audio_hash(path)
    except MediaError:
        return
    assert HEX128.fullmatch(digest)


def test_quick_and_raw_hash_errors(tmp_path: Path) -> None:
    """quick_hash and raw_hash report a missing file as MediaError."""
    for fn in (quick_hash, raw_hash):
        with pytest.raises(MediaError):
            fn(tmp_path / "missing.wav")


# --------------------------------------------------------------------------- quick/raw


def test_raw_hash_is_xxh3_128_of_the_bytes(corpus: Path) -> None:
    """raw_hash is XXH3-128 over the whole file, across its read chunks."""
    path = corpus.joinpath(*TAGGED, SAMPLES["flac"])  # 1.5 MB: several read chunks
    assert raw_hash(path) == xxhash.xxh3_128(path.read_bytes()).hexdigest()


def test_quick_hash_definition(corpus: Path, tmp_path: Path) -> None:
    """quick_hash is XXH3-64 over the size, the first and the last 64 KiB."""
    big = corpus.joinpath(*TAGGED, SAMPLES["flac"])
    data = big.read_bytes()
    expected = xxhash.xxh3_64(struct.pack("<Q", len(data)) + data[:QUICK_CHUNK]
                              + data[-QUICK_CHUNK:]).hexdigest()
    assert quick_hash(big) == expected
    small = tmp_path / "small.bin"  # shorter than two chunks: every byte once
    small.write_bytes(data[:100_000])
    assert quick_hash(small) == xxhash.xxh3_64(struct.pack("<Q", 100_000)
                                               + data[:100_000]).hexdigest()
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert quick_hash(empty) == xxhash.xxh3_64(bytes(8)).hexdigest()


def test_quick_hash_only_screens(corpus: Path, tmp_path: Path) -> None:
    """A change in the middle of a big file passes quick_hash unseen (raw_hash sees it)."""
    path = copy_sample(corpus, "aiff", tmp_path)
    quick, raw = quick_hash(path), raw_hash(path)
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(b"\x01\x02")
    assert quick_hash(path) == quick
    assert raw_hash(path) != raw
