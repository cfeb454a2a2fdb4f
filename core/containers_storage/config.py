"""Store options from ``storage.conf``, the environment and built-in defaults (config.md).

Only :func:`load_store_options` and :func:`complete_store_options` read files;
:class:`StoreOptions` is plain data, so library users can also build one by hand
(``StoreOptions(graph_root=..., run_root=...)``). Every file is type-checked as it is read:
an error is one line naming the file, the line and the key.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping

from .errors import ConfigError
from .idtools import IDMap, IDMaps
from .structs import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SYSTEM_CONFIG = "/usr/share/containers/storage.conf"
OVERRIDE_CONFIG = "/etc/containers/storage.conf"
ROOT_RUN_ROOT = "/run/containers/storage"
ROOT_GRAPH_ROOT = "/var/lib/containers/storage"
DEFAULT_PRIORITY = ("overlay", "aufs", "btrfs", "zfs", "vfs")
_ROOTLESS_DRIVERS = ("btrfs", "overlay", "overlay2", "vfs")


class _PathField:
    """A path option: set from a ``str`` or :class:`os.PathLike`, read as a ``str``
    (a dataclass field of this type takes either in ``__init__``, as mypy agrees)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr = "_" + name

    def __get__(self, obj: object | None, owner: object = None) -> str:
        # on the class, the field's default (how dataclasses finds it)
        return "" if obj is None else str(getattr(obj, self._attr, ""))

    def __set__(self, obj: object, value: str | os.PathLike[str]) -> None:
        if not isinstance(value, str | os.PathLike) or not isinstance(path := os.fspath(value), str):
            raise TypeError(f"{self._attr[1:]} must be a str or os.PathLike path, not {type(value).__name__}")
        setattr(obj, self._attr, path)


@dataclass
class StoreOptions:
    """Everything needed to open a store (upstream's types.StoreOptions); the roots may
    be given as ``str`` or :class:`os.PathLike` (they read back as ``str``)."""

    graph_root: _PathField = _PathField()
    run_root: _PathField = _PathField()
    #: split image store root (on-disk.md §9.2)
    image_store: _PathField = _PathField()
    rootless_storage_path: _PathField = _PathField()
    #: "" means probe (config.md §5)
    driver_name: str = ""
    driver_priority: list[str] = field(default_factory=list)
    driver_options: list[str] = field(default_factory=list)
    uid_map: IDMaps = ()
    gid_map: IDMaps = ()
    root_auto_userns_user: str = ""
    auto_userns_min_size: int = 1024
    auto_userns_max_size: int = 65536
    transient_store: bool = False
    pull_options: dict[str, str] = field(default_factory=dict)
    disable_volatile: bool = False
    #: which lock provider to use (see hookspecs.cstorage_lock): "posix" or "portable"
    lock_kind: str = "posix"


# --- environment facts -----------------------------------------------------------------
def rootless_uid(env: Mapping[str, str]) -> int:
    value = env.get("_CONTAINERS_ROOTLESS_UID")
    if value:
        try:
            return int(value)
        except ValueError:
            pass
    return os.geteuid()


def is_rootless(env: Mapping[str, str]) -> bool:
    """cli.md §2: not root, or already in a configured user namespace."""
    return os.geteuid() != 0 or bool(env.get("_CONTAINERS_USERNS_CONFIGURED"))


def home_dir(env: Mapping[str, str], uid: int) -> str:
    home = env.get("HOME")
    if not home:
        try:
            home = pwd.getpwuid(uid).pw_dir
        except KeyError:
            raise ConfigError(
                message="neither $HOME nor the password database gives a home directory"
            ) from None
    return home


def _resolve(path: str) -> str:
    return os.path.realpath(path) if os.path.exists(path) else os.path.normpath(path)


_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")


def _name_end(text: str, start: int) -> int:
    """End of the variable name ``[A-Za-z_][A-Za-z0-9_]*`` at ``start`` (``start``: none)."""
    if start >= len(text) or text[start] not in _NAME_START:
        return start
    end = start + 1
    while end < len(text) and text[end] in _NAME_CHARS:
        end += 1
    return end


