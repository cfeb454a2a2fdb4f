"""Small shared types of the archive package."""

from __future__ import annotations

from typing import IO, Protocol


class FileGetter(Protocol):
    """Opens layer files by their tar name, to replay tar-split without a mount."""

    def open(self, name: str) -> IO[bytes]:
        """The content of ``name`` (a cleaned, relative tar name); OSError if missing."""
        ...

    def close(self) -> None: ...
