"""A corpus of broken configuration and bad option values, with upstream v1.50.2's answer
to each, shared by the configuration tests and the command-line tests.

Every case is one line: adding one adds its library test and its command-line test.

``BROKEN_FILES``: ``storage.conf`` contents (bytes) that must stop the store from opening,
even when both roots are given, with one line naming the file and ``key``. ``upstream``
is how upstream's message begins after ``error initializing:`` for the same file, or None
where upstream accepts the file (we are stricter: README, compatibility notes).

``DRIVER_OPTIONS``: driver options refused when the driver starts, the error naming
``named``; ``upstream`` as above.

``FLAG_VALUES``: command-line values out of the range upstream's parser takes (or that
upstream cannot read back), refused naming the flag.
"""

from __future__ import annotations

from typing import NamedTuple


class BrokenFile(NamedTuple):
    name: str
    content: bytes
    #: the dotted key our message names ("" when the file as a whole is wrong)
    key: str
    upstream: str | None


class DriverOption(NamedTuple):
    name: str
    driver: str
    #: ``--storage-opt`` values, or None when the option comes from ``config``
    options: tuple[str, ...] | None
    #: storage.conf text selecting the driver and setting the option
    config: str
    named: str
    upstream: str | None


class FlagValue(NamedTuple):
    name: str
    #: the command and its flags; ``{layer}`` is an existing layer's ID, ``{src}`` a file
    argv: tuple[str, ...]
    flag: str
    upstream: str


def _s(text: str) -> bytes:
    return text.encode()