def _expand_vars(path: str, env: Mapping[str, str]) -> str:
    """``$VAR`` and ``${VAR}`` replaced by their values ("" when unset); a ``$`` before
    anything else stays (a scanner: ``re`` costs more to import than this whole run)."""
    out: list[str] = []
    i = 0
    while (j := path.find("$", i)) >= 0:
        out.append(path[i:j])
        braced = path.startswith("{", j + 1)
        if braced and (end := _name_end(path, j + 2)) > j + 2 and path.startswith("}", end):
            out.append(env.get(path[j + 2 : end], ""))
            i = end + 1
        elif (end := _name_end(path, j + 1)) > j + 1:
            out.append(env.get(path[j + 1 : end], ""))
            i = end
        else:
            out.append("$")
            i = j + 1
    out.append(path[i:])
    return "".join(out)


def expand_path(path: str, env: Mapping[str, str], uid: int) -> str:
    """config.md §2.3: ``$UID``, then ``$VAR``/``${VAR}``, then resolve symlinks."""
    if not path:
        return path
    path = path.replace("$UID", str(uid))
    path = _expand_vars(path, env)
    return _resolve(path)


def rootless_runtime_dir(env: Mapping[str, str], uid: int) -> str:
    """config.md §3: where a rootless run root lives."""
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg:
        return _resolve(xdg)
    try:
        with open("/proc/1/comm", "rb") as f:
            systemd = f.read() == b"systemd"
    except OSError:
        systemd = True
    if systemd:
        d = f"/run/user/{uid}"
        if _owned_private(d, uid):
            return d
    tmp = os.path.join(env.get("TMPDIR") or "/tmp", f"containers-user-{uid}")
    try:
        os.mkdir(tmp, 0o700)
    except FileExistsError:
        pass
    except OSError:
        tmp = ""
    if tmp and _owned_private(tmp, uid):
        return tmp
    return os.path.join(_resolve(home_dir(env, uid)), "rundir")


def _owned_private(path: str, uid: int) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == uid and st.st_mode & 0o700 == 0o700 and st.st_mode & 0o066 == 0


# --- parsing ---------------------------------------------------------------------------
class _ConfigFile:
    """The raw ``[storage]`` data of one file, its types already checked."""

    def __init__(self, storage: dict[str, Any] | None = None, source: _Source | None = None) -> None:
        self.storage = storage if storage is not None else {}
        self.source = source

    @property
    def options(self) -> dict[str, Any]:
        opts = self.storage.get("options", {})
        return opts if isinstance(opts, dict) else {}

    def table(self, name: str) -> dict[str, Any]:
        t = self.options.get(name, {})
        return t if isinstance(t, dict) else {}


#: the largest storage.conf read: a bigger file (or an endless stream) is not a config
MAX_CONFIG_BYTES = 4 << 20

# What each key must hold (upstream's TomlConfig field types, config.md §2).
_STRING, _BOOL, _STRINGS, _UINT32, _STRING_TABLE = (
    "a string", "a boolean", "an array of strings", "an unsigned 32-bit integer", "a table of strings",
)
_STORAGE_KEYS = {
    "driver": _STRING, "driver_priority": _STRINGS, "runroot": _STRING, "imagestore": _STRING,
    "graphroot": _STRING, "rootless_storage_path": _STRING, "transient_store": _BOOL,
}
_OPTION_KEYS = {
    "additionalimagestores": _STRINGS, "imagestore": _STRING, "additionallayerstores": _STRINGS,
    "size": _STRING, "remap-uids": _STRING, "remap-gids": _STRING, "ignore_chown_errors": _STRING,
    "force_mask": _UINT32, "remap-user": _STRING, "remap-group": _STRING,
    "root-auto-userns-user": _STRING, "auto-userns-min-size": _UINT32,
    "auto-userns-max-size": _UINT32, "skip_mount_home": _STRING, "mount_program": _STRING,
    "mountopt": _STRING, "pull_options": _STRING_TABLE, "disable-volatile": _BOOL,
}
#: upstream's per-driver tables and the keys it turns into driver options; any other
#: ``[storage.options.NAME]`` table belongs to a third-party driver
_DRIVER_TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "aufs": ("mountopt",),
    "btrfs": ("min_space", "size"),
    "overlay": ("ignore_chown_errors", "mountopt", "mount_program", "size", "inodes",
                "skip_mount_home", "force_mask"),
    "thinpool": ("autoextend_percent", "autoextend_threshold", "basesize", "blocksize",
                 "directlvm_device", "directlvm_device_force", "fs", "log_level", "metadatasize",
                 "min_free_space", "mkfsarg", "mountopt", "size", "use_deferred_deletion",
                 "use_deferred_removal", "xfs_nospace_max_retries"),
    "vfs": ("ignore_chown_errors",),
    "zfs": ("mountopt", "fsname", "size"),
}
_INT64 = 1 << 63
#: (file, unknown keys) already warned about
_WARNED: set[tuple[str, tuple[str, ...]]] = set()


