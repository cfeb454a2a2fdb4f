"""The additional-layer-store handle (upstream drivers.AdditionalLayer).

An additional layer store offers layers that already exist in unpacked form somewhere
else (a lazy-pulling filesystem, a shared cache), keyed by compressed digest and image
reference. Implementations plug in through the ``cstorage_additional_layer`` hook.
"""

from __future__ import annotations

from typing import IO, Protocol


class AdditionalLayer(Protocol):
    """A layer found in an additional layer store; ``release`` it when done."""

    def put_as(self, id: str, parent: str | None, names: list[str]) -> None:
        """Make the layer available in the store's driver as layer ``id``."""

    @property
    def uncompressed_digest(self) -> str: ...

    @property
    def compressed_size(self) -> int: ...

    def info(self) -> IO[bytes]:
        """The layer's record as JSON (upstream's ``info`` file)."""

    def blob(self) -> IO[bytes]:
        """The compressed layer blob."""

    def release(self) -> None: ...
