"""Parsing and validating addresses."""

from __future__ import annotations

import pytest

import runhouse as rh
from runhouse.names.address import Address, split
from runhouse.names.folders import resolve


@pytest.mark.parametrize(
    ("text", "root", "parts"),
    [
        ("~/a/b", "~", ("a", "b")),
        ("~", "~", ()),
        ("~/", "~", ()),
        ("@/x", "@", ("x",)),
        ("/org/team/x", "/", ("org", "team", "x")),
        ("x", ".", ("x",)),
        ("./x", ".", ("x",)),
        ("a/b", ".", ("a", "b")),
        ("model-v1.2_final", ".", ("model-v1.2_final",)),
        ("local", ".", ("local",)),
    ],
)
def test_valid_addresses(text: str, root: str, parts: tuple[str, ...]) -> None:
    assert split(text) == (root, parts)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("my model", "whitespace"),
        ("a\tb", "whitespace"),
        ("..", "climb"),
        ("../x", "climb"),
        ("a/../b", "climb"),
        ("a/./b", "climb"),
        ("here", "reserved"),
        ("s3", "reserved"),
        ("file", "reserved"),
        ("team/S3", "reserved"),
        ("config.json", "reserved"),
        ("a//b", "empty path segment"),
        ("a/", "empty path segment"),
        ("~x", "must be followed by '/'"),
        ("@x", "must be followed by '/'"),
        (".hidden", "not starting with '.'"),
        ("-x", "not starting with '.'"),
        ("a$b", "letters, digits"),
        ("x" * 129, "at most 128"),
    ],
)
def test_invalid_names_say_what_is_allowed(text: str, says: str) -> None:
    with pytest.raises(ValueError, match="Invalid resource name") as info:
        split(text)
    assert says in str(info.value)
    assert isinstance(info.value, rh.InvalidNameError)


@pytest.mark.parametrize("value", [None, 3, b"x", ["x"]])
def test_names_must_be_strings(value: object) -> None:
    with pytest.raises(rh.InvalidNameError, match="must be a string"):
        split(value)


def test_address_text_round_trips() -> None:
    for text in ("~", "~/a", "~/a/b", "/org/team/x"):
        assert str(resolve(text)) == text
    assert Address("local", ("a", "b")).parent == Address("local", ("a",))
    assert Address("den", ("org", "x")).name == "x"
    assert Address("local", ()).name is None


def test_invalid_names_raise_from_every_entry_point() -> None:
    with pytest.raises(ValueError):
        rh.env(name="..", reqs=[])
    with pytest.raises(ValueError):
        rh.exists("here")
    with pytest.raises(ValueError):
        rh.load("a b")
    with pytest.raises(ValueError):
        rh.set_folder("../up")
    with pytest.raises(ValueError, match="is a folder"):
        rh.env(name="~", reqs=[])