def _toml_type(value: object) -> str:
    """A value's TOML type, as the error messages name it."""
    if isinstance(value, bool):
        return "a boolean"
    for kind, name in ((int, "an integer"), (float, "a float"), (str, "a string"),
                       (list, "an array"), (dict, "a table")):
        if isinstance(value, kind):
            return name
    return "a date-time"


def _wrong(value: object, kind: str) -> str | None:
    """Why ``value`` is not ``kind`` (None when it is); string tables are checked per key."""
    if (kind == _STRING and isinstance(value, str)) or (kind == _BOOL and isinstance(value, bool)):
        return None
    if kind == _UINT32 and isinstance(value, int) and not isinstance(value, bool):
        return None if 0 <= value < 1 << 32 else f"{value} is out of range"
    if kind == _STRINGS and isinstance(value, list):
        bad = next((v for v in value if not isinstance(v, str)), None)
        return None if bad is None else f"not an array holding {_toml_type(bad)}"
    if kind == _STRING_TABLE and isinstance(value, dict):
        return None
    return f"not {_toml_type(value)}"


class _Source:
    """One file's path and text: where errors point (``<file>, line <n>: ...``)."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self._keys: list[tuple[int, str]] | None = None

    def key_lines(self) -> list[tuple[int, str]]:
        """(line, dotted key) of each table header and ``key =`` line; a best-effort scan
        for messages, not a parser."""
        if self._keys is None:
            self._keys = []
            table = ""
            for number, raw in enumerate(self.text.split("\n"), 1):
                line = raw.strip()
                if line.startswith("["):
                    table = _dotted(line.strip("[").split("]", 1)[0])
                    self._keys.append((number, table))
                elif line and not line.startswith("#") and "=" in line:
                    key = _dotted(line.split("=", 1)[0])
                    self._keys.append((number, f"{table}.{key}" if table else key))
        return self._keys

    def where(self, key: str) -> str:
        """``<file>, line <n>`` of ``key`` (or of its closest parent found)."""
        lines = self.key_lines()
        while key:
            number = next((n for n, k in lines if k == key), 0)
            if number:
                return f"{self.path}, line {number}"
            key = key.rpartition(".")[0]
        return self.path

    def error(self, key: str, text: str) -> ConfigError:
        return ConfigError(message=f"{self.where(key)}: {text}")

    def syntax_error(self, text: str) -> ConfigError:
        """tomllib's ``<what> (at line L, column C)`` as ``<file>, line L, column C (key
        "k"): not valid TOML: <what>``, the key being the last one before the error."""
        what, sep, at = text.rpartition(" (at ")
        if not sep:
            what, at = text, ""
        at = at.rstrip(")")
        if at.startswith("line "):
            line_text, _, column = at[len("line "):].partition(", column ")
            line = int(line_text) if line_text.isdigit() else 0
            place = f"line {line}, column {column}"
        else:  # "end of document"
            line = self.text.count("\n") + 1
            place = f"line {line}"
        last = [k for n, k in self.key_lines() if n <= line]
        after = f' (key "{last[-1]}")' if last else ""
        what = _FRIENDLIER.get(what, what)
        return ConfigError(message=f"{self.path}, {place}{after}: not valid TOML: {what}")


#: tomllib's wording for the two most common mistakes, said plainly
_FRIENDLIER = {
    "Illegal character '\\n'": "unterminated string (strings cannot contain newlines)",
    "Cannot overwrite a value": "the key is already defined",
}


def _dotted(text: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in text.split("."))


def _read_source(path: str) -> _Source:
    """The file's text; errors name the file as upstream's do (``stat``/``read``/``open``)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(message=f"stat {path}: no such file or directory") from None
    except IsADirectoryError:
        raise ConfigError(message=f"read {path}: is a directory") from None
    except OSError as e:
        raise ConfigError(message=f"open {path}: {(e.strerror or str(e)).lower()}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(message=f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB, not a storage.conf")
    try:
        return _Source(path, data.decode("utf-8"))
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(
            message=f"{path}, line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}); "
            "TOML files must be UTF-8"
        ) from None


