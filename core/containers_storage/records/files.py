"""Files under the record directories: atomic replacement, JSON array files read with
each element's original text kept, and big-data item files (on-disk.md §6, §7.4)."""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

from ..errors import InvalidBigDataName, LoadError

_PLAIN_KEY = re.compile(r"[.0-9a-z]+\Z")


def write_atomic(path: str, data: bytes, *, durable: bool = True, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix:
    temp file in the same directory, write, fsync, chmod, rename, fsync the directory.
    ``durable=False`` (volatile records) skips both fsyncs."""
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, f".tmp-{base}{int.from_bytes(os.urandom(4), 'little')}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if durable:
            os.fdatasync(fd)
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    if durable:
        dfd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def read_json_array(path: str) -> list[dict[str, Any]]:
    """The objects of the JSON array in ``path``, decoded in one pass. A missing or empty
    file is an empty array; anything that is not an array of objects raises
    :class:`LoadError` naming the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise LoadError(f"reading {path}", message=exc.strerror or str(exc)) from exc
    if not raw.strip():
        return []
    try:
        value = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise LoadError(f"loading {path}", message=f"invalid UTF-8: {exc}") from None
    except ValueError as exc:
        raise LoadError(f"loading {path}", message=f"corrupt JSON: {exc}") from None
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise LoadError(f"loading {path}", message="corrupt JSON: not an array of objects")
    return value


def big_data_file_name(key: str) -> str:
    """Key -> file name: plain keys stay, others become ``=`` + base64 (on-disk.md §6)."""
    if not key:
        raise InvalidBigDataName(f"can't set empty name for big data item {key!r}")
    if _PLAIN_KEY.match(key):
        return key
    return "=" + base64.b64encode(key.encode("utf-8", "surrogateescape")).decode("ascii")


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
