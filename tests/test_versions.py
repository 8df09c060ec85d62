"""The version check between a client and an env's worker."""

from __future__ import annotations

import pytest

import runhouse as rh
from runhouse.wire.versions import check, local_versions


def test_matching_versions_pass_and_are_what_the_env_reports(cluster: rh.Cluster) -> None:
    mine = local_versions()
    check(mine, dict(mine), "base")
    client = cluster._connected(autostart=False)
    assert client.json("GET", "/_rh/versions", params={"env": "base"}) == mine


@pytest.mark.parametrize(
    ("field", "theirs", "says"),
    [
        ("python", "3.9", "use the same Python minor version"),
        ("cloudpickle", "2.0.0", "cloudpickle=="),
        ("runhouse", "0.0.16", "runhouse=="),
    ],
)
def test_a_mismatch_names_both_sides_and_the_fix(field: str, theirs: str, says: str) -> None:
    mine = local_versions()
    with pytest.raises(rh.VersionMismatchError) as info:
        check(mine, {**mine, field: theirs}, "gpu")
    message = str(info.value)
    assert f"{field} {mine[field]} here, {theirs} in env 'gpu'" in message
    assert says in message


def test_a_patch_release_of_cloudpickle_is_compatible() -> None:
    mine = local_versions()
    major, minor, *_ = mine["cloudpickle"].split(".")
    check(mine, {**mine, "cloudpickle": f"{major}.{minor}.99"}, "base")