def _read_config(path: str) -> _ConfigFile:
    """Parse and type-check one file: a wrong type is an error naming the file, the line
    and the key, never a value turned into a path (config.md §2)."""
    from .simpletoml import loads as plain_toml

    source = _read_source(path)
    data = plain_toml(source.text)  # the usual file, without importing tomllib
    if data is None:
        import tomllib

        try:
            data = tomllib.loads(source.text)
        except tomllib.TOMLDecodeError as e:
            raise source.syntax_error(str(e)) from None
        except RecursionError:
            raise ConfigError(message=f"{path}: not valid TOML: nested too deeply") from None
    unknown: list[str] = []
    _check_integers(source, data, "")
    storage = data.get("storage", {})
    if not isinstance(storage, dict):
        raise source.error("storage", f"storage must be a table, not {_toml_type(storage)}")
    unknown += [k for k in data if k != "storage"]
    for key, value in storage.items():
        if key == "options":
            if not isinstance(value, dict):
                why = f"storage.options must be a table, not {_toml_type(value)}"
                raise source.error("storage.options", why)
            unknown += _check_options(source, value)
        elif key in _STORAGE_KEYS:
            _check(source, f"storage.{key}", value, _STORAGE_KEYS[key])
        else:
            unknown.append(f"storage.{key}")
    if unknown and (path, tuple(unknown)) not in _WARNED:  # once, as upstream reads once
        import logging

        _WARNED.add((path, tuple(unknown)))
        logging.getLogger(__name__).warning(
            "Failed to decode the keys [%s] from %s", " ".join(f'"{k}"' for k in unknown), f'"{path}"'
        )
    return _ConfigFile(storage, source)


def _check(source: _Source, key: str, value: object, kind: str) -> None:
    why = _wrong(value, kind)
    if why:
        raise source.error(key, f"{key} must be {kind}, {why}")
    if kind == _STRING_TABLE:
        assert isinstance(value, dict)
        for k, v in value.items():
            _check(source, f"{key}.{k}", v, _STRING)


def _check_options(source: _Source, options: dict[str, Any]) -> list[str]:
    """Check ``[storage.options]``; return the unknown keys. Every sub-table is a driver's:
    its values must be strings (they become ``<driver>.<key>=<value>`` options)."""
    unknown = []
    for key, value in options.items():
        name = f"storage.options.{key}"
        if key in _OPTION_KEYS:
            _check(source, name, value, _OPTION_KEYS[key])
        elif key in _DRIVER_TABLE_KEYS or isinstance(value, dict):
            _check(source, name, value, _STRING_TABLE)
        else:
            unknown.append(name)
    return unknown