BROKEN_FILES: tuple[BrokenFile, ...] = (
    BrokenFile("syntax-error", _s('[storage]\ndriver = "vfs\n'), "storage.driver",
               'toml: line 2 (last key "storage.driver"): strings cannot contain newlines'),
    BrokenFile("duplicate-key", _s('[storage]\ndriver = "vfs"\ndriver = "vfs"\n'), "storage.driver",
               "toml: line 3 (last key \"storage.driver\"): Key 'storage.driver' has already been defined."),
    BrokenFile("duplicate-table", _s('[storage]\n[storage]\n'), "storage",
               "toml: line 2: Key 'storage' has already been defined."),
    BrokenFile("driver-int", _s("[storage]\ndriver = 5\n"), "storage.driver",
               'toml: line 2 (last key "storage.driver"): incompatible types: TOML value has type int64; '
               "destination has type string"),
    BrokenFile("graphroot-array", _s('[storage]\ngraphroot = ["/a"]\n'), "storage.graphroot",
               'toml: line 2 (last key "storage.graphroot"): incompatible types: TOML value has type '
               "[]interface {}; destination has type string"),
    BrokenFile("runroot-int", _s("[storage]\nrunroot = 5\n"), "storage.runroot",
               'toml: line 2 (last key "storage.runroot"): incompatible types: TOML value has type int64; '
               "destination has type string"),
    BrokenFile("runroot-float", _s("[storage]\nrunroot = 1.5\n"), "storage.runroot",
               'toml: line 2 (last key "storage.runroot"): incompatible types: TOML value has type float64; '
               "destination has type string"),
    BrokenFile("graphroot-date", _s("[storage]\ngraphroot = 1979-05-27\n"), "storage.graphroot",
               'toml: line 2 (last key "storage.graphroot"): incompatible types: TOML value has type '
               "time.Time; destination has type string"),
    BrokenFile("transient-string", _s('[storage]\ntransient_store = "yes"\n'), "storage.transient_store",
               'toml: line 2 (last key "storage.transient_store"): incompatible types: TOML value has type '
               "string; destination has type boolean"),
    BrokenFile("priority-string", _s('[storage]\ndriver_priority = "vfs"\n'), "storage.driver_priority",
               'toml: line 2 (last key "storage.driver_priority"): incompatible types: TOML value has type '
               "string; destination has type slice"),
    BrokenFile("priority-int-item", _s("[storage]\ndriver_priority = [1]\n"), "storage.driver_priority",
               'toml: line 2 (last key "storage.driver_priority"): incompatible types: TOML value has type '
               "int64; destination has type string"),
    BrokenFile("imagestores-string", _s('[storage.options]\nadditionalimagestores = "str"\n'),
               "storage.options.additionalimagestores",
               'toml: line 2 (last key "storage.options.additionalimagestores"): incompatible types: TOML '
               "value has type string; destination has type slice"),
    BrokenFile("storage-int", _s("storage = 5\n"), "storage",
               'toml: line 1 (last key "storage"): type mismatch for struct {'),
    BrokenFile("options-int", _s("[storage]\noptions = 5\n"), "storage.options",
               'toml: line 2 (last key "storage.options"): type mismatch for config.OptionsConfig: expected '
               "table but found int64"),
    BrokenFile("remap-uids-garbage", _s('[storage.options]\nremap-uids = "garbage"\n'), "remap-uids",
               'initializing ID mappings: remap-uids setting is malformed expected ["uint32:uint32:uint32"]: '
               '["garbage"]'),
    BrokenFile("remap-uids-negative", _s('[storage.options]\nremap-uids = "0:-1:10"\n'), "remap-uids",
               'initializing ID mappings: remap-uids setting is malformed expected ["uint32:uint32:uint32"]: '
               '["0:-1:10"]'),
    BrokenFile("remap-uids-too-big", _s('[storage.options]\nremap-uids = "0:0:4294967296"\n'), "remap-uids",
               'initializing ID mappings: remap-uids setting is malformed expected ["uint32:uint32:uint32"]: '
               '["0:0:4294967296"]'),
    BrokenFile("remap-uids-int", _s("[storage.options]\nremap-uids = 5\n"), "storage.options.remap-uids",
               'toml: line 2 (last key "storage.options.remap-uids"): incompatible types: TOML value has '
               "type int64; destination has type string"),
    BrokenFile("remap-gids-garbage", _s('[storage.options]\nremap-gids = "a:b:c"\n'), "remap-gids",
               'initializing ID mappings: remap-gids setting is malformed expected ["uint32:uint32:uint32"]: '
               '["a:b:c"]'),
    BrokenFile("remap-gids-negative", _s('[storage.options]\nremap-gids = "-5:0:10"\n'), "remap-gids",
               'initializing ID mappings: remap-gids setting is malformed expected ["uint32:uint32:uint32"]: '
               '["-5:0:10"]'),
    BrokenFile("uint32-too-big", _s("[storage.options]\nauto-userns-max-size = 99999999999999\n"),
               "storage.options.auto-userns-max-size",
               'toml: line 2 (last key "storage.options.auto-userns-max-size"): 99999999999999 is out of '
               "range for uint32"),
    BrokenFile("uint32-negative", _s("[storage.options]\nauto-userns-min-size = -1\n"),
               "storage.options.auto-userns-min-size",
               'toml: line 2 (last key "storage.options.auto-userns-min-size"): -1 is out of range for '
               "uint32"),
    BrokenFile("int64-too-big", _s("[storage.options]\nforce_mask = 99999999999999999999\n"),
               "storage.options.force_mask",
               'toml: line 2 (last key "storage.options.force_mask"): 99999999999999999999 is out of range '
               "for int64"),
    BrokenFile("int64-unknown-key", _s("[storage]\nbogus = 99999999999999999999999\n"), "storage.bogus",
               'toml: line 2 (last key "storage.bogus"): 99999999999999999999999 is out of range for int64'),
    BrokenFile("force-mask-string", _s('[storage.options]\nforce_mask = "shared"\n'),
               "storage.options.force_mask",
               'toml: line 2 (last key "storage.options.force_mask"): incompatible types: TOML value has '
               "type string; destination has type integer"),
    BrokenFile("size-int", _s("[storage.options]\nsize = 5\n"), "storage.options.size",
               'toml: line 2 (last key "storage.options.size"): incompatible types: TOML value has type '
               "int64; destination has type string"),
    BrokenFile("volatile-string", _s('[storage.options]\ndisable-volatile = "x"\n'),
               "storage.options.disable-volatile",
               'toml: line 2 (last key "storage.options.disable-volatile"): incompatible types: TOML value '
               "has type string; destination has type boolean"),
    BrokenFile("pull-options-int-value", _s("[storage.options]\npull_options = {a = 1}\n"),
               "storage.options.pull_options.a",
               'toml: line 2 (last key "storage.options.pull_options.a"): incompatible types: TOML value '
               "has type int64; destination has type string"),
    BrokenFile("pull-options-int", _s("[storage.options]\npull_options = 5\n"),
               "storage.options.pull_options", None),
    BrokenFile("overlay-table-int", _s("[storage.options.overlay]\nmountopt = 5\n"),
               "storage.options.overlay.mountopt",
               'toml: line 2 (last key "storage.options.overlay.mountopt"): incompatible types: TOML value '
               "has type int64; destination has type string"),
    BrokenFile("vfs-table-int", _s("[storage.options.vfs]\nignore_chown_errors = 5\n"),
               "storage.options.vfs.ignore_chown_errors",
               'toml: line 2 (last key "storage.options.vfs.ignore_chown_errors"): incompatible types: TOML '
               "value has type int64; destination has type string"),
    BrokenFile("third-party-table-int", _s("[storage.options.tiny]\ncolour = 1\n"),
               "storage.options.tiny.colour", None),
    BrokenFile("binary-garbage", b"\xff\xfe\x00garbage\x80\n", "",
               "toml: line 1: files cannot contain NULL bytes; probably using UTF-16; TOML files must be "
               "UTF-8"),
    BrokenFile("nul-byte", b'[storage]\ndriver = "\x00"\n', "storage.driver",
               'toml: line 2 (last key "storage.driver"): TOML files cannot contain control characters: '
               "'0x00'"),
    BrokenFile("invalid-utf8-in-string", b'[storage]\ndriver = "\xff"\n', "",
               'toml: line 2 (last key "storage.driver"): invalid UTF-8 byte: 0xff'),
    BrokenFile("nested-too-deeply", _s("a = " + "[" * 600 + "]" * 600 + "\n"), "", None),
)

