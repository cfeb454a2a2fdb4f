import pytest

from containers_storage.drivers.options import (
    check_mount_options,
    option_value,
    parse_bool,
    parse_options,
    parse_size,
    strip_prefix,
)
from containers_storage.errors import InvalidOption


def test_parse_options_splits_at_first_equals_and_trims() -> None:
    assert parse_options([" VFS.Imagestore = /a=b ", "x="]) == [("vfs.imagestore", "/a=b"), ("x", "")]


def test_parse_options_rejects_missing_equals() -> None:
    with pytest.raises(InvalidOption, match="unable to parse key/value option: nokey"):
        parse_options(["nokey"])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4096", 4096),
        ("10G", 10 << 30),
        ("512m", 512 << 20),
        ("1.5GiB", 3 << 29),
        ("2 kb", 2048),
        ("1t", 1 << 40),
    ],
)
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "ten", "10x", "-1"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(InvalidOption):
        parse_size(text)


def test_parse_bool_is_go_strconv() -> None:
    assert parse_bool("TRUE") and parse_bool("1") and parse_bool("t")
    assert not parse_bool("False") and not parse_bool("0")
    with pytest.raises(InvalidOption, match="strconv.ParseBool"):
        parse_bool("yes")


def test_strip_prefix() -> None:
    assert strip_prefix("overlay2.size", "overlay.", "overlay2.", ".") == "size"
    assert strip_prefix(".size", "overlay.", ".") == "size"


def test_option_value_names_the_option() -> None:
    assert option_value("overlay.size", "1k", parse_size) == 1024
    with pytest.raises(InvalidOption) as info:
        option_value("overlay.size", "abc", parse_size)
    assert str(info.value) == "overlay.size: invalid size: 'abc'"


_WORDS = {"metacopy": ("on", "off"), "volatile": None}


@pytest.mark.parametrize("value", [
    "", "nodev,noatime", "ro", "metacopy=on,volatile", " nodev , metacopy=off ",
    'context="system_u:object_r:container_file_t:s0"', 'nodev,context="u:r:t:s0:c1,c2",noexec',
])
def test_mount_options_accepted(value: str) -> None:
    check_mount_options("x.mountopt", value, _WORDS, ("lowerdir",))


@pytest.mark.parametrize(("value", "message"), [
    ("garbage", 'x.mountopt: unknown mount option "garbage"'),
    ("nodev,bogus=1", 'x.mountopt: unknown mount option "bogus=1"'),
    ("metacopy=maybe", 'x.mountopt: mount option "metacopy" takes one of off, on, not "maybe"'),
    ("metacopy", 'x.mountopt: mount option "metacopy" takes one of off, on, not ""'),
    ("volatile=1", 'x.mountopt: mount option "volatile" takes no value'),
    ("nodev=1", 'x.mountopt: unknown mount option "nodev=1"'),
    ("lowerdir=/a", 'x.mountopt: mount option "lowerdir" is set by the driver'),
    ("bind", 'x.mountopt: "bind" is not a mount option for a layer'),
    ("remount", 'x.mountopt: "remount" is not a mount option for a layer'),
])
def test_mount_options_refused_naming_the_word(value: str, message: str) -> None:
    with pytest.raises(InvalidOption) as info:
        check_mount_options("x.mountopt", value, _WORDS, ("lowerdir",))
    assert str(info.value) == message
