"""Ingest + tar-split: digests, sizes, owners, and byte-exact replay for many tar shapes."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from containers_storage.archive.apply import apply_tar
from containers_storage.archive.compression import Compression
from containers_storage.archive.ingest import apply_layer_stream
from containers_storage.archive.tarsplit import DirectoryFileGetter, assemble, read_records
from containers_storage.errors import DuplicateTarPath, TarSplitIntegrity

from .conftest import END, make_tar, member, raw_file


def ingest(data: bytes, layer: Path) -> tuple[object, bytes]:
    ts = io.BytesIO()
    result = apply_layer_stream(io.BytesIO(data), lambda s: apply_tar(s, str(layer)), ts)
    return result, ts.getvalue()


def replay(tar_split: bytes, layer: Path) -> bytes:
    with DirectoryFileGetter(str(layer)) as getter:
        return b"".join(assemble(io.BytesIO(tar_split), getter))


def shapes(tmp_path: Path) -> dict[str, bytes]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "dir").mkdir()
    (src / "dir" / "file").write_bytes(os.urandom(70_000))
    (src / ("n" * 120)).write_bytes(b"long name")
    os.symlink("dir/file", src / "link")
    os.link(src / "dir" / "file", src / "hard")
    (src / "big").write_bytes(os.urandom(3 << 20))
    out = {}
    for fmt in ("gnu", "posix", "ustar", "v7"):
        names = ["dir", "link", "hard", "big"] + (["n" * 120] if fmt in ("gnu", "posix") else [])
        out[fmt] = subprocess.run(
            ["tar", f"--format={fmt}", "-C", str(src), "-cf", "-", *names], capture_output=True, check=True
        ).stdout
    # record padding to 10240 bytes, then junk after the end-of-archive marker
    out["trailing"] = out["gnu"] + b"trailing bytes after the end marker" * 100
    out["no-end-marker"] = raw_file(b"f", b"12345")
    out["pax-global"] = make_tar([member("a", b"1"), member("b", b"2")], fmt=tarfile.PAX_FORMAT)
    out["pax-global"] = (
        raw_file(b"pax_global_header", b"19 comment=hello!!\n", typeflag=b"g") + out["pax-global"]
    )
    out["non-utf8"] = raw_file(b"caf\xe9", b"latin-1 name") + END
    out["empty"] = END
    out["zero-size-hardlink-field"] = raw_file(b"x", b"") + END
    return out


def test_round_trips(tmp_path: Path) -> None:
    for name, data in shapes(tmp_path).items():
        layer = tmp_path / f"layer-{name}"
        layer.mkdir()
        result, ts = ingest(data, layer)
        assert replay(ts, layer) == data, name
        assert result.uncompressed_digest == "sha256:" + hashlib.sha256(data).hexdigest()  # type: ignore[attr-defined]
        assert result.uncompressed_size == len(data)  # type: ignore[attr-defined]


def test_name_raw_for_invalid_utf8(tmp_path: Path) -> None:
    _, ts = ingest(raw_file(b"caf\xe9", b"x") + END, tmp_path)
    lines = [json.loads(line) for line in gzip.decompress(ts).splitlines()]
    files = [line for line in lines if line["type"] == 1]
    assert files == [
        {"type": 1, "name_raw": "Y2Fm6Q==", "size": 1, "payload": files[0]["payload"], "position": 1}
    ]


@pytest.mark.parametrize(
    ("kind", "compress"),
    [
        (Compression.NONE, lambda d: d),
        (Compression.GZIP, gzip.compress),
        (Compression.BZIP2, bz2.compress),
        (Compression.XZ, lzma.compress),
        (Compression.ZSTD, lambda d: zstandard.ZstdCompressor().compress(d)),
    ],
)
def test_compressions(tmp_path: Path, kind: Compression, compress: object) -> None:
    data = make_tar(
        [
            member("f", os.urandom(200_000), uid=1000, gid=5),
            member(".wh.gone", uid=7, gid=7),
            member("d/", type=tarfile.DIRTYPE),
        ]
    )
    blob = compress(data)  # type: ignore[operator]
    result, ts = ingest(blob, tmp_path)
    assert result.compression == kind  # type: ignore[attr-defined]
    assert result.compressed_digest == "sha256:" + hashlib.sha256(blob).hexdigest()  # type: ignore[attr-defined]
    assert result.compressed_size == len(blob)  # type: ignore[attr-defined]
    assert result.uncompressed_digest == "sha256:" + hashlib.sha256(data).hexdigest()  # type: ignore[attr-defined]
    assert result.uids == [0, 1000] and result.gids == [0, 5]  # type: ignore[attr-defined]
    assert result.size == 200_000  # type: ignore[attr-defined]
    assert replay(ts, tmp_path) == data


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    data = make_tar([member("f", b"hello" * 1000)])
    blob = gzip.compress(data[:1000]) + gzip.compress(data[1000:])
    result, _ = ingest(blob, tmp_path)
    assert result.uncompressed_digest == "sha256:" + hashlib.sha256(data).hexdigest()  # type: ignore[attr-defined]


def test_replay_detects_modified_content(tmp_path: Path) -> None:
    _, ts = ingest(make_tar([member("f", b"original"), member("g", os.urandom(2 << 20))]), tmp_path)
    (tmp_path / "f").write_bytes(b"tampered")
    with pytest.raises(TarSplitIntegrity, match='file integrity checksum failed for "f"'):
        replay(ts, tmp_path)


def test_replay_refuses_duplicate_records(tmp_path: Path) -> None:
    lines = [
        {"type": 1, "name": "a", "payload": None, "position": 0},
        {"type": 1, "name": "./a", "payload": None, "position": 1},
    ]
    blob = gzip.compress(b"".join(json.dumps(x).encode() + b"\n" for x in lines))
    with pytest.raises(DuplicateTarPath):
        list(read_records(io.BytesIO(blob)))


def test_replay_reads_through_symlinked_dirs_but_stays_inside(tmp_path: Path) -> None:
    data = make_tar([member("real/", type=tarfile.DIRTYPE), member("real/f", b"content")])
    _, ts = ingest(data, tmp_path)
    os.rename(tmp_path / "real", tmp_path / "moved")
    os.symlink("/moved", tmp_path / "real")  # absolute: resolved against the layer root
    assert replay(ts, tmp_path) == data


def test_json_lines_as_go_writes_them(tmp_path: Path) -> None:
    _, ts = ingest(raw_file('a<b>&c\x01ü"\\.txt'.encode(), b"hello\n") + END, tmp_path)
    lines = gzip.decompress(ts).decode().splitlines()
    assert lines[1] == (
        '{"type":1,"name":"a\\u003cb\\u003e\\u0026c\\u0001ü\\"\\\\.txt","size":6,"payload":"YUw+7uLYEAA=","position":1}'
    )
    assert lines[0].startswith('{"type":2,"payload":"') and lines[0].endswith('","position":0}')


def _segments() -> bytes:
    """A gzip'd tar-split file of 1000 padding segments that do not compress away."""
    import base64

    lines = (b'{"type":2,"payload":"%s"}\n' % base64.b64encode(os.urandom(30)) for _ in range(1000))
    return gzip.compress(b"".join(lines))