def _check_integers(source: _Source, value: object, key: str) -> None:
    """TOML integers are 64-bit; tomllib reads any size."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_integers(source, v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for v in value:
            _check_integers(source, v, key)
    elif isinstance(value, int) and not -_INT64 <= value < _INT64:
        raise source.error(key, f"{key}: {value} is out of range for a TOML integer (64 bits)")


def parse_id_map_setting(value: str, setting: str) -> IDMaps:
    """``remap-uids``-style text; bad format uses upstream's error wording."""
    malformed = ConfigError(
        message=f"initializing ID mappings: {setting} setting is malformed "
        f'expected ["uint32:uint32:uint32"]: ["{value}"]'
    )
    fields = value.split(":")
    if len(fields) % 3:
        raise malformed
    try:
        nums = [parse_uint32(x) for x in fields]
    except ValueError:
        raise malformed from None
    return tuple(IDMap(nums[i], nums[i + 1], nums[i + 2]) for i in range(0, len(nums), 3))


def parse_uint32(text: str) -> int:
    """Go's ``strconv.ParseUint(text, 10, 32)`` (ASCII digits, below 2**32): what upstream
    accepts for an ID or an ID-map field. ValueError with Go's wording."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    number = int(text)
    if number >= 1 << 32:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return number


def subordinate_ids(user: str, path: str) -> IDMaps:
    """Ranges of ``user`` (name or numeric UID) in /etc/subuid or /etc/subgid, mapped to
    consecutive container IDs from 0."""
    names = {user}
    try:
        names.add(str(pwd.getpwnam(user).pw_uid))
    except KeyError:
        pass
    ranges: list[tuple[int, int]] = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split(":")
                if len(parts) == 3 and (parts[0] in names or user == "ALL"):
                    ranges.append((int(parts[1]), int(parts[2])))
    except OSError:
        pass
    kind = "subuid" if path.endswith("subuid") else "subgid"
    if not ranges:
        raise ConfigError(message=f'no {kind} ranges found for user "{user}" in {path}')
    out, next_id = [], 0
    for start, count in sorted(ranges):
        out.append(IDMap(next_id, start, count))
        next_id += count
    return tuple(out)


def _octal(mode: int) -> str:
    return format(mode, "o")


def _go_file_mode(mode: int) -> str:
    """A Go os.FileMode string (``-rwxr-xr-x``): what upstream passes for a generic
    force_mask, and what the overlay driver then rejects (config.md §2.4)."""
    bits = "rwxrwxrwx"
    return "-" + "".join(c if mode & (1 << (8 - i)) else "-" for i, c in enumerate(bits))


def driver_options_from_config(cfg: _ConfigFile, driver: str) -> list[str]:
    """config.md §2.4: the exact driver-option list a config file produces, then every
    other key of the driver's own ``[storage.options.<driver>]`` table."""
    n = "overlay" if driver == "overlay2" else driver
    gen = cfg.options
    out = [f"{driver}.imagestore={p}" for p in gen.get("additionalimagestores", []) or []]
    out += [f"{driver}.additionallayerstore={p}" for p in gen.get("additionallayerstores", []) or []]
    for key in ("size", "mount_program", "skip_mount_home", "ignore_chown_errors"):
        if gen.get(key):
            out.append(f"{driver}.{key}={gen[key]}")
    if gen.get("force_mask"):
        out.append(f"{driver}.force_mask={_octal(int(gen['force_mask']))}")
    if gen.get("mountopt"):
        out.append(f"{driver}.mountopt={gen['mountopt']}")

    def pick(table: dict[str, Any], key: str, generic: bool = True) -> Any:
        return table.get(key) or (gen.get(key) if generic else None)

    if n == "overlay":
        t = cfg.table("overlay")
        fm = t.get("force_mask") or (_go_file_mode(int(gen["force_mask"])) if gen.get("force_mask") else "")
        for key, value in (
            ("ignore_chown_errors", pick(t, "ignore_chown_errors")),
            ("mount_program", pick(t, "mount_program")),
            ("mountopt", pick(t, "mountopt")),
            ("size", pick(t, "size")),
            ("inodes", t.get("inodes")),
            ("skip_mount_home", pick(t, "skip_mount_home")),
            ("force_mask", fm),
        ):
            if value:
                out.append(f"{n}.{key}={value}")
    elif n == "vfs":
        v = pick(cfg.table("vfs"), "ignore_chown_errors")
        if v:
            out.append(f"vfs.ignore_chown_errors={v}")
    elif n == "btrfs":
        t = cfg.table("btrfs")
        if t.get("min_space"):
            out.append(f"btrfs.min_space={t['min_space']}")
        elif pick(t, "size"):
            out.append(f"btrfs.size={pick(t, 'size')}")
    elif n == "zfs":
        t = cfg.table("zfs")
        for key in ("fsname", "mountopt", "size"):
            value = t.get(key) if key == "fsname" else pick(t, key)
            if value:
                out.append(f"zfs.{key}={value}")
    # Keys upstream does not know go to the driver, which refuses those it does not know
    # either (upstream ignores them); this is how a third-party driver gets its table.
    known = _DRIVER_TABLE_KEYS.get(n, ())
    out += [f"{n}.{key}={value}" for key, value in cfg.table(n).items() if n and key not in known]
    return out


