"""The working dir, the folder stack, '@/' and locate."""

from __future__ import annotations

from pathlib import Path

import pytest

import runhouse as rh
from runhouse.names.folders import WORKING_DIR_MARKERS, working_dir


@pytest.mark.parametrize("marker", WORKING_DIR_MARKERS)
def test_each_marker_makes_a_working_dir(tmp_path: Path, marker: str) -> None:
    root = tmp_path / "root"
    deep = root / "a" / "b"
    deep.mkdir(parents=True)
    target = root / marker
    if marker in ("rh", ".git"):
        target.mkdir()
    else:
        target.write_text("")
    assert working_dir(deep) == root


def test_nearest_marker_wins(project: Path) -> None:
    inner = project / "sub"
    (inner / "deeper").mkdir(parents=True)
    (inner / "pyproject.toml").write_text("")
    assert working_dir(inner / "deeper") == inner
    assert working_dir(project / "elsewhere") == project


def test_rh_must_be_a_folder_to_count(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    (root / "rh").write_text("not a folder")
    assert working_dir(root) == root  # falls back to the start folder itself
    nested = root / "n"
    nested.mkdir()
    assert working_dir(nested) == nested


def test_saving_from_a_subfolder_uses_the_project_store(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = project / "src" / "pkg"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    rh.env(name="x", reqs=[]).save()
    assert (project / "rh" / "x" / "config.json").is_file()
    assert not (sub / "rh").exists()


def test_folder_stack() -> None:
    assert rh.current_folder() == "~"
    assert rh.set_folder("~/team") == "~/team"
    assert rh.set_folder("models") == "~/team/models"  # relative to the current folder
    rh.env(name="m", reqs=[]).save()
    assert rh.exists("~/team/models/m")
    assert rh.exists("m")
    assert rh.unset_folder() == "~/team"
    assert rh.exists("models/m") and rh.exists("./models/m")
    assert rh.unset_folder() == "~"
    with pytest.raises(IndexError, match="no folder was set"):
        rh.unset_folder()


def test_default_folder_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    rh.configs.set("default_folder", "~/mine")
    assert rh.current_folder() == "~/mine"
    monkeypatch.setenv("RH_DEFAULT_FOLDER", "~/from_env")
    assert rh.current_folder() == "~/from_env"
    assert rh.env(name="y", reqs=[]).rns_address == "~/from_env/y"


def test_user_folder_is_local_when_logged_out() -> None:
    env = rh.env(name="@/x", reqs=[]).save()
    assert env.rns_address == "~/x"
    assert rh.exists("@/x") and rh.exists("~/x")
    assert rh.set_folder("@") == "~"


def test_user_folder_is_on_the_metadata_server_when_logged_in() -> None:
    rh.configs.set("token", "t0k")
    with pytest.raises(rh.StoreUnavailableError, match="no username"):
        rh.locate("@/x")
    rh.configs.set("username", "alice")
    env = rh.env(name="@/x", reqs=[])
    assert env.rns_address == "/alice/x"
    with pytest.raises(rh.StoreUnavailableError, match="metadata server") as info:
        env.save()
    assert "~/x" in str(info.value)  # says what to do instead


def test_group_addresses_need_a_metadata_server() -> None:
    with pytest.raises(rh.StoreUnavailableError, match="den_url is unset"):
        rh.load("/acme/ml/model")


def test_locate(project: Path) -> None:
    rh.set_folder("~/team")
    where = rh.locate("x")
    assert where.address == "~/team/x" and str(where) == "~/team/x"
    assert where.store == "local"
    assert where.where == str(project / "rh" / "team" / "x" / "config.json")
    assert where.exists is False
    rh.env(name="x", reqs=[]).save()
    assert rh.locate("x").exists is True