@pytest.mark.parametrize("cut", [5, 200, -3])
def test_truncated_tar_split_is_an_unexpected_eof(cut: int) -> None:
    """As Go's gzip reader: io.ErrUnexpectedEOF, never Python's own wording."""
    from containers_storage.archive.tarsplit import read_records
    from containers_storage.errors import UnexpectedEOF

    data = _segments()
    with pytest.raises(UnexpectedEOF, match="^reading tar-split metadata: unexpected EOF$"):
        list(read_records(io.BytesIO(data[:cut])))


def test_corrupt_tar_split_is_an_archive_error() -> None:
    from containers_storage.archive.tarsplit import read_records
    from containers_storage.errors import ArchiveError

    data = bytearray(_segments())
    data[40:60] = b"\xff" * 20
    with pytest.raises(ArchiveError, match="reading tar-split metadata"):
        list(read_records(io.BytesIO(bytes(data))))


@pytest.mark.parametrize(
    "line",
    [
        b"[" * 20000 + b"]" * 20000,
        b'{"type": 1, "size": ' + b"[" * 20000 + b"]" * 20000 + b"}",
        b"[1, 2]",
        b"5",
    ],
    ids=["nested-top", "nested-field", "array", "number"],
)
def test_a_damaged_tar_split_line_is_a_clear_archive_error(line: bytes) -> None:
    """Deep nesting or a line that is not an object: one ArchiveError naming the
    tar-split, never RecursionError or AttributeError text."""
    from containers_storage.errors import ArchiveError

    data = gzip.compress(line + b"\n")
    with pytest.raises(ArchiveError, match="reading tar-split metadata"):
        list(read_records(io.BytesIO(data)))
