"""The additional-layer-store handle (upstream drivers.AdditionalLayer).

An additional layer store offers layers that already exist in unpacked form somewhere
else (a lazy-pulling filesystem, a shared cache), keyed by compressed digest and image
reference. Implementations plug in through the ``cstorage_additional_layer`` hook.

Division of work: the handle only *describes* the layer and tells its store that the
layer is used (``put_as``) or no longer needed (``release``). Putting the content into the
graph driver is the store's job (``Store.lookup_additional_layer(...).put_as``): drivers
that read additional layer stores natively (overlay) use the store's ``diff`` directory in
place; with other drivers the store applies ``blob()`` and checks it against the
uncompressed digest from ``info()``.
"""

from __future__ import annotations

from .typeshim import Protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO


class AdditionalLayer(Protocol):
    """A layer found in an additional layer store; ``release`` it when done."""

    def put_as(self, id: str, parent: str | None, names: list[str]) -> None:
        """Tell the additional layer store that the layer is now used as layer ``id``
        (upstream's "use" notification); the store itself creates the driver layer."""

    @property
    def uncompressed_digest(self) -> str: ...

    @property
    def compressed_size(self) -> int: ...

    def info(self) -> IO[bytes]:
        """The layer's record as JSON (upstream's ``info`` file)."""

    def blob(self) -> IO[bytes]:
        """The compressed layer blob."""

    def release(self) -> None: ...
