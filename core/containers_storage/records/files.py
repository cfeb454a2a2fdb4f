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
_WS = " \t\n\r"
_DECODER = json.JSONDecoder()


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


def read_json_array(path: str) -> list[tuple[dict[str, Any], str]]:
    """The objects of the JSON array in ``path``, each with its exact source text (so an
    unchanged record is written back byte for byte without re-encoding it). A missing or
    empty file is an empty array; anything that is not an array of objects raises
    :class:`LoadError` naming the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise LoadError(f"reading {path}", message=exc.strerror or str(exc)) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(f"loading {path}", message=f"invalid UTF-8: {exc}") from None
    if not text.strip(_WS) or text.strip(_WS) == "null":
        return []
    out: list[tuple[dict[str, Any], str]] = []
    try:
        i = _skip(text, 0)
        if text[i : i + 1] != "[":
            raise ValueError(f"expected a JSON array at offset {i}")
        i = _skip(text, i + 1)
        if text[i : i + 1] == "]":
            i += 1
        else:
            while True:
                obj, end = _DECODER.raw_decode(text, i)
                if not isinstance(obj, dict):
                    raise ValueError(f"array element at offset {i} is not an object")
                out.append((obj, text[i:end]))
                i = _skip(text, end)
                c = text[i : i + 1]
                if c == ",":
                    i = _skip(text, i + 1)
                elif c == "]":
                    i += 1
                    break
                else:
                    raise ValueError(f"expected ',' or ']' at offset {i}")
        if _skip(text, i) != len(text):
            raise ValueError(f"extra data after the array at offset {i}")
    except ValueError as exc:
        raise LoadError(f"loading {path}", message=f"corrupt JSON: {exc}") from None
    return out


def _skip(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


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
