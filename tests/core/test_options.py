import pytest

from containers_storage.drivers.options import parse_bool, parse_options, parse_size, strip_prefix
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
