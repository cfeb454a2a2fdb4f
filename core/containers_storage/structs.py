"""Record classes without importing :mod:`dataclasses` at start-up.

Importing ``dataclasses`` pulls in ``inspect``, ``typing`` and ``re`` and builds every
class through several generated functions: about a fifth of a small command's run.
This module's :func:`dataclass`, :func:`field` and :func:`replace` take the same
arguments as the standard ones (only what the package uses: ``frozen``, ``slots``,
``order``, ``default``, ``default_factory``, ``__post_init__``, data
descriptors as defaults) and make classes that behave the same:
the same ``__init__`` signature, ``__repr__``, ``__eq__``, ``__hash__``, ordering,
frozen instances (:class:`FrozenInstanceError` is an ``AttributeError``) and
``__slots__``. The type checker sees the standard ones, so the classes are typed as
dataclasses.

Code outside the package may treat them as dataclasses too: ``dataclasses.fields``,
``replace``, ``asdict`` and ``is_dataclass`` work, because ``__dataclass_fields__`` is
computed (with the real module, imported then) the first time someone asks for it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import FrozenInstanceError as FrozenInstanceError
    from dataclasses import dataclass as dataclass
    from dataclasses import field as field
    from dataclasses import replace as replace
else:
    _MISSING = object()

    class FrozenInstanceError(AttributeError):
        """Assigning to a field of a frozen record (as ``dataclasses.FrozenInstanceError``)."""

    class _Factory:
        __slots__ = ("factory",)

        def __init__(self, factory):
            self.factory = factory

    def field(*, default=_MISSING, default_factory=_MISSING):
        """A field's default (``default``) or the callable making it (``default_factory``)."""
        if default_factory is not _MISSING:
            return _Factory(default_factory)
        return default

    def dataclass(cls=None, /, *, frozen=False, slots=False, order=False):
        def wrap(cls):
            return _build(cls, frozen, slots, order)

        return wrap if cls is None else wrap(cls)

    def replace(obj, /, **changes):
        """A copy of ``obj`` with ``changes`` (as ``dataclasses.replace``)."""
        names = getattr(type(obj), "_struct_fields_", None)
        if names is None:
            import dataclasses

            return dataclasses.replace(obj, **changes)
        for name in names:
            if name not in changes:
                changes[name] = getattr(obj, name)
        return type(obj)(**changes)

    class _DataclassFields:
        """``__dataclass_fields__`` made on first use: the real module describes a twin
        class with the same fields and defaults."""

        def __get__(self, obj, owner):
            import dataclasses

            annotations = {}
            namespace = {"__annotations__": annotations}
            for name in owner._struct_fields_:
                annotations[name] = owner._struct_types_[name]
                default = owner._struct_defaults_[name]
                if isinstance(default, _Factory):
                    namespace[name] = dataclasses.field(default_factory=default.factory)
                elif default is not _MISSING:
                    namespace[name] = default
            twin = dataclasses.dataclass(frozen=owner._struct_frozen_)(type(owner.__name__, (), namespace))
            found = twin.__dataclass_fields__
            type.__setattr__(owner, "__dataclass_fields__", found)
            return found

    def _frozen_setattr(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def _frozen_delattr(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _getstate(self):
        return [getattr(self, name) for name in self._struct_fields_]

    def _setstate(self, state):
        for name, value in zip(self._struct_fields_, state, strict=True):
            object.__setattr__(self, name, value)

    def _repr(self):
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._struct_fields_)
        return f"{type(self).__qualname__}({inner})"

    def _compare(op):
        def method(self, other):
            if other.__class__ is self.__class__:
                key = self._struct_key_
                return op(key(self), key(other))
            return NotImplemented

        return method

    def _eq(a, b):
        return a == b

    def _lt(a, b):
        return a < b

    def _le(a, b):
        return a <= b

    def _gt(a, b):
        return a > b

    def _ge(a, b):
        return a >= b

    def _hash(self):
        return hash(self._struct_key_(self))

    def _build(cls, frozen, slots, order):
        names = []
        types = {}
        defaults = {}
        descriptors = {}
        for base in reversed(cls.__mro__[1:]):
            for name in base.__dict__.get("_struct_fields_", ()):
                if name not in defaults:
                    names.append(name)
                types[name] = base._struct_types_[name]
                defaults[name] = base._struct_defaults_[name]
        # the class's own annotations (inspect.get_annotations would import inspect)
        own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
        for name, annotation in own.items():
            text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
            if text.startswith(("ClassVar", "typing.ClassVar")):
                continue
            if name not in defaults:
                names.append(name)
            types[name] = annotation
            raw = cls.__dict__.get(name, _MISSING)
            if hasattr(type(raw), "__set__") and hasattr(type(raw), "__get__"):
                # a data descriptor stays on the class; its class-level value is the
                # default, as dataclasses takes it
                descriptors[name] = raw
                raw = raw.__get__(None, cls)
            defaults[name] = raw
        params = []
        body = []
        scope = {"_osa": object.__setattr__, "_MISSING": _MISSING}
        seen_default = False
        for name in names:
            default = defaults[name]
            if default is _MISSING:
                if seen_default:
                    raise TypeError(f"non-default argument {name!r} follows default argument")
                params.append(name)
            else:
                seen_default = True
                if isinstance(default, _Factory):
                    scope[f"_f_{name}"] = default.factory
                    params.append(f"{name}=_MISSING")
                    body.append(f"  if {name} is _MISSING: {name} = _f_{name}()")
                else:
                    scope[f"_d_{name}"] = default
                    params.append(f"{name}=_d_{name}")
            if frozen and slots:  # the slot's own setter: twice as fast as object.__setattr__
                body.append(f"  _s_{name}(self, {name})")
            else:
                body.append(f"  _osa(self, {name!r}, {name})" if frozen else f"  self.{name} = {name}")
        post_init = any("__post_init__" in k.__dict__ for k in cls.__mro__)
        if post_init:  # as dataclasses: called after every field is set
            body.append("  self.__post_init__()")
        source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "  pass") + "\n"
        namespace = dict(cls.__dict__)
        for name in names:
            namespace.pop(name, None)
        namespace.pop("__dict__", None)
        namespace.pop("__weakref__", None)
        namespace.update(
            _struct_fields_=tuple(names),
            _struct_types_=types,
            _struct_defaults_=defaults,
            _struct_frozen_=frozen,
            __match_args__=tuple(names),
            __dataclass_fields__=_DataclassFields(),
        )
        # as dataclasses: methods the class defines itself stay; an explicit __hash__ too
        explicit_hash = "__hash__" in cls.__dict__ and not (
            cls.__dict__["__hash__"] is None and "__eq__" in cls.__dict__
        )
        if not explicit_hash:
            namespace["__hash__"] = _hash if frozen else None
        namespace.setdefault("__repr__", _repr)
        namespace.setdefault("__eq__", _compare(_eq))
        namespace["__qualname__"] = cls.__qualname__
        if order:
            namespace.update(
                __lt__=_compare(_lt), __le__=_compare(_le), __gt__=_compare(_gt), __ge__=_compare(_ge)
            )
        if frozen:
            namespace.update(__setattr__=_frozen_setattr, __delattr__=_frozen_delattr)
        if slots:
            inherited = {s for base in cls.__mro__[1:] for s in base.__dict__.get("__slots__", ())}
            namespace["__slots__"] = tuple(n for n in names if n not in inherited)
            if frozen:
                namespace.update(__getstate__=_getstate, __setstate__=_setstate)
        else:
            for name in names:
                default = defaults[name]
                if default is not _MISSING and not isinstance(default, _Factory):
                    namespace[name] = default
        namespace.update(descriptors)
        built = type(cls)(cls.__name__, cls.__bases__, namespace)
        setters = []
        for name in names:
            if frozen and slots:
                slot = next(k.__dict__[name] for k in built.__mro__ if name in k.__dict__)
                scope[f"_s_{name}"] = slot.__set__
                setters.append(slot.__set__)
            elif frozen:
                setters.append(_object_setter(name))
            else:
                setters.append(_plain_setter(name))
        built._struct_key_ = staticmethod(_key_function(names))
        built.__init__ = _lazy_init(
            built, cls.__qualname__, source, scope, names, defaults, setters, post_init
        )
        return built

    def _object_setter(name):
        return lambda self, value: object.__setattr__(self, name, value)

    def _plain_setter(name):
        return lambda self, value: setattr(self, name, value)

    def _key_function(names):
        """The fields as a tuple (what eq, hash and order compare), by a C attrgetter."""
        from operator import attrgetter

        if not names:
            return lambda self: ()
        get = attrgetter(*names)
        if len(names) == 1:
            return lambda self: (get(self),)
        return get

    #: calls before a class gets its own compiled ``__init__``: compiling costs about as
    #: much as a few hundred generic calls, and most classes are made a few times per run
    _COMPILE_AFTER = 64

    def _lazy_init(built, qualname, source, scope, names, defaults, setters, post_init):
        """A generic ``__init__`` that binds arguments itself; after ``_COMPILE_AFTER``
        calls -- or at once for a call it cannot bind, so errors are Python's own -- it
        compiles the class's exact ``__init__`` (the signature dataclasses would give)
        and puts it in its place."""
        count = 0
        plan = [(name, defaults[name], setter) for name, setter in zip(names, setters, strict=True)]
        known = frozenset(names)

        def compiled():
            exec(source, scope)
            init = scope["__init__"]
            init.__qualname__ = f"{qualname}.__init__"
            built.__init__ = init
            return init

        def __init__(self, *args, **kwargs):
            nonlocal count
            count += 1
            if count > _COMPILE_AFTER or len(args) > len(names) or not known.issuperset(kwargs):
                return compiled()(self, *args, **kwargs)
            for i, (name, default, setter) in enumerate(plan):
                if i < len(args):
                    if name in kwargs:
                        return compiled()(self, *args, **kwargs)
                    value = args[i]
                elif name in kwargs:
                    value = kwargs[name]
                elif default is _MISSING:
                    return compiled()(self, *args, **kwargs)
                elif isinstance(default, _Factory):
                    value = default.factory()
                else:
                    value = default
                setter(self, value)
            if post_init:
                self.__post_init__()
            return None

        __init__.__qualname__ = f"{qualname}.__init__"
        return __init__