def options_from_file(path: str, env: Mapping[str, str], uid: int) -> StoreOptions:
    """Parse one storage.conf into options (no defaults filled in)."""
    cfg = _read_config(path)
    st = cfg.storage
    driver = env.get("STORAGE_DRIVER") or str(st.get("driver", ""))
    opts = StoreOptions(
        graph_root=str(st.get("graphroot", "")),
        run_root=str(st.get("runroot", "")),
        image_store=str(st.get("imagestore", "")),
        rootless_storage_path=str(st.get("rootless_storage_path", "")),
        driver_name="overlay" if driver == "overlay2" else driver,
        driver_priority=[str(x) for x in st.get("driver_priority", []) or []],
        transient_store=bool(st.get("transient_store", False)),
    )
    opts.driver_options = driver_options_from_config(cfg, driver)
    if "STORAGE_OPTS" in env:
        opts.driver_options = [o for o in env["STORAGE_OPTS"].split(",") if o]
    gen = cfg.options
    source = cfg.source or _Source(path, "")
    for key, field_name in (("remap-uids", "uid_map"), ("remap-gids", "gid_map")):
        if gen.get(key):
            try:
                setattr(opts, field_name, parse_id_map_setting(gen[key], key))
            except ConfigError as e:
                raise source.error(f"storage.options.{key}", str(e)) from None
    user, group = gen.get("remap-user"), gen.get("remap-group")
    if user or group:
        try:
            opts.uid_map = subordinate_ids(str(user or group), "/etc/subuid")
            opts.gid_map = subordinate_ids(str(group or user), "/etc/subgid")
        except ConfigError as e:
            raise source.error("storage.options.remap-user" if user else "storage.options.remap-group",
                               str(e)) from None
    opts.root_auto_userns_user = str(gen.get("root-auto-userns-user", ""))
    # zero means "not set", as upstream's omitempty fields
    opts.auto_userns_min_size = int(gen.get("auto-userns-min-size") or 1024)
    opts.auto_userns_max_size = int(gen.get("auto-userns-max-size") or 65536)
    pull = gen.get("pull_options", {})
    opts.pull_options = {str(k): str(v) for k, v in pull.items()} if isinstance(pull, dict) else {}
    opts.disable_volatile = bool(gen.get("disable-volatile", False))
    return opts


# --- the two stages -------------------------------------------------------------------
def system_options(env: Mapping[str, str]) -> tuple[StoreOptions, str]:
    """Stage A: the system configuration and the path it came from ("" for built-ins)."""
    uid = rootless_uid(env)
    explicit = _default_config_path or env.get("CONTAINERS_STORAGE_CONF")
    if explicit is not None:
        opts, path = options_from_file(explicit, env, uid), explicit
    else:
        override = OVERRIDE_CONFIG
        xdg = env.get("XDG_CONFIG_HOME")
        if xdg and os.path.exists(os.path.join(xdg, "containers", "storage.conf")):
            override = os.path.join(xdg, "containers", "storage.conf")
        if os.path.exists(override):
            opts, path = options_from_file(override, env, uid), override
        elif os.path.exists(SYSTEM_CONFIG):
            opts, path = options_from_file(SYSTEM_CONFIG, env, uid), SYSTEM_CONFIG
        else:
            opts, path = StoreOptions(), ""
    opts.run_root = opts.run_root or ROOT_RUN_ROOT
    opts.graph_root = opts.graph_root or ROOT_GRAPH_ROOT
    return opts, path


