"""Writing a ``docker save`` archive as containers/image's docker-archive writer does:
the layers as ``<DiffID hex>.tar``, the config as ``<hex>.json``, ``manifest.json``,
and the legacy layout (one directory per layer with ``VERSION``, ``json`` and a
``layer.tar`` link) plus ``repositories`` for older docker versions; every member owned
by root, mode 0444, time zero.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import IO, Any

from ..archive import tarwriter
from ..gojson import dumps, go_escape
from . import digests
from .errors import DigestMismatch, InvalidImageSource

#: the config fields the legacy top layer's ``json`` carries
_LEGACY_FIELDS = (
    "architecture",
    "config",
    "container",
    "container_config",
    "created",
    "docker_version",
    "os",
)


def compact(raw: str) -> str:
    """JSON text without insignificant white space, HTML-escaped, the rest byte for byte
    (what Go writes for a ``json.RawMessage``)."""
    out: list[str] = []
    in_string = escaped = False
    for ch in raw:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch in " \t\r\n":
            continue
        else:
            if ch == '"':
                in_string = True
            out.append(ch)
    return go_escape("".join(out))


def raw_members(text: str) -> dict[str, str]:
    """The members of a JSON object as raw (compacted) value texts; the last of equal
    keys wins, as when Go decodes into a map."""
    decoder = json.JSONDecoder()
    ws = " \t\r\n"
    i = 0

    def skip(j: int) -> int:
        while j < len(text) and text[j] in ws:
            j += 1
        return j

    i = skip(i)
    if text[i : i + 1] != "{":
        raise InvalidImageSource(message="config is not a JSON object")
    i = skip(i + 1)
    out: dict[str, str] = {}
    if text[i : i + 1] == "}":
        return out
    while True:
        key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
        i = skip(i)
        if text[i : i + 1] != ":":
            raise InvalidImageSource(message="config is not valid JSON")
        i = skip(i + 1)
        _, end = decoder.raw_decode(text, i)
        out[key] = compact(text[i:end])
        i = skip(end)
        if text[i : i + 1] == ",":
            i = skip(i + 1)
            continue
        if text[i : i + 1] == "}":
            return out
        raise InvalidImageSource(message="config is not valid JSON")


def _go_map_json(members: dict[str, str]) -> str:
    """A Go ``map[string]*json.RawMessage`` marshalled: sorted keys, raw values."""
    return "{" + ",".join(f"{dumps(k)}:{members[k]}" for k in sorted(members)) + "}"


def legacy_layers(config: bytes, diff_ids: Sequence[str]) -> list[tuple[str, bytes]]:
    """(legacy ID, ``json``) of each layer, bottom-up: IDs are digests of the entry
    with its chain ID, so an image's entries never collide with another's."""
    fields = raw_members(config.decode("utf-8", "surrogateescape"))
    out: list[tuple[str, bytes]] = []
    chain = ""
    parent = ""
    for i, diff_id in enumerate(diff_ids):
        entry: dict[str, str] = {}
        if parent:
            entry["parent"] = dumps(parent)
        if i == len(diff_ids) - 1:
            for name in _LEGACY_FIELDS:
                entry[name] = fields.get(name, "null")
        chain = (
            diff_id if not chain else "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest()
        )
        entry["layer_id"] = dumps(chain)
        layer_id = hashlib.sha256(_go_map_json(entry).encode()).hexdigest()
        del entry["layer_id"]
        entry["id"] = dumps(layer_id)
        out.append((layer_id, _go_map_json(entry).encode()))
        parent = layer_id
    return out


class DockerArchiveWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self._written: set[str] = set()

    def _member(self, name: str, data: bytes) -> None:
        self.out.write(
            tarwriter.encode(tarwriter.Header(name.encode(), ord("0"), mode=0o444, size=len(data)))
        )
        self.out.write(data)
        self.out.write(tarwriter.padding(len(data)))

    def layer(self, diff_id: str, size: int, chunks: Iterable[bytes]) -> None:
        """``<hex>.tar`` from ``chunks`` (which must be ``size`` bytes with digest
        ``diff_id``); the same layer twice is written once."""
        hexpart = digests.sha256_hex(diff_id, "layer DiffID")
        if hexpart in self._written:
            for _ in chunks:
                pass
            return
        self.out.write(
            tarwriter.encode(tarwriter.Header(f"{hexpart}.tar".encode(), ord("0"), mode=0o444, size=size))
        )
        sha = hashlib.sha256()
        count = 0
        for chunk in chunks:
            count += len(chunk)
            if count > size:
                raise DigestMismatch(
                    f"layer {diff_id}", message=f"the store's diff is longer than {size} bytes"
                )
            sha.update(chunk)
            self.out.write(chunk)
        if count != size or "sha256:" + sha.hexdigest() != diff_id:
            raise DigestMismatch(f"layer {diff_id}", message="the store's diff no longer matches its DiffID")
        self.out.write(tarwriter.padding(size))
        self._written.add(hexpart)

    def finish(self, config: bytes, diff_ids: Sequence[str], repo_tags: Sequence[tuple[str, str]]) -> None:
        config_name = digests.sha256_hex(digests.of(config), "config") + ".json"
        self._member(config_name, config)
        legacy = legacy_layers(config, diff_ids)
        seen: set[str] = set()
        for (layer_id, entry), diff_id in zip(legacy, diff_ids, strict=True):
            if layer_id in seen:
                continue
            seen.add(layer_id)
            target = "../" + digests.sha256_hex(diff_id, "layer DiffID") + ".tar"
            self.out.write(
                tarwriter.encode(
                    tarwriter.Header(f"{layer_id}/layer.tar".encode(), ord("2"), linkname=target.encode())
                )
            )
            self._member(f"{layer_id}/VERSION", b"1.0")
            self._member(f"{layer_id}/json", entry)
        item: dict[str, Any] = {
            "Config": config_name,
            "RepoTags": [f"{repo}:{tag}" for repo, tag in repo_tags],
            "Layers": [digests.sha256_hex(d, "layer DiffID") + ".tar" for d in diff_ids],
        }
        self._member("manifest.json", dumps([item]).encode())
        repositories: dict[str, dict[str, str]] = {}
        if legacy:
            for repo, tag in repo_tags:
                repositories.setdefault(repo, {})[tag] = legacy[-1][0]
        self._member("repositories", dumps(repositories, sort_keys=True).encode())
        self.out.write(tarwriter.END_OF_ARCHIVE)
