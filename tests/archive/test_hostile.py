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
    StorageError,
    UnexpectedEOF,
    UnsafeArchive,
)

from .conftest import END, make_tar, member, raw_file, raw_header, snapshot


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


REFUSED: dict[str, tuple[bytes, type[StorageError]]] = {
    "dotdot": (make_tar([member("../outside/evil", b"x")]), UnsafeArchive),
    "dotdot-deep": (make_tar([member("a/b/../../../outside/evil", b"x")]), UnsafeArchive),
    "dotdot-dir": (make_tar([member("../outside/newdir/", type=tarfile.DIRTYPE)]), UnsafeArchive),
    "hardlink-out": (
        make_tar([member("h", type=tarfile.LNKTYPE, linkname="../outside/precious")]),
        UnsafeArchive,
    ),
    "hardlink-out-deep": (
        make_tar(
            [
                member("d/", type=tarfile.DIRTYPE),
                member("d/h", type=tarfile.LNKTYPE, linkname="d/../../outside/precious"),
            ]
        ),
        UnsafeArchive,
    ),
    "whiteout-out": (make_tar([member("../outside/.wh.precious")]), UnsafeArchive),
    "nul-in-pax-path": (
        raw_file(b"./PaxHeaders/x", b"22 path=a\x00/../../b\n", typeflag=b"x") + raw_file(b"x", b"1") + END,
        InvalidTarHeader,
    ),
    "pax-garbage": (
        raw_file(b"./PaxHeaders/x", b"99 path=a\n", typeflag=b"x") + raw_file(b"x") + END,
        InvalidTarHeader,
    ),
    "bad-checksum": (
        raw_header(b"f")[:148] + b"0000000\x00" + raw_header(b"f")[156:] + END,
        InvalidTarHeader,
    ),
    "zero-then-garbage": (bytes(512) + raw_header(b"f") + END, InvalidTarHeader),
    "truncated-header": (raw_header(b"f")[:300], UnexpectedEOF),
    "truncated-content": (raw_header(b"f", size=5000) + b"x" * 100, UnexpectedEOF),
    "garbage": (b"this is not a tar file at all" * 40, InvalidTarHeader),
    "unknown-type": (raw_file(b"vol", typeflag=b"V") + END, ArchiveError),
    "root-as-file": (make_tar([member(".", b"x")]), UnsafeArchive),
    "whiteout-dot": (make_tar([member("d/", type=tarfile.DIRTYPE), member("d/.wh..")]), UnsafeArchive),
    "whiteout-dotdot": (make_tar([member(".wh...")]), UnsafeArchive),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused(tmp_path: Path, sandbox: tuple[Path, Path], case: str) -> None:
    layer, outside = sandbox
    data, error = REFUSED[case]
    with pytest.raises(error):
        apply_tar(io.BytesIO(data), str(layer))
    untouched(tmp_path, outside)


CONFINED: dict[str, tuple[bytes, dict[str, bytes]]] = {
    # absolute names are taken relative to the layer root, as upstream joins them onto it
    "absolute": (make_tar([member("/outside/evil", b"x")]), {"outside/evil": b"x"}),
    # a symlink pointing out, then written through: resolved inside the root (chroot-like)
    "symlink-then-write": (
        make_tar([member("lnk", type=tarfile.SYMTYPE, linkname="../outside"), member("lnk/evil", b"x")]),
        {"outside/evil": b"x"},
    ),
    "absolute-symlink-then-write": (
        make_tar([member("lnk", type=tarfile.SYMTYPE, linkname="/tmp"), member("lnk/evil", b"x")]),
        {"tmp/evil": b"x"},
    ),
    # several entries deep: a chain of symlinks, the last climbing far above the root
    "symlink-chain": (
        make_tar(
            [
                member("a/", type=tarfile.DIRTYPE),
                member("a/b", type=tarfile.SYMTYPE, linkname="../c"),
                member("c", type=tarfile.SYMTYPE, linkname="d/../../../../../.."),
                member("a/b/outside/evil", b"x"),
            ]
        ),
        {"outside/evil": b"x"},
    ),
    # a directory replaced by a symlink, then files written "into" the directory
    "dir-replaced-by-symlink": (
        make_tar(
            [
                member("d/", type=tarfile.DIRTYPE),
                member("d/f", b"1"),
                member("d", type=tarfile.SYMTYPE, linkname="../../outside"),
                member("d/precious", b"overwritten?"),
            ]
        ),
        {"outside/precious": b"overwritten?"},
    ),
    # the final component is never followed: a symlink named like the target is replaced
    "symlink-replaced-not-followed": (
        make_tar([member("p", type=tarfile.SYMTYPE, linkname="../outside/precious"), member("p", b"new")]),
        {"p": b"new"},
    ),
    "hardlink-through-symlink": (
        make_tar(
            [
                member("s", type=tarfile.SYMTYPE, linkname="../outside"),
                member("h", type=tarfile.LNKTYPE, linkname="s/precious"),
            ]
        ),
        {},
    ),
    "whiteout-through-symlink": (
        make_tar([member("s", type=tarfile.SYMTYPE, linkname="../outside"), member("s/.wh.precious")]),
        {},
    ),
    "opaque-through-symlink": (
        make_tar([member("s", type=tarfile.SYMTYPE, linkname="/../outside"), member("s/.wh..wh..opq")]),
        {},
    ),
    "invalid-utf8-name": (raw_file(b"caf\xe9\xff", b"bytes") + END, {"caf\udce9\udcff": b"bytes"}),
}


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
