"""Env as a resource: its fields, validation and the factory."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import runhouse as rh


def test_fields_round_trip() -> None:
    env = rh.env(
        name="np",
        reqs=["numpy", "./my_pkg"],
        env_vars={"MODE": "fast"},
        setup_cmds="echo hi",
        working_dir=None,
        secrets=["aws"],
    ).save()
    loaded = rh.load("np")
    assert isinstance(loaded, rh.Env)
    assert loaded.config() == env.config()
    assert loaded.setup_cmds == ["echo hi"]
    assert loaded.working_dir is None


def test_env_vars_may_be_a_dotenv_path() -> None:
    rh.env(name="e", env_vars=".env").save()
    assert rh.load("e").env_vars == ".env"


def test_factory_with_only_a_name_loads() -> None:
    rh.env(name="np", reqs=["numpy"]).save()
    assert rh.env(name="np").reqs == ["numpy"]
    with pytest.raises(rh.ResourceNotFoundError):
        rh.env(name="absent")
    assert rh.env(name="absent", reqs=[]).reqs == []


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"reqs": [1]}, "reqs"),
        ({"reqs": [""]}, "reqs"),
        ({"setup_cmds": [None]}, "setup_cmds"),
        ({"env_vars": {"N": 1}}, "quote numbers"),
        ({"env_vars": ["A=1"]}, "dict or a path"),
        ({"working_dir": 3}, "working_dir"),
    ],
)
def test_bad_fields(kwargs: dict, says: str) -> None:
    with pytest.raises(TypeError, match=says):
        rh.Env(name="bad", **kwargs)


def test_saving_credential_like_variables_warns(caplog: pytest.LogCaptureFixture) -> None:
    env = rh.env(name="creds", env_vars={"HF_TOKEN": "hf_x", "db_password": "pw", "MODE": "a"})
    with caplog.at_level(logging.WARNING, logger="runhouse"):
        env.save()
    assert "(HF_TOKEN, db_password)" in caplog.text and "MODE" not in caplog.text
    assert ".env" in caplog.text  # says what to do instead
    assert rh.load("creds").env_vars["HF_TOKEN"] == "hf_x"  # still saved, as asked


def test_a_function_saved_with_an_inline_env_warns_too(caplog: pytest.LogCaptureFixture) -> None:
    env = rh.env(env_vars={"OPENAI_API_KEY": "sk-x"})  # unnamed: inlined in the function's config
    fn = rh.function(len, name="measure", env=env)
    with caplog.at_level(logging.WARNING, logger="runhouse"):
        fn.save()
    assert "OPENAI_API_KEY" in caplog.text and "measure" in caplog.text


def test_a_dotenv_path_is_saved_as_the_path_not_its_values(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (project / ".env").write_text("API_KEY=sk-live-123\n")
    env = rh.env(name="dotenv", env_vars=".env")
    with caplog.at_level(logging.WARNING, logger="runhouse"):
        env.save()
    assert caplog.text == ""
    saved = "".join(p.read_text() for p in (project / "rh").rglob("*") if p.is_file())
    assert '".env"' in saved and "sk-live-123" not in saved
    assert env.resolved_env_vars() == {"API_KEY": "sk-live-123"}
