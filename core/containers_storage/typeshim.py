"""The few :mod:`typing` names the package needs at run time, without importing it.

``typing`` costs a few milliseconds of every start; annotations are strings
(``from __future__ import annotations``) and annotation-only names are imported under
``if TYPE_CHECKING:``. What a class statement or a call evaluates -- ``Generic[T]``,
``TypeVar``, ``Protocol``, ``cast`` -- comes from here: the type checker sees the real
ones, the interpreter cheap stand-ins (``Generic[T]`` and ``SomeGeneric[T]`` are the
class itself, a type variable is its name, a protocol an ordinary base class, a cast
returns its value).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Generic as Generic
    from typing import Protocol as Protocol
    from typing import TypeVar as TypeVar
    from typing import cast as cast
    from typing import runtime_checkable as runtime_checkable
else:

    class Generic:
        """Subscribing the class (or a subclass) gives the class back."""

        __slots__ = ()

        def __class_getitem__(cls, item):
            return cls

    class Protocol:
        """A structural type; at run time an empty base class (no isinstance support)."""

        __slots__ = ()

    def TypeVar(name, *constraints, bound=None, covariant=False, contravariant=False):
        return name

    def cast(kind, value):
        return value

    def runtime_checkable(cls):
        return cls
