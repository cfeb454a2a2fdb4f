"""The chunker cuts exactly where upstream's rolling checksum and hole finder do."""

from __future__ import annotations

import random

import pytest

from containers_storage.chunked import rollsum


def reference(data: bytes) -> list[tuple[int, int, bool]]:
    """A byte-at-a-time transcription of upstream's algorithm (bup rollsum, 64-byte
    window, offset 31, 16 split bits; zero runs of 1024+ are holes)."""
    s1, s2, window, wofs = 64 * 31, 64 * 63 * 31, [0] * 64, 0
    chunks: list[tuple[int, int, bool]] = []
    start = i = 0

    def roll(ch: int) -> bool:
        nonlocal s1, s2, wofs
        drop = window[wofs]
        s1 = (s1 + ch - drop) & 0xFFFFFFFF
        s2 = (s2 + s1 - 64 * (drop + 31)) & 0xFFFFFFFF
        window[wofs] = ch
        wofs = (wofs + 1) & 63
        return (s2 & 0xFFFF) == 0xFFFF

    while i < len(data):
        if data[i] == 0:
            j = i
            while j < len(data) and data[j] == 0:
                j += 1
            if j - i >= 1024:
                if i > start:
                    chunks.append((start, i - start, False))
                for _ in range(j - i):
                    roll(0)
                chunks.append((i, j - i, True))
                start = i = j
                continue
            for k in range(i, j):
                if roll(0):
                    chunks.append((start, k + 1 - start, False))
                    start = k + 1
            i = j
            continue
        if roll(data[i]):
            chunks.append((start, i + 1 - start, False))
            start = i + 1
        i += 1
    if len(data) > start:
        chunks.append((start, len(data) - start, False))
    return chunks


def sample(rnd: random.Random) -> bytes:
    parts = []
    for _ in range(rnd.randint(0, 10)):
        k = rnd.random()
        if k < 0.3:
            parts.append(bytes(rnd.choice([1, 600, 1023, 1024, 1025, 3000, 9000])))
        elif k < 0.5:
            parts.append(bytes(rnd.randint(0, 2) for _ in range(rnd.randint(1, 5000))))
        else:
            parts.append(rnd.randbytes(rnd.randint(1, 60_000)))
    return b"".join(parts)


@pytest.mark.parametrize("block", [4096, 1 << 20])
def test_chunks_match_upstream_algorithm(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(rollsum, "_BLOCK", block)
    rnd = random.Random()
    for _ in range(60):
        data = sample(rnd)
        c = rollsum.Chunker()
        pos = 0
        while pos < len(data):
            step = rnd.randint(1, 9000)
            c.feed(data[pos : pos + step])
            pos += step
        got = [(x.offset, x.size, x.zeros) for x in c.take() + c.finish()]
        assert got == reference(data), len(data)


def test_hole_at_start_and_end_and_empty() -> None:
    c = rollsum.Chunker()
    c.feed(bytes(2000) + b"x" + bytes(1500))
    assert [(x.offset, x.size, x.zeros) for x in c.finish()] == [
        (0, 2000, True),
        (2000, 1, False),
        (2001, 1500, True),
    ]
    assert rollsum.Chunker().finish() == []