DRIVER_OPTIONS: tuple[DriverOption, ...] = (
    DriverOption("vfs-unknown-table-key", "vfs", None, '[storage.options.vfs]\nbogus = "1"\n', "vfs.bogus",
                 None),
    DriverOption("vfs-bad-bool", "vfs", ("vfs.ignore_chown_errors=maybe",), "", "vfs.ignore_chown_errors",
                 'strconv.ParseBool: parsing "maybe": invalid syntax'),
    DriverOption("vfs-unknown", "vfs", ("vfs.bogus=1",), "", "vfs.bogus",
                 "vfs driver does not support vfs.bogus options"),
    DriverOption("overlay-size-garbage", "overlay", ("overlay.size=abc",), "", "overlay.size",
                 "invalid size: 'abc'"),
    DriverOption("overlay-size-garbage-in-config", "overlay", None,
                 '[storage.options.overlay]\nsize = "abc"\n', "overlay.size", "invalid size: 'abc'"),
    DriverOption("overlay-inodes-garbage", "overlay", ("overlay.inodes=x",), "", "overlay.inodes",
                 'strconv.ParseUint: parsing "x": invalid syntax'),
    DriverOption("overlay-mountopt-garbage", "overlay", ("overlay.mountopt=garbage",), "", "overlay.mountopt",
                 None),
    DriverOption("overlay-mountopt-garbage-in-config", "overlay", None,
                 '[storage.options.overlay]\nmountopt = "nodev,bogus=1"\n', "overlay.mountopt", None),
    DriverOption("overlay-mountopt-bad-value", "overlay", ("overlay.mountopt=metacopy=maybe",), "",
                 "overlay.mountopt", None),
    DriverOption("overlay-mountopt-layer-dir", "overlay", ("overlay.mountopt=lowerdir=/x",), "",
                 "overlay.mountopt",
                 'failed to mount overlay for metacopy check with "lowerdir=/x" options: no such file or '
                 "directory"),
    DriverOption("overlay-mountopt-kernel-refuses", "overlay", ("overlay.mountopt=index=off,nfs_export=on",),
                 "", "overlay.mountopt", None),
    DriverOption("overlay-unknown-table-key", "overlay", None, '[storage.options.overlay]\nbogus = "1"\n',
                 "overlay.bogus", None),
)

FLAG_VALUES: tuple[FlagValue, ...] = (
    FlagValue("uidmap-huge", ("create-layer", "--uidmap", "0:0:100000000000000000000"), "--uidmap",
              'initializing ID mappings: uid setting is malformed expected ["uint32:uint32:uint32"]: '
              '["0:0:100000000000000000000"]'),
    FlagValue("uidmap-exponent", ("create-layer", "--uidmap", "0:0:1e20"), "--uidmap",
              'initializing ID mappings: uid setting is malformed expected ["uint32:uint32:uint32"]: '
              '["0:0:1e20"]'),
    FlagValue("uidmap-2-32", ("create-layer", "--uidmap", "0:0:4294967296"), "--uidmap",
              'initializing ID mappings: uid setting is malformed expected ["uint32:uint32:uint32"]: '
              '["0:0:4294967296"]'),
    FlagValue("gidmap-negative", ("create-layer", "--gidmap", "0:-1:5"), "--gidmap",
              'initializing ID mappings: gid setting is malformed expected ["uint32:uint32:uint32"]: '
              '["0:-1:5"]'),
    FlagValue("container-uidmap-huge", ("create-container", "--uidmap", "0:0:99999999999", "{image}"),
              "--uidmap",
              'initializing ID mappings: uid setting is malformed expected ["uint32:uint32:uint32"]: '
              '["0:0:99999999999"]'),
    FlagValue("chown-negative", ("copy", "--chown", "-1:-1", "{src}", "{layer}:/f"), "--chown",
              'error "-1" as a numeric UID: strconv.ParseUint: parsing "-1": invalid syntax'),
    FlagValue("chown-2-32", ("copy", "--chown", "4294967296:0", "{src}", "{layer}:/f"), "--chown",
              'error "4294967296" as a numeric UID: strconv.ParseUint: parsing "4294967296": value out of '
              "range"),
    FlagValue("chown-empty-group", ("copy", "--chown", "5:", "{src}", "{layer}:/f"), "--chown",
              'error "" as a numeric GID: strconv.ParseUint: parsing "": invalid syntax'),
    FlagValue("max-exponent", ("check", "--max=1e20h"), "--max",
              'time: unknown unit "e" in duration "1e20h"'),
    FlagValue("max-overflow", ("check", "--max=2562048h"), "--max", 'time: invalid duration "2562048h"'),
    FlagValue("max-huge", ("check", "--max=100000000000000000000h"), "--max",
              'time: invalid duration "100000000000000000000h"'),
)
