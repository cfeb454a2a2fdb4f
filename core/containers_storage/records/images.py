"""Image records (``images.json``): names with history, digests recomputed from big data,
mapped top layers (on-disk.md §5)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..errors import DuplicateID, DuplicateImageNames, DuplicateName, ImageUnknown, LoadError, StorageError
from ..gojson import GoTime, go_quote
from ..locks.api import Lock
from ..structs import replace
from .base import RecordFile
from .bigdata import BigDataStore, sha256_of
from .ids import dedupe, generate_id, validate_id
from .layers import apply_name_operation
from .limits import check_metadata
from .model import Image, RecordFormatError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST_RE = r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)\Z"
_LOWER_HEX = frozenset("0123456789abcdef")


def _is_hex(text: str) -> bool:
    """``[a-f0-9]+``: one or more lowercase hex digits."""
    return bool(text) and _LOWER_HEX.issuperset(text)


def validate_digest(digest: str) -> None:
    """Raise ValueError unless ``digest`` is ``<algorithm>:<hex>`` of a known algorithm."""
    if len(digest) == 71 and digest.startswith("sha256:") and _is_hex(digest[7:]):
        return  # the common case, checked first without the pattern
    import re

    m = re.match(_DIGEST_RE, digest)
    if m is None:
        raise ValueError("invalid checksum digest format")
    algorithm, hexpart = m.groups()
    size = _DIGEST_HEX.get(algorithm)
    if size is None:
        raise ValueError("unsupported digest algorithm")
    if len(hexpart) != size:
        raise ValueError("invalid checksum digest length")
    if not _is_hex(hexpart):
        raise ValueError("invalid checksum digest format")


def is_manifest_key(key: str) -> bool:
    return key.startswith("manifest")


def digest_list(digest: str, big_data_names: Sequence[str], big_data_digests: Mapping[str, str]) -> list[str]:
    """§5.3: ``digest`` then the digests of ``manifest*`` items, de-duplicated.
    Raises ValueError naming the bad digest."""
    out: list[str] = []
    if digest:
        try:
            validate_digest(digest)
        except ValueError as exc:
            raise ValueError(f"validating image digest {digest!r}: {exc}") from None
        out.append(digest)
    keys: Sequence[str] = big_data_names
    if len(big_data_digests) > len(big_data_names) or any(k not in big_data_digests for k in keys):
        keys = [*big_data_names, *sorted(k for k in big_data_digests if k not in big_data_names)]
    for key in keys:
        if not key.startswith("manifest"):
            continue
        d = big_data_digests.get(key)
        if d is None or d in out:
            continue
        try:
            validate_digest(d)
        except ValueError as exc:
            raise ValueError(f"validating digest {d!r} for big data item {key!r}: {exc}") from None
        out.append(d)
    return out


def recompute_digests(img: Image) -> Image:
    """The image with ``digests`` recomputed; an empty ``digest`` takes the first."""
    out = digest_list(img.digest, img.big_data_names, img.big_data_digests)
    digest = img.digest or (out[0] if out else "")
    if tuple(out) == img.digests and digest == img.digest:
        return img
    return replace(img, digests=tuple(out), digest=digest)


def with_history(img: Image, names: Sequence[str]) -> Image:
    """§5.2: each resulting name moves to the front of the history, in order."""
    history = list(img.names_history)
    for name in names:
        history = [name, *(h for h in history if h != name)]
    return replace(img, names_history=tuple(history))


class ImageStore(BigDataStore[Image]):
    kind = "image"
    unknown_error = ImageUnknown
    unknown_names_ref = True

    def __init__(self, lock: Lock, image_dir: str, *, read_only: bool = False) -> None:
        super().__init__(
            lock,
            [RecordFile(os.path.join(image_dir, "images.json"))],
            read_only=read_only,
            data_root=image_dir,
        )
        self.image_dir = image_dir
        self._by_digest: dict[str, list[str]] = {}
        #: ID -> (decoded record, its digest list) computed by index_raw at load, so that
        #: building the record object does not compute (and copy the record for) it again
        self._loaded_digests: dict[str, tuple[dict[str, Any], list[str]]] = {}

    def parse(self, data: dict[str, Any], file_index: int) -> Image:
        known = self._loaded_digests.pop(data.get("id", ""), None)
        if known is not None and known[0] is data:
            return Image.from_json(data, read_only=self.read_only, digests=tuple(known[1]))
        img = Image.from_json(data, read_only=self.read_only)
        try:
            return recompute_digests(img)
        except ValueError as exc:
            raise RecordFormatError(
                f"computing digests for image with ID {img.id!r} ({list(img.names)}): {exc}"
            ) from None

    def index_raw(self, id: str, data: dict[str, Any]) -> None:
        digest = data.get("digest") or ""
        names = data.get("big-data-names") or ()
        digests = data.get("big-data-digests") or {}
        if (
            digest.__class__ is not str
            or names.__class__ not in (list, tuple)
            or digests.__class__ is not dict
        ):
            self._records[id]  # raises LoadError naming the file and field
            return
        try:
            found = digest_list(digest, names, digests)
        except (ValueError, TypeError) as exc:
            raise LoadError(
                f"loading {self.files[0].path}",
                message=f"computing digests for image with ID {id!r} ({data.get('names')}): {exc}",
            ) from None
        for d in found:
            self._by_digest.setdefault(d, []).append(id)
        self._loaded_digests[id] = (data, found)
        if found and not digest:
            self._filled.append(id)

    def load(self) -> None:
        self._filled: list[str] = []
        super().load()
        for rid in self._filled:
            # digest filled in from big data: written on the next save, as upstream does
            self._records[rid]
            self._records.raw.pop(rid, None)
            self._records.text.pop(rid, None)

    def index_add(self, rec: Image) -> None:
        for d in rec.digests:
            self._by_digest.setdefault(d, []).append(rec.id)

    def index_remove(self, rec: Image) -> None:
        for d in rec.digests:
            ids = self._by_digest.get(d)
            if ids and rec.id in ids:
                ids.remove(rec.id)
                if not ids:
                    del self._by_digest[d]

    def index_clear(self) -> None:
        self._by_digest = {}
        self._loaded_digests = {}

    def duplicate_names_error(self) -> Exception:
        return DuplicateImageNames()

    def after_big_data_change(self, rec: Image) -> Image:
        try:
            return recompute_digests(rec)
        except ValueError as exc:
            raise StorageError(f"loading recomputed image digest information for {rec.id}: {exc}") from None

    # -- queries -------------------------------------------------------------------------
    def by_digest(self, digest: str) -> list[Image]:
        return [self._records[i] for i in self._by_digest.get(digest, ())]

    def by_top_layer(self, layer_id: str) -> list[Image]:
        return [
            r for r in self._records.values() if r.top_layer == layer_id or layer_id in r.mapped_top_layers
        ]

    # -- changes (under writing) ---------------------------------------------------------
    def create(
        self,
        id: str,
        names: Sequence[str],
        layer: str,
        *,
        digest: str = "",
        digests: Sequence[str] = (),
        metadata: str = "",
        created: GoTime | None = None,
        big_data: Sequence[tuple[str, bytes, str]] = (),
        names_history: Sequence[str] = (),
        flags: Mapping[str, Any] | None = None,
    ) -> Image:
        check_metadata(metadata)
        if not id:
            id = generate_id(self._records.__contains__)
        validate_id(id, "image")
        if id in self._records:
            raise DuplicateID(f"an image with ID {go_quote(id)} already exists")
        names = dedupe(names)
        for name in names:
            owner = self.name_owner(name)
            if owner is not None:
                raise DuplicateName(
                    f"image name {go_quote(name)} is already associated with image {go_quote(owner.id)}"
                )
        img = Image(
            id=id,
            digest=digest,
            digests=tuple(digests),
            names=names,
            names_history=tuple(names_history),
            top_layer=layer,
            metadata=metadata,
            created=created if created is not None and not created.is_zero else GoTime.now(),
            flags=dict(flags or {}),
        )
        try:
            img = recompute_digests(replace(img, digests=()))
        except ValueError as exc:
            raise StorageError(f"validating digests for new image: {exc}") from None
        self.add(img)
        try:
            for key, data, item_digest in big_data:
                self.write_big_data(id, key, data, item_digest or sha256_of(data), fresh=True)
            self.save()
        except BaseException:
            self.remove_data_dir(id)
            raise
        return self._records[id]

    def update_names(self, ref: str, names: Sequence[str], op: str) -> None:
        rec = self.get(ref)
        new = apply_name_operation(rec.names, names, op)
        self.take_names(new, rec.id, lambda r: r)
        self.update(with_history(replace(self._records[rec.id], names=new), new))
        self.save()

    def set_metadata(self, ref: str, metadata: str) -> None:
        check_metadata(metadata)
        rec = self.get(ref)
        self.update(replace(rec, metadata=metadata))
        self.save()

    def set_big_data(self, ref: str, key: str, data: bytes, digest: str) -> None:
        if self.write_big_data(ref, key, data, digest):
            self.save()

    def add_mapped_top_layer(self, ref: str, layer_id: str) -> None:
        rec = self.get(ref)
        self.update(replace(rec, mapped_top_layers=(*rec.mapped_top_layers, layer_id)))
        self.save()

    def remove_mapped_top_layer(self, ref: str, layer_id: str) -> None:
        rec = self.get(ref)
        self.update(replace(rec, mapped_top_layers=tuple(x for x in rec.mapped_top_layers if x != layer_id)))
        self.save()
