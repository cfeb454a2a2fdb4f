"""What a command handler gets: its arguments, flag values, the store and the streams."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import StoreOptions
    from ..store import Store


class Console:
    """Binary standard streams with text helpers (UTF-8, undecodable bytes kept)."""

    def __init__(self, out: IO[bytes], err: IO[bytes]) -> None:
        self.out_stream = out
        self.err_stream = err

    def out(self, text: str) -> None:
        self.out_stream.write(text.encode("utf-8", "surrogateescape"))

    def err(self, text: str) -> None:
        self.out_stream.flush()
        self.err_stream.write(text.encode("utf-8", "surrogateescape"))
        self.err_stream.flush()

    def json(self, value: Any) -> None:
        """One value as Go's ``json.Encoder`` writes it: compact, then a newline."""
        from ..gojson import dumps

        self.out(dumps(value) + "\n")

    def flush(self) -> None:
        self.out_stream.flush()
        self.err_stream.flush()


@dataclass
class Context:
    command: str
    args: list[str]
    flags: Mapping[str, object]
    console: Console
    options: StoreOptions
    #: None only for our own commands that need no store (``drivers``)
    opened_store: Store | None = None

    @property
    def store(self) -> Store:
        assert self.opened_store is not None, "this command runs without a store"
        return self.opened_store

    def flag(self, name: str) -> Any:
        return self.flags.get(name)

    @property
    def json(self) -> bool:
        return bool(self.flags.get("json"))
