import base64
import os

import pytest

from containers_storage.archive.crc64 import Crc64, CrcBatch, crc64


def _table() -> list[int]:
    out = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xD800000000000000 if c & 1 else c >> 1
        out.append(c)
    return out


TABLE = _table()


def reference(data: bytes) -> bytes:
    """Go's table-driven algorithm, byte by byte."""
    crc = (1 << 64) - 1
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return (crc ^ ((1 << 64) - 1)).to_bytes(8, "big")


def test_go_vectors() -> None:
    assert base64.b64encode(crc64(b"hello\n")) == b"YUw+7uLYEAA="
    assert base64.b64encode(crc64(b"x\n")) == b"YVMQAAAAAAA="
    assert crc64(b"") == bytes(8)


@pytest.mark.parametrize("size", [1, 63, 64, 4095, 4096, 4097, 4088, 65536 + 7, 300_001, 1 << 20])
def test_bulk_paths_equal_bytewise(size: int) -> None:
    data = os.urandom(size)
    want = reference(data)
    assert crc64(data) == want
    c = Crc64()
    for i in range(0, size, 7777):
        c.update(data[i : i + 7777])
    assert c.digest() == want
    batch = CrcBatch()
    slot = batch.add([data[: size // 2], data[size // 2 :]])
    batch.finish()
    assert slot.digest == want


def test_batch_many_items() -> None:
    items = [os.urandom(n) for n in (0, 1, 8, 100, 4087, 4088, 4089, 9000, 70_000)]
    batch = CrcBatch()
    slots = [batch.add([d]) for d in items]
    batch.finish()
    assert [s.digest for s in slots] == [reference(d) for d in items]


def test_helper_process_batches() -> None:
    items = [os.urandom(n) for n in range(0, 60_000, 997)]
    batch = CrcBatch(limit=64 << 10)
    slots = []
    for d in items:
        slots.append(batch.add([d]))
        if batch.full:
            batch.submit()
    assert batch._worker is not None  # big input: a helper process took over
    batch.finish()
    assert batch._worker is None
    assert [s.digest for s in slots] == [reference(d) for d in items]


def test_helper_process_failure_falls_back() -> None:
    items = [os.urandom(n) for n in range(1000, 200_000, 5000)]
    batch = CrcBatch(limit=64 << 10)
    slots = []
    for d in items:
        slots.append(batch.add([d]))
        if batch.full:
            batch.submit()
            if batch._worker is not None:
                batch._worker.proc.kill()
    batch.finish()
    assert [s.digest for s in slots] == [reference(d) for d in items]


def test_zero_runs_take_the_shortcut_with_the_same_result() -> None:
    """Chunks of zeros (any length, mixed with other data) give Go's CRC of the whole."""
    import os
    import random

    from containers_storage.archive.crc64 import Crc64

    for _ in range(10):
        chunks = [
            random.choice(
                [bytes(random.randint(1, 5000)), os.urandom(random.randint(1, 500)), b"\0" + os.urandom(3)]
            )
            for _ in range(random.randint(1, 6))
        ]
        c = Crc64()
        for chunk in chunks:
            c.update(chunk)
        assert c.digest() == _go_crc(b"".join(chunks))


def _go_crc(data: bytes) -> bytes:
    """Bytewise reference: the reflected ISO polynomial, as Go's crc64.ISO table."""
    poly = 0xD800000000000000
    crc = (1 << 64) - 1
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return (crc ^ ((1 << 64) - 1)).to_bytes(8, "big")