def _rootless_defaults(system: StoreOptions, env: Mapping[str, str], uid: int) -> StoreOptions:
    """config.md §4: what a rootless user gets from the system options."""
    home = _resolve(home_dir(env, uid))
    graph = expand_path(system.rootless_storage_path, env, uid) if system.rootless_storage_path else ""
    if not graph:
        data = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
        graph = os.path.join(data, "containers", "storage")
    run = os.path.join(rootless_runtime_dir(env, uid), "containers")
    opts = StoreOptions(graph_root=graph, run_root=run, pull_options=dict(system.pull_options))
    driver = system.driver_name if system.driver_name in _ROOTLESS_DRIVERS else ""
    driver = env.get("STORAGE_DRIVER") or driver
    opts.driver_name = "overlay" if driver == "overlay2" else driver
    if opts.driver_name == "overlay":
        chown = [o for o in system.driver_options if "ignore_chown_errors" in o]
        opts.driver_options = chown[:1]
    if not opts.driver_name:
        if system.driver_priority:
            opts.driver_priority = list(system.driver_priority)
        else:
            opts.driver_name = _guess_rootless_driver(graph)
    if env.get("STORAGE_OPTS"):
        opts.driver_options += [o for o in env["STORAGE_OPTS"].split(",") if o]
    return opts


def _guess_rootless_driver(graph_root: str) -> str:
    try:
        for entry in sorted(os.listdir(graph_root)):
            if entry.endswith("-images"):
                return entry[: -len("-images")]
    except OSError:
        pass
    import shutil

    if shutil.which("fuse-overlayfs"):
        return "overlay"
    release = os.uname().release.split(".")
    try:
        minor_text = release[1]
        digits = len(minor_text) - len(minor_text.lstrip("0123456789"))
        major, minor = int(release[0]), int(minor_text[:digits])
    except (IndexError, ValueError):
        return "vfs"
    return "overlay" if (major, minor) >= (5, 13) else "vfs"


def load_store_options(env: Mapping[str, str] | None = None) -> StoreOptions:
    """Stage A then stage B of config.md §1: the options a store opens with by default."""
    env = os.environ if env is None else env
    uid = rootless_uid(env)
    rootless = is_rootless(env)
    system, system_path = system_options(env)
    if _default_config_path is not None:
        user_path = ""  # set_default_config_file_path's file is the only one read
    elif "CONTAINERS_STORAGE_CONF" in env:
        user_path = env["CONTAINERS_STORAGE_CONF"]
    elif not rootless:
        user_path = OVERRIDE_CONFIG if os.path.exists(OVERRIDE_CONFIG) else system_path
    else:
        xdg = env.get("XDG_CONFIG_HOME") or os.path.join(home_dir(env, uid), ".config")
        user_path = os.path.join(xdg, "containers", "storage.conf")
    opts = _rootless_defaults(system, env, uid) if rootless else system
    if user_path and os.path.exists(user_path) and (rootless or user_path != system_path):
        # A broken user file is an error (upstream logs it and goes on without the file,
        # silently using other roots than the ones configured).
        opts = options_from_file(user_path, env, uid)
        if rootless:
            fallback = _rootless_defaults(system, env, uid)
            opts.run_root = opts.run_root or fallback.run_root
            if not opts.graph_root:
                opts.graph_root = (
                    expand_path(opts.rootless_storage_path, env, uid)
                    if opts.rootless_storage_path
                    else fallback.graph_root
                )
    return validate(opts, env, uid)


