"""HTTP(S) range requests with the standard library, against a server on 127.0.0.1
that counts the bytes it serves."""

from __future__ import annotations

import http.server
import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from containers_storage.chunked.errors import BadRequest
from containers_storage.chunked.sources import HTTPSource
from containers_storage.store import Store

from .conftest import Blob, make_tar, pull, rand


class RangeServer(http.server.ThreadingHTTPServer):
    def __init__(self, path: Path, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.path = path
        self.mode = mode  # "multipart", "single" (ranges coalesced into one part), "ignore" (200), "max60"
        self.served = 0
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/blob"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RangeServer

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.server.served += len(data)

    def do_GET(self) -> None:
        srv = self.server
        srv.requests += 1
        blob = srv.path.read_bytes()
        spec = self.headers.get("Range", "")
        ranges = []
        for part in spec.removeprefix("bytes=").split(","):
            if part:
                a, b = part.split("-")
                ranges.append((int(a), int(b)))
        if srv.mode == "max60" and len(ranges) > 60:
            self.send_response(400)
            self.end_headers()
            return
        if srv.mode == "ignore" or not ranges:
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self._send(blob)
            return
        if len(ranges) == 1 or srv.mode == "single":
            a, b = ranges[0]
            if srv.mode == "single" and len(ranges) > 1:
                b = ranges[-1][1]  # coalesced into one part
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{b}/{len(blob)}")
            self.send_header("Content-Length", str(b - a + 1))
            self.end_headers()
            self._send(blob[a : b + 1])
            return
        boundary = "THIS_STRING_SEPARATES"
        body = io.BytesIO()
        for a, b in ranges:
            body.write(f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n".encode())
            body.write(f"Content-Range: bytes {a}-{b}/{len(blob)}\r\n\r\n".encode())
            body.write(blob[a : b + 1])
        body.write(f"\r\n--{boundary}--\r\n".encode())
        self.send_response(206)
        self.send_header("Content-Type", f"multipart/byteranges; boundary={boundary}")
        self.send_header("Content-Length", str(len(body.getvalue())))
        self.end_headers()
        self._send(body.getvalue())


@pytest.fixture
def serve() -> Iterator[Callable[[Path, str], RangeServer]]:
    servers: list[RangeServer] = []

    def start(path: Path, mode: str = "multipart") -> RangeServer:
        srv = RangeServer(path, mode)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def tree(changed: int) -> dict[str, bytes | str | None]:
    files: dict[str, bytes | str | None] = {"./": None, "./d/": None}
    for i in range(40):
        files[f"./d/f{i}"] = rand(20_000 + 100 * i, i + (1000 * changed if i < 2 else 0))
    return files


@pytest.mark.parametrize("mode", ["multipart", "single", "ignore", "max60"])
def test_pull_over_http(
    vfs_store: Store,
    write_blob: Callable[[bytes, str], Blob],
    serve: Callable[[Path, str], RangeServer],
    mode: str,
) -> None:
    v1, v2 = write_blob(make_tar(tree(0)), "ours"), write_blob(make_tar(tree(1)), "ours")
    pull(vfs_store, v1)
    srv = serve(v2.path, mode)
    src = HTTPSource(srv.url)
    layer, _out = pull(vfs_store, v2, source=src)
    assert vfs_store.diff("", layer).read() == make_tar(tree(1))
    assert src.bytes_read <= srv.served
    if mode in ("multipart", "max60"):
        # two of forty files changed: a small share of the blob crosses the wire
        assert srv.served < v2.size * 0.15


def test_errors(serve: Callable[[Path, str], RangeServer], tmp_path: Path) -> None:
    p = tmp_path / "b"
    p.write_bytes(os.urandom(1000))
    srv = serve(p, "max60")
    src = HTTPSource(srv.url)
    with pytest.raises(BadRequest):
        src.get_blob_at([(i * 10, 5) for i in range(61)])
    parts = src.get_blob_at([(0, 10), (500, 10)])
    assert [next(parts).read(), next(parts).read()] == [p.read_bytes()[:10], p.read_bytes()[500:510]]
    # refused with too many ranges, the differ asks again with fewer, larger ones
    from containers_storage.chunked.fetch import BlobCursor

    wanted = [(i * 10, 5) for i in range(100)]
    cursor = BlobCursor(src, wanted)
    assert srv.requests == 4
    assert [b"".join(cursor.raw(o, o + n)) for o, n in wanted] == [
        p.read_bytes()[o : o + n] for o, n in wanted
    ]
