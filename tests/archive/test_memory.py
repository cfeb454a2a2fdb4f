"""Memory stays flat in the size of the input: decompression bombs, endless inputs
(/dev/zero) and big items are streamed in bounded pieces or refused at a documented cap
(issues 18 and 20). The heavy cases run the command in a child process whose address
space is limited far below the input's size, so holding the input would fail there."""

from __future__ import annotations

import bz2
import io
import lzma
import os
import resource
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import zstandard

from containers_storage.archive.compression import OUT_CHUNK, decompressed_chunks
from containers_storage.archive.ingest import apply_layer_stream
from containers_storage.archive.tarsplit import MAX_TRAILING, OwnerSets, assemble, disassemble
from containers_storage.errors import InputTooLarge, TarSplitEmpty, TrailingDataTooLarge, UnexpectedEOF
from containers_storage.records import limits
from containers_storage.testing.bombs import write_bomb, write_gzip_members_bomb

from .conftest import make_tar, member

#: the child's address-space limit; the imported file is four times as large
AS_LIMIT = 512 << 20
BOMB_SIZE = 2 << 30


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def _cli(
    tmp_path: Path, *args: str, stdin: object, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "containers_storage.cli",
            "--graph",
            str(tmp_path / "g"),
            "--run",
            str(tmp_path / "r"),
            "-s",
            "vfs",
            *args,
        ],
        stdin=stdin,  # type: ignore[arg-type]
        capture_output=True,
        preexec_fn=_limited,
        timeout=timeout,
        check=False,
    )


def test_the_limit_would_stop_holding_the_file() -> None:
    """The control: under the same limit, a buffer of the file's size cannot be had."""
    limit = f"resource.setrlimit(resource.RLIMIT_AS, ({AS_LIMIT}, {AS_LIMIT}))"
    code = f"import resource; {limit}; b = bytes({BOMB_SIZE})"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, check=False).returncode != 0


def test_gzip_bomb_imports_under_an_address_space_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.tar.gz"
    with open(bomb, "wb") as f:
        write_gzip_members_bomb(f, BOMB_SIZE)
    assert bomb.stat().st_size < 4 << 20
    try:
        with open(bomb, "rb") as f:
            proc = _cli(tmp_path, "import-layer", stdin=f)
        assert proc.returncode == 0, proc.stderr
        layer = proc.stdout.decode().split()[-1]
        zeros = tmp_path / "g" / "vfs" / "dir" / layer / "zeros"
        assert zeros.stat().st_size == BOMB_SIZE
    finally:
        for p in (tmp_path / "g" / "vfs" / "dir").glob("*/zeros"):
            p.unlink()


@pytest.mark.parametrize(
    "command",
    [
        ["import-layer"],
        ["applydiff", "LAYER"],
        ["set-image-data", "IMAGE", "key"],
        ["set-container-data", "CONTAINER", "key"],
        ["set-metadata", "--metadata-file", "/dev/zero", "IMAGE"],
        ["create-image", "--metadata-file", "/dev/zero", "LAYER"],
    ],
)
def test_dev_zero_is_refused_in_bounded_memory(tmp_path: Path, command: list[str]) -> None:
    """An endless input ends in a clear error at the documented cap, nothing recorded."""
    layer = _cli(tmp_path, "create-layer", stdin=subprocess.DEVNULL).stdout.decode().strip()
    image = _cli(tmp_path, "create-image", layer, stdin=subprocess.DEVNULL).stdout.decode().strip()
    container = _cli(tmp_path, "create-container", image, stdin=subprocess.DEVNULL).stdout.decode().strip()
    args = [{"LAYER": layer, "IMAGE": image, "CONTAINER": container}.get(a, a) for a in command]
    before = _cli(tmp_path, "layers", stdin=subprocess.DEVNULL).stdout
    with open("/dev/zero", "rb") as zero:
        proc = _cli(tmp_path, *args, stdin=zero, timeout=120)
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert "larger than the limit" in err or "after the end of the tar archive" in err, err
    assert _cli(tmp_path, "layers", stdin=subprocess.DEVNULL).stdout == before
    assert _cli(tmp_path, "images", stdin=subprocess.DEVNULL).stdout.decode().count("\n") == 1