def validate(opts: StoreOptions, env: Mapping[str, str], uid: int) -> StoreOptions:
    """config.md §1 B4: roots must be set; paths expanded; imagestore differs from root."""
    if not opts.run_root:
        raise ConfigError(message="runroot must be set")
    if not opts.graph_root:
        raise ConfigError(message="graphroot must be set")
    opts.run_root = expand_path(opts.run_root, env, uid)
    opts.graph_root = expand_path(opts.graph_root, env, uid)
    opts.rootless_storage_path = expand_path(opts.rootless_storage_path, env, uid)
    if opts.image_store and os.path.normpath(opts.image_store) == opts.graph_root:
        raise ConfigError(
            message=f"imagestore {opts.image_store} must either be not set or be a different than graphroot"
        )
    return opts


def complete_store_options(options: StoreOptions, env: Mapping[str, str] | None = None) -> StoreOptions:
    """The configuration side of upstream's ``GetStore``: the system configuration is
    always read (a broken ``storage.conf`` is an error even when both roots are given);
    options with no root, driver or driver option are replaced by it; a missing root is
    taken from it. Given roots are made absolute.

    Raises :class:`~containers_storage.errors.ConfigError` for a broken configuration and
    :class:`~containers_storage.errors.IncompleteOptions` when only a driver was given.
    """
    from .errors import IncompleteOptions
    from .structs import replace

    system, _ = system_options(os.environ if env is None else env)
    if not (options.graph_root or options.run_root or options.driver_name or options.driver_options):
        return system
    if not (options.graph_root or options.run_root):
        raise IncompleteOptions("no storage runroot or graphroot specified")
    opts = replace(options)
    opts.graph_root = os.path.abspath(opts.graph_root) if opts.graph_root else system.graph_root
    opts.run_root = os.path.abspath(opts.run_root) if opts.run_root else system.run_root
    return opts


# --- the configuration file in use (upstream DefaultConfigFile and friends) ------------
#: set by :func:`set_default_config_file_path`; None: found as config.md §1 says
_default_config_path: str | None = None


def default_config_file(rootless: bool | None = None, env: Mapping[str, str] | None = None) -> str:
    """The storage.conf a store's default options come from (upstream DefaultConfigFile):
    the path given to :func:`set_default_config_file_path`, else ``CONTAINERS_STORAGE_CONF``,
    else for root ``/etc/containers/storage.conf`` when it exists or the system file, and
    for a rootless user ``$XDG_CONFIG_HOME`` (or ``~/.config``)
    ``/containers/storage.conf``. ``rootless`` None decides from the environment."""
    env = os.environ if env is None else env
    if _default_config_path is not None:
        return _default_config_path
    if "CONTAINERS_STORAGE_CONF" in env:
        return env["CONTAINERS_STORAGE_CONF"]
    uid = rootless_uid(env)
    if rootless is None:
        rootless = is_rootless(env) and uid != 0
    if not rootless:
        return OVERRIDE_CONFIG if os.path.exists(OVERRIDE_CONFIG) else SYSTEM_CONFIG
    xdg = env.get("XDG_CONFIG_HOME") or os.path.join(home_dir(env, uid), ".config")
    return os.path.join(xdg, "containers", "storage.conf")


def set_default_config_file_path(path: str | None) -> None:
    """Make ``path`` the only storage.conf :func:`load_store_options` reads, in this
    process (upstream SetDefaultConfigFilePath); None goes back to the usual search.
    The file is read first: a missing or bad one raises :class:`ConfigError` and
    changes nothing."""
    global _default_config_path
    if path is not None:
        options_from_file(path, os.environ, rootless_uid(os.environ))
    _default_config_path = path


def reload_configuration_file(path: str, env: Mapping[str, str] | None = None) -> StoreOptions:
    """The options ``path`` alone gives, environment overrides applied and no defaults
    filled in (upstream ReloadConfigurationFile). A file that does not exist is not an
    error: it gives what an empty file gives."""
    env = os.environ if env is None else env
    uid = rootless_uid(env)
    try:
        return options_from_file(path, env, uid)
    except ConfigError:
        try:
            os.stat(path)
        except FileNotFoundError:
            return options_from_file(os.devnull, env, uid)
        except OSError:
            pass
        raise
