"""Partial pulls (zstd:chunked, eStargz): thin wrappers over chunked.storeglue, under the
layer store's write lock as upstream's.
"""

from __future__ import annotations

import os

from ..idtools import IDMappings
from .argtypes import checked, instance, path, text
from .locking import StoreLocks
from .options import StrPath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..chunked.differ import ChunkedDiffer, DifferOutput


class PartialMixin(StoreLocks):
    """The Store's partial-pull methods."""

    @checked(to=text, id_mappings=instance(IDMappings, none=True))
    def apply_diff_with_differ(
        self, to: str, differ: ChunkedDiffer, id_mappings: IDMappings | None = None
    ) -> DifferOutput:
        """Write a partial pull's files: into a new staging directory (``to`` empty;
        pass the output to :meth:`apply_diff_from_staging_directory`) or into layer ``to``."""
        from ..chunked import storeglue

        with self._write_layers() as layers:
            return storeglue.apply_with_differ(self.driver, layers, to, differ, id_mappings)

    @checked(to=text, staging_directory=path)
    def apply_diff_from_staging_directory(
        self, to: str, staging_directory: StrPath, diff_output: DifferOutput
    ) -> None:
        from ..chunked import storeglue

        with self._write_layers() as layers:
            storeglue.apply_from_staging(self.driver, layers, to, os.fspath(staging_directory), diff_output)

    @checked(staging_directory=path)
    def cleanup_staging_directory(self, staging_directory: StrPath) -> None:
        from ..chunked import storeglue

        with self._write_layers():
            storeglue.cleanup_staging(self.driver, os.fspath(staging_directory))

    @checked(id=text)
    def differ_target(self, id: str) -> str:
        from ..chunked import storeglue

        with self._write_layers() as layers:
            return storeglue.differ_target(self.driver, layers, id)