COMPRESS = {
    "gzip": lambda d: zlib.compress(d, 9, wbits=31),
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda d: zstandard.ZstdCompressor(level=3).compress(d),
}


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_decompression_hands_on_bounded_pieces(kind: str) -> None:
    """A well-compressing member comes out in pieces of at most OUT_CHUNK bytes."""
    buf = io.BytesIO()
    write_bomb(buf, 96 << 20, kind)
    assert len(buf.getvalue()) < 1 << 20
    buf.seek(0)
    _kind, chunks = decompressed_chunks(buf)
    total = 0
    for piece in chunks:
        assert len(piece) <= OUT_CHUNK
        total += len(piece)
    assert total == 512 + (96 << 20) + 1024


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_concatenated_and_truncated_streams(kind: str) -> None:
    a, b = os.urandom(300_000), bytes(3 << 20)
    blob = COMPRESS[kind](a) + COMPRESS[kind](b)
    assert b"".join(decompressed_chunks(io.BytesIO(blob))[1]) == a + b
    with pytest.raises(UnexpectedEOF):
        b"".join(decompressed_chunks(io.BytesIO(blob[:-7]))[1])


def test_zstd_skippable_frames_and_garbage() -> None:
    from containers_storage.errors import CorruptCompression

    frame = zstandard.ZstdCompressor().compress(b"hello")
    skippable = (0x184D2A53).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
    assert b"".join(decompressed_chunks(io.BytesIO(frame + skippable + frame))[1]) == b"hellohello"
    with pytest.raises(CorruptCompression):
        b"".join(decompressed_chunks(io.BytesIO(frame + b"garbage!"))[1])


def test_trailing_data_is_kept_up_to_the_cap() -> None:
    tar = make_tar([member("f", b"x")])
    ts = io.BytesIO()
    out = b"".join(disassemble(io.BytesIO(tar + bytes(MAX_TRAILING - len(tar))), _writer(ts), OwnerSets()))
    assert len(out) == MAX_TRAILING
    with pytest.raises(TrailingDataTooLarge):
        for _ in disassemble(io.BytesIO(tar + bytes(MAX_TRAILING + 1)), None, OwnerSets()):
            pass


def _writer(out: io.BytesIO):  # type: ignore[no-untyped-def]
    from containers_storage.archive.tarsplit import TarSplitWriter

    return TarSplitWriter(out)


def test_endless_trailing_data_grows_nothing() -> None:
    """The recorder writes trailing segments through instead of queueing them."""

    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b: memoryview) -> int:  # type: ignore[override]
            b[:] = bytes(len(b))
            return len(b)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(TrailingDataTooLarge):
        apply_layer_stream(io.BufferedReader(Endless()), lambda s: len(s.read(1024)), io.BytesIO())
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 << 10  # KiB


def test_empty_tar_split_is_refused() -> None:
    class NoFiles:
        def open(self, name: str):  # type: ignore[no-untyped-def]
            raise AssertionError(name)

        def close(self) -> None:
            pass

    with pytest.raises(TarSplitEmpty):
        b"".join(assemble(io.BytesIO(b""), NoFiles()))
    # an empty layer's tar-split: a gzip stream without entries, replaying to nothing
    assert b"".join(assemble(io.BytesIO(zlib.compress(b"", 9, wbits=31)), NoFiles())) == b""


def test_read_limited() -> None:
    assert limits.read_limited(io.BytesIO(b"x" * 10), 10, "item") == b"x" * 10
    with pytest.raises(InputTooLarge, match="item is larger than the limit of 10 bytes"):
        limits.read_limited(io.BytesIO(b"x" * 11), 10, "item")
