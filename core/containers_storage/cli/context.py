"""What a command handler gets: its arguments, flag values, the store and the streams."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ms at start-up; type checkers treat this as True

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO, Any

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
        """One value as Go's ``json.Encoder`` writes it: compact, then a newline; bytes
        that are not UTF-8 (kept from a record as surrogate escapes) become ``\\ufffd``,
        as Go writes them, so the output is valid JSON."""
        from ..gojson import dumps

        text = dumps(value)
        if not text.isascii():
            import re

            text = re.sub("[\ud800-\udfff]", lambda _m: "\\ufffd", text)
        self.out(text + "\n")

    def flush(self) -> None:
        self.out_stream.flush()
        self.err_stream.flush()


class Context:
    """``opened_store`` is None only for our own commands that need no store (``drivers``)."""

    def __init__(self, command: str, args: list[str], flags: Mapping[str, object], console: Console,
                 options: StoreOptions, opened_store: Store | None = None) -> None:
        self.command = command
        self.args = args
        self.flags = flags
        self.console = console
        self.options = options
        self.opened_store = opened_store

    @property
    def store(self) -> Store:
        assert self.opened_store is not None, "this command runs without a store"
        return self.opened_store

    def flag(self, name: str) -> Any:
        return self.flags.get(name)

    @property
    def json(self) -> bool:
        return bool(self.flags.get("json"))
