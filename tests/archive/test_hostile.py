"""A corpus of hostile and broken tarballs: each is refused with a clear error or kept
inside the layer; nothing outside the layer directory is ever created or changed."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from containers_storage.archive.apply import apply_tar
from containers_storage.archive.ingest import apply_layer_stream
from containers_storage.errors import (
    ArchiveError,
    CorruptCompression,
    DuplicateTarPath,
    InvalidTarHeader,
    UnexpectedEOF,
    UnsafeArchive,
)
from containers_storage.testing.hostile import CONFINED, REFUSED

from .conftest import END, make_tar, member, raw_header, snapshot


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(layer, outside): the layer sits next to a directory that must stay untouched."""
    layer = tmp_path / "box" / "layer"
    layer.mkdir(parents=True)
    outside = tmp_path / "box" / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    return layer, outside


def untouched(tmp_path: Path, outside: Path) -> None:
    assert snapshot(outside) == {"precious": snapshot(outside)["precious"]}
    assert (outside / "precious").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path / "box")) == ["layer", "outside"]


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused(tmp_path: Path, sandbox: tuple[Path, Path], case: str) -> None:
    layer, outside = sandbox
    data, error = REFUSED[case]
    with pytest.raises(error):
        apply_tar(io.BytesIO(data), str(layer))
    untouched(tmp_path, outside)


@pytest.mark.parametrize("case", sorted(CONFINED))
def test_confined(tmp_path: Path, sandbox: tuple[Path, Path], case: str) -> None:
    layer, outside = sandbox
    data, expected = CONFINED[case]
    try:
        apply_tar(io.BytesIO(data), str(layer))
    except ArchiveError:
        pass  # refusing is fine too; writing outside is not
    untouched(tmp_path, outside)
    for rel, content in expected.items():
        assert (layer / rel).read_bytes() == content


def test_hardlink_target_missing(sandbox: tuple[Path, Path]) -> None:
    layer, _ = sandbox
    with pytest.raises(ArchiveError, match="No such file"):
        apply_tar(io.BytesIO(make_tar([member("h", type=tarfile.LNKTYPE, linkname="nothere")])), str(layer))


def test_failed_extraction_stops_reader_thread(sandbox: tuple[Path, Path]) -> None:
    import threading

    layer, _ = sandbox
    data = make_tar([member(f"f{i}", os.urandom(300_000)) for i in range(40)] + [member("../x", b"x")])
    with pytest.raises(UnsafeArchive):
        apply_layer_stream(io.BytesIO(data), lambda s: apply_tar(s, str(layer)), io.BytesIO())
    assert not [t for t in threading.enumerate() if t.name == "layer-decompress"]


def test_duplicates_refused_on_ingest(sandbox: tuple[Path, Path]) -> None:
    layer, _ = sandbox
    data = make_tar([member("a/", type=tarfile.DIRTYPE), member("a/f", b"1"), member("./a//f", b"2")])
    with pytest.raises(DuplicateTarPath, match="duplicates of file paths not supported"):
        apply_layer_stream(io.BytesIO(data), lambda s: apply_tar(s, str(layer)), io.BytesIO())
    with pytest.raises(DuplicateTarPath):
        apply_layer_stream(io.BytesIO(data), lambda s: apply_tar(s, str(layer)), None)


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bzip2", "xz"])
def test_corrupt_and_truncated_compression(sandbox: tuple[Path, Path], kind: str) -> None:
    import bz2
    import gzip
    import lzma

    import zstandard

    layer, _ = sandbox
    data = make_tar([member("f", os.urandom(50_000))])
    comp = {
        "gzip": gzip.compress,
        "zstd": zstandard.ZstdCompressor(write_checksum=True).compress,
        "bzip2": bz2.compress,
        "xz": lzma.compress,
    }[kind](data)
    with pytest.raises(UnexpectedEOF):
        apply_layer_stream(
            io.BytesIO(comp[: len(comp) // 2]), lambda s: apply_tar(s, str(layer)), io.BytesIO()
        )
    broken = bytearray(comp)
    for i in range(len(broken) // 3, len(broken) // 3 + 64):
        broken[i] ^= 0x5A
    with pytest.raises((CorruptCompression, UnexpectedEOF, InvalidTarHeader)):
        apply_layer_stream(io.BytesIO(bytes(broken)), lambda s: apply_tar(s, str(layer)), io.BytesIO())


@pytest.mark.parametrize("size", [b"0000000_012\x00", b"-0000000012\x00", b"00000000x12\x00"])
def test_malformed_numbers(sandbox: tuple[Path, Path], size: bytes) -> None:
    layer, _ = sandbox
    block = bytearray(raw_header(b"f"))
    block[124:136] = size
    block[148:156] = b"        "
    block[148:156] = b"%06o\x00 " % sum(block)
    with pytest.raises(InvalidTarHeader):
        apply_tar(io.BytesIO(bytes(block) + END), str(layer))
