"""Sphinx configuration of the reference site: API pages from the docstrings (autodoc),
the Python guide from the README and the contract in ``spec/`` (MyST Markdown).

Built with warnings as errors and nitpicky references (``scripts/docs``), so a docstring
reference to a name that is not documented fails the build.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import sys
from typing import Any, TypeVar

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "core"))

project = "containers-storage for Python"
copyright = "the containers-storage for Python authors"
release = version = importlib.import_module("containers_storage").__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"
html_theme = "alabaster"
html_title = project
myst_heading_anchors = 4

# -- autodoc: signatures keep the code's own annotations; type names link to their pages
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_class_signature = "separated"
autodoc_preserve_defaults = True
autodoc_type_aliases = {"IDMaps": "containers_storage.idtools.IDMaps"}
autodoc_default_options = {"undoc-members": True}
add_module_names = False
python_use_unqualified_type_names = True
nitpicky = True

# -- the standard library's inventory ships with Debian's python3.11-doc; without it,
# names of the standard library are plain text (and not errors)
_PY_INV = "/usr/share/doc/python3.11/html/objects.inv"
intersphinx_mapping = {"python": ("https://docs.python.org/3.11", _PY_INV)} if os.path.exists(_PY_INV) else {}

#: what the standard library and third-party packages provide: a reference to one of
#: these that no inventory resolves is plain text. Any other unresolved reference -- a
#: misspelt or undocumented name of ours -- fails the build.
_EXTERNAL_MODULES = [
    "builtins", "typing", "collections", "os", "io", "abc", "enum", "pathlib", "threading",
    "subprocess", "tarfile", "types", "contextlib", "dataclasses", "importlib", "concurrent",
    "datetime", "hashlib", "socket", "http", "urllib", "re", "zlib", "gzip", "bz2", "lzma",
    "ctypes", "logging", "pickle", "copy", "stat", "errno", "signal", "shutil", "tempfile", "json",
    "multiprocessing", "zstandard", "pluggy", "pytest", "_pytest", "filelock", "yaml",
]
nitpick_ignore_regex = [
    ("py:.*", rf"({'|'.join(map(re.escape, _EXTERNAL_MODULES))})(\..+)?"),
    ("py:.*", r"int|str|bytes|bytearray|bool|float|object|type|None|list|dict|tuple|set|frozenset"),
    ("py:.*", r"memoryview|Ellipsis|ellipsis|NotImplemented"),
    ("py:.*", r"(Base|OS|Value|Lookup|Key|Permission|FileNotFound|Runtime|Type|Attribute)?(Error|Exception)"),
    ("py:.*", r"IO|BinaryIO|TextIO|Any|Callable|Iterator|Iterable|Sequence|Mapping|MutableMapping"),
    ("py:.*", r"Generator|ClassVar|Protocol|Generic|Self|Literal|Optional|Union|TracebackType"),
    ("py:.*", r"PathLike|IntEnum|Enum|ABC|RawIOBase|BufferedIOBase|ExitStack|Collection|Pattern"),
    # a type variable defined for the type checker only (``T``, ``E``): no class of ours
    ("py:class", r"[A-Z]"),
]

# Names documented where users import them (containers_storage.store.Store, the
# imageio functions) may be defined in submodules, and signatures name the defining
# module. ``_aliases`` maps each defining path to the documented one.
_FACADES = ("containers_storage.store", "containers_storage.imageio")
_aliases: dict[str, str] = {
    # StoreOptions' path fields (a descriptor): set from a str or os.PathLike, read as str
    "_PathField": "containers_storage.store.options.StrPath",
}


def _build_aliases() -> None:
    for facade in _FACADES:
        module = importlib.import_module(facade)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            home = getattr(obj, "__module__", facade)
            if home != facade:
                _aliases[f"{home}.{getattr(obj, '__qualname__', name)}"] = f"{facade}.{name}"
            # the parts a class is put together from (Store's mixins) stand for the class
            for base in getattr(obj, "__mro__", ())[1:]:
                if base.__module__.startswith(facade + "."):
                    _aliases[f"{base.__module__}.{base.__qualname__}"] = f"{facade}.{name}"
                    _aliases[base.__qualname__] = f"{facade}.{name}"


def _missing_reference(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Second chances for a Python reference: a name documented where users import it,
    a short name (``DuplicateDriver``) that exactly one documented object has, a type
    variable (plain text). Anything else stays unresolved, and fails the build."""
    if node.get("refdomain") != "py":
        return None
    if node.get("refdoc") == "internals":
        return contnode  # internal modules' docstrings name their own internals: plain text
    domain = env.get_domain("py")
    target = node.get("reftarget", "").lstrip(".~")

    def resolve(new_target: str) -> Any:
        return domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], new_target, node, contnode
        )

    for real, documented in _aliases.items():
        if target == real or target.startswith(real + "."):
            return resolve(documented + target[len(real):])
    module = node.get("py:module") or ""
    if _is_type_variable(target) or (module and _is_type_variable(f"{module}.{target}")):
        return contnode
    if not target.startswith("containers_storage."):
        found = [name for name in domain.objects if name.endswith("." + target)]
        if len(found) == 1:
            return resolve(found[0])
    return None


def _is_type_variable(target: str) -> bool:
    module, _, name = target.rpartition(".")
    try:
        return isinstance(getattr(importlib.import_module(module), name), TypeVar)
    except (ImportError, AttributeError, ValueError):
        return False


def _signature(
    app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None, annotation: str | None
) -> tuple[str | None, str | None]:
    """Dataclass fields with a ``default_factory`` show ``<factory>``, which the signature
    parser cannot read; ``...`` says the same and parses."""
    if signature:
        signature = signature.replace("=<factory>", "=...").replace("= <factory>", "= ...")
    return signature, annotation


def _docstring(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """A dataclass without a docstring gets its generated ``Name(field: ...)`` text as
    one; the signature already says that."""
    generated = lines and lines[0].startswith(f"{getattr(obj, '__name__', '')}(")
    if what == "class" and generated and getattr(obj, "__dataclass_fields__", None) is not None:
        lines.clear()


class InternalModules(SphinxDirective):
    """Every module of the package that no API page documents, with its docstring only."""

    def run(self) -> list[nodes.Node]:
        documented: set[str] = set()
        api = os.path.join(HERE, "api")
        for page in os.listdir(api):
            with open(os.path.join(api, page)) as f:
                documented.update(re.findall(r"^\.\. automodule:: (\S+)$", f.read(), re.M))
        package = importlib.import_module("containers_storage")
        names = sorted(info.name for info in pkgutil.walk_packages(package.__path__, "containers_storage."))
        lines = StringList()
        for name in names:
            if name not in documented and not name.endswith(".__main__"):
                for line in (f".. automodule:: {name}", "   :no-members:", ""):
                    lines.append(line, "<internal-modules>")
        container = nodes.section()
        container.document = self.state.document
        self.state.nested_parse(lines, self.content_offset, container, match_titles=False)
        return list(container.children)


def setup(app: Any) -> None:
    _build_aliases()
    app.connect("missing-reference", _missing_reference)
    app.connect("autodoc-process-signature", _signature)
    app.connect("autodoc-process-docstring", _docstring)
    app.add_directive("internal-modules", InternalModules)
