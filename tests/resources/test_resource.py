"""The Resource base: config, save/load, history, rollback, registry and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.resources.registry import known_types


class Model(rh.Resource):
    """A resource type defined outside the package, as users do."""

    resource_type = "test_model"

    def __init__(
        self, name: str | None = None, size: int = 1, env: rh.Env | str | dict | None = None
    ) -> None:
        super().__init__(name=name)
        self.size = size
        self.env = rh.Resource.deref(env)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "size": self.size, "env": self.ref(self.env)}


class BigModel(Model):
    """A subtype: same resource_type, rebuilt as itself when its class is known."""


class GpuEnv(rh.Env):
    """A user subclass of a built-in type."""


def test_config_shape() -> None:
    m = Model(name="m", size=3)
    assert m.config() == {
        "name": "~/m",
        "resource_type": "test_model",
        "resource_subtype": "Model",
        "size": 3,
        "env": None,
    }
    assert Model(size=1).config()["name"] is None
    assert repr(m) == "Model(name='~/m')"


def test_save_and_load_rebuild_the_right_class() -> None:
    Model(name="m", size=3).save()
    BigModel(name="big", size=9).save()
    GpuEnv(name="gpu", reqs=["torch"]).save()
    m = rh.load("m")
    assert type(m) is Model and m.size == 3 and m.rns_address == "~/m"
    assert type(rh.load("big")) is BigModel
    assert type(rh.load("gpu")) is GpuEnv
    assert type(Model.from_name("big")) is BigModel
    assert rh.load("m", instantiate=False)["size"] == 3
    assert "test_model" in known_types()


def test_unknown_subtype_falls_back_to_the_type_class(project: Path) -> None:
    BigModel(name="big").save()
    path = project / "rh" / "big" / "config.json"
    config = json.loads(path.read_text())
    config["resource_subtype"] = "NotImportedHere"
    path.write_text(json.dumps(config))
    assert type(rh.load("big")) is Model


def test_save_returns_self_and_can_rename() -> None:
    m = Model(size=2)
    with pytest.raises(ValueError, match="needs a name"):
        m.save()
    assert m.save("first") is m
    assert m.rns_address == "~/first"
    m.save(name="team/second")
    assert m.name == "second" and m.rns_address == "~/team/second"
    assert rh.exists("first") and rh.exists("team/second")


def test_overwrite_false() -> None:
    Model(name="m", size=1).save()
    with pytest.raises(rh.ResourceExistsError, match="overwrite=True") as info:
        Model(name="m", size=2).save(overwrite=False)
    assert isinstance(info.value, FileExistsError)
    assert rh.load("m").size == 1


def test_history_and_versions() -> None:
    rh.configs.set("username", "ana")
    m = Model(name="m", size=1).save()
    for size in (2, 3):
        m.size = size
        m.save()
    history = m.history()
    assert [v.version for v in history] == [3, 2, 1]
    assert [v.config["size"] for v in history] == [3, 2, 1]
    assert {v.author for v in history} == {"ana"}
    assert history[0].timestamp >= history[-1].timestamp
    assert [v.version for v in m.history(limit=1)] == [3]
    assert [v.version for v in m.versions()] == [3, 2, 1]


def test_rollback() -> None:
    m = Model(name="m", size=1).save()
    m.size = 2
    m.save()
    assert m.rollback(1) is m
    assert m.size == 1
    assert rh.load("m").size == 1
    assert [v.config["size"] for v in m.history()] == [1, 2, 1]
    with pytest.raises(rh.VersionNotFoundError, match="no version 9"):
        m.rollback(9)
    assert len(m.history()) == 3


def test_rollback_to_a_version_of_another_class_changes_nothing() -> None:
    Model(name="x").save()
    env = rh.env(name="x", reqs=["a"]).save()
    with pytest.raises(rh.ResourceTypeMismatchError, match="version 1"):
        env.rollback(1)
    assert len(env.history()) == 2


def test_delete_configs() -> None:
    m = Model(name="m").save()
    m.delete_configs()
    assert not rh.exists("m")
    m.delete_configs()  # nothing left to delete is not an error
    with pytest.raises(KeyError):
        m.history()


def test_missing_name_is_a_key_error_saying_where_it_looked(project: Path) -> None:
    with pytest.raises(KeyError) as info:
        rh.load("team/nope")
    error = info.value
    assert isinstance(error, rh.ResourceNotFoundError)
    assert error.address == "~/team/nope"
    assert str(project / "rh" / "team" / "nope" / "config.json") in str(error)
    assert not str(error).startswith("'")  # readable, not KeyError's quoted repr
    with pytest.raises(KeyError):
        Model.from_name("nope")


def test_unknown_resource_type_is_a_clear_error(project: Path) -> None:
    folder = project / "rh" / "alien"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"name": "~/alien", "resource_type": "spaceship"}')
    with pytest.raises(rh.UnknownResourceTypeError) as info:
        rh.load("alien")
    message = str(info.value)
    assert "'spaceship'" in message and "~/alien" in message and "env" in message
    assert isinstance(info.value, ValueError)
    assert rh.load("alien", instantiate=False)["resource_type"] == "spaceship"

    (folder / "config.json").write_text('{"name": "~/alien"}')
    with pytest.raises(rh.UnknownResourceTypeError, match="None"):
        rh.load("alien")


def test_from_name_checks_the_class() -> None:
    rh.env(name="e", reqs=[]).save()
    with pytest.raises(rh.ResourceTypeMismatchError, match="is saved as Env, not Model") as info:
        Model.from_name("e")
    assert isinstance(info.value, TypeError)
    assert type(rh.Resource.from_name("e")) is rh.Env


def test_non_json_fields_name_the_field_and_write_nothing() -> None:
    m = Model(name="m", size=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Model\.size is a object"):
        m.save()
    assert not rh.exists("m")


def test_fields_a_class_does_not_take_are_dropped_with_a_warning(project: Path) -> None:
    Model(name="m", size=4).save()
    path = project / "rh" / "m" / "config.json"
    config = json.loads(path.read_text())
    config["color"] = "red"
    path.write_text(json.dumps(config))
    with pytest.warns(UserWarning, match=r"\['color'\]"):
        m = rh.load("m")
    assert m.size == 4


def test_sub_resources_inline_when_unnamed_by_address_when_named() -> None:
    inline = Model(name="a", env=rh.Env(reqs=["x"]))
    assert inline.config()["env"]["reqs"] == ["x"]
    inline.save()
    assert rh.load("a").env.reqs == ["x"]

    shared = rh.env(name="shared_env", reqs=["y"]).save()
    by_name = Model(name="b", env=shared).save()
    assert by_name.config()["env"] == "~/shared_env"
    shared.reqs = ["z"]
    shared.save()
    assert rh.load("b").env.reqs == ["z"]  # follows the named env's newest version


def test_a_named_but_unsaved_sub_resource_is_kept_inline() -> None:
    creds = {"ssh_user": "ubuntu", "ssh_private_key": "~/.ssh/id_ed25519"}
    box = rh.cluster(name="unsaved_box", host="10.1.2.3", ssh_creds=creds, ssh_port=2222)
    rh.Function(name="fn_on_box", system=box).save()  # the cluster itself was never saved
    loaded = rh.load("fn_on_box").system
    assert (loaded.host, loaded.ssh_port, loaded.ssh_creds) == ("10.1.2.3", 2222, creds)
    assert loaded.rns_address == box.rns_address

    box.save()  # once saved, the function refers to it by address
    assert rh.Function(name="fn_on_box", system=box).config()["system"] == box.rns_address
