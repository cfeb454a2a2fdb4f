"""Argument type checks at the Store's boundary.

A wrong type handed to a public method must fail there, with a :class:`TypeError` naming
the parameter, before anything is written: ``names=[5]`` or ``metadata=5`` saved as
they are make records no later command can read, and a ``str`` where a list of names is
expected would be iterated into one name per character. :func:`checked` declares the
checks once per method; each is a plain function, so a call costs a few ``isinstance``
tests and importing this module costs nothing (no ``inspect``, no ``typing`` hints are
evaluated: the parameter positions come from the function's code object).
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable, Mapping, Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

#: a check: raises TypeError naming the parameter when the value does not fit
Check = Callable[[str, object], None]


def _refuse(param: str, want: str, value: object) -> TypeError:
    return TypeError(f"{param} must be {want}, not {type(value).__name__}")


def text(param: str, value: object) -> None:
    """A ``str`` (IDs, names, keys, labels, metadata)."""
    if not isinstance(value, str):
        raise _refuse(param, "a str", value)


def flag(param: str, value: object) -> None:
    """A ``bool`` (an ``int`` is taken as its truth value, as Python does)."""
    if not isinstance(value, int):
        raise _refuse(param, "a bool", value)


def sequence_of(cls: type) -> Check:
    """A sequence (not a ``str``) of instances of ``cls``."""
    want = f"a list of {cls.__name__}"

    def sequence_check(param: str, value: object) -> None:
        if isinstance(value, str | bytes | bytearray) or not isinstance(value, Sequence):
            raise _refuse(param, want, value)
        for item in value:
            if not isinstance(item, cls):
                raise TypeError(f"{param} must be {want}, not one holding {type(item).__name__}")

    return sequence_check


#: a sequence of ``str`` (names, mount options), never one ``str`` by itself
texts = sequence_of(str)


def data(param: str, value: object) -> None:
    """Bytes (``bytes`` or ``bytearray``)."""
    if not isinstance(value, bytes | bytearray):
        raise _refuse(param, "bytes", value)


def binary_input(param: str, value: object) -> None:
    """Bytes, or a binary file open for reading (anything with ``read`` that is not a
    text file)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return
    if isinstance(value, io.TextIOBase) or not callable(getattr(value, "read", None)):
        raise _refuse(param, "bytes or a binary file open for reading", value)


def path(param: str, value: object) -> None:
    """A path: ``str`` or :class:`os.PathLike` of ``str``."""
    if not isinstance(value, str | os.PathLike) or not isinstance(os.fspath(value), str):
        raise _refuse(param, "a str or os.PathLike path", value)


def optional(check: Check) -> Check:
    """``check``, or None."""

    def optional_check(param: str, value: object) -> None:
        if value is not None:
            check(param, value)

    return optional_check


def instance(cls: type, *, none: bool = False) -> Check:
    """An instance of ``cls`` (or None with ``none``)."""
    want = f"a {cls.__name__}" + (" or None" if none else "")

    def instance_check(param: str, value: object) -> None:
        if not isinstance(value, cls) and not (none and value is None):
            raise _refuse(param, want, value)

    return instance_check


def integer(param: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _refuse(param, "an int", value)


def number(param: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _refuse(param, "a number", value)


def mapping(values: Check) -> Check:
    """A mapping of ``str`` keys to values that pass ``values``."""

    def mapping_check(param: str, value: object) -> None:
        if not isinstance(value, Mapping):
            raise _refuse(param, "a mapping", value)
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{param} must have str keys, not {type(key).__name__}")
            values(f"{param}[{key!r}]", item)

    return mapping_check


def anything(param: str, value: object) -> None:
    """Any value (flags hold what JSON can say; the record writer refuses the rest)."""


def fields(obj: object, **checks: Check) -> None:
    """Check the named fields of an options object (call from ``__post_init__``), so a
    wrong type is refused when the options are made, long before a record is written."""
    for name, check in checks.items():
        check(name, getattr(obj, name))


def function(param: str, value: object) -> None:
    if value is not None and not callable(value):
        raise _refuse(param, "callable or None", value)


def checked(**checks: Check) -> Callable[[F], F]:
    """Check the named parameters of a method on every call, given by position or by
    keyword (defaults are not checked: they are right by construction). A name the
    method does not have is an error when the class is defined."""

    def wrap(fn: F) -> F:
        code = getattr(fn, "__wrapped__", fn).__code__  # through a @contextmanager
        names = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]  # after self
        plan = [(name, names.index(name), check) for name, check in checks.items()]

        @functools.wraps(fn)
        def wrapper(self: object, *args: object, **kwargs: object) -> Any:
            n = len(args)
            for name, pos, check in plan:
                if pos < n:
                    check(name, args[pos])
                elif name in kwargs:
                    check(name, kwargs[name])
            return fn(self, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return wrap
