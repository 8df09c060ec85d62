"""Command runners: the same behaviour locally and over SSH to real sshd hosts, and clear
errors for every way SSH can fail."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.client.runners.base import CommandRunner
from runhouse.client.runners.local import LocalRunner
from runhouse.client.runners.ssh import SSHRunner, control_dir


def ssh_runner(host: Any, **overrides: Any) -> SSHRunner:
    options = {"host": "127.0.0.1", "user": host.user, "port": host.port, "key": str(host.key)}
    return SSHRunner(**{**options, **overrides})


@pytest.fixture(params=["local", "ssh"])
def runner(request: pytest.FixtureRequest) -> CommandRunner:
    if request.param == "local":
        return LocalRunner()
    return ssh_runner(request.getfixturevalue("ssh_hosts")[0])


def test_commands_return_code_and_output(
    runner: CommandRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    results = runner.run(["echo out; echo err >&2", "exit 3"])
    assert results == [(0, "out\n", "err\n"), (3, "", "")]
    captured = capsys.readouterr()
    assert "out" in captured.out and "err" in captured.err  # streamed live by default
    runner.run("echo quiet", stream_logs=False)
    assert capsys.readouterr().out == ""


def test_env_vars_cwd_and_quoting(runner: CommandRunner) -> None:
    [(rc, out, _)] = runner.run(
        'echo "$GREETING" && pwd', env={"GREETING": "it's a $test"}, cwd="/", stream_logs=False
    )
    assert rc == 0 and out == "it's a $test\n/\n"


def test_run_python(runner: CommandRunner) -> None:
    rc, out, _ = runner.run_python(["import sys", "print(sys.version_info[0])"], stream_logs=False)
    assert (rc, out) == (0, "3\n")


def test_rsync_up_and_down_honours_gitignore(runner: CommandRunner, tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "mod.py").write_text("x = 1\n")
    (source / "secret.log").write_text("no")
    (source / ".gitignore").write_text("*.log\n")
    [(_, home, _)] = runner.run("echo -n $HOME", stream_logs=False)
    remote = f"{home}/synced-{tmp_path.name}"
    runner.rsync(str(source), remote, up=True)
    [(_, listing, _)] = runner.run(f"cd {remote} && find . -type f | sort", stream_logs=False)
    assert listing.split() == ["./.gitignore", "./pkg/mod.py"]
    back = tmp_path / "back"
    runner.rsync(f"{remote}/", str(back), up=False)
    assert (back / "pkg" / "mod.py").read_text() == "x = 1\n"
    assert not (back / "secret.log").exists()


def test_rsync_makes_the_folders_above_its_destination(
    runner: CommandRunner, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    deep = f"~/deep-{tmp_path.name}/one/two"
    runner.rsync(str(source), f"{deep}/folder", up=True)  # a folder's contents
    runner.rsync(str(source / "a.txt"), f"{deep}/three/b.txt", up=True)  # one file
    command = f"cd {deep} && find . -type f | sort && cat three/b.txt"
    [(rc, listing, _)] = runner.run(command, stream_logs=False)
    assert rc == 0 and listing.split() == ["./folder/a.txt", "./three/b.txt", "a"]
    back = tmp_path / "x" / "y" / "back"
    runner.rsync(f"{deep}/three/b.txt", str(back), up=False)
    assert back.read_text() == "a"


def test_two_hosts_are_two_users(ssh_hosts: list[Any]) -> None:
    users = [
        ssh_runner(h).run("whoami; echo $HOME", stream_logs=False)[0][1].split() for h in ssh_hosts
    ]
    assert users == [[h.user, str(h.home)] for h in ssh_hosts]


def test_the_connection_is_multiplexed(ssh_hosts: list[Any]) -> None:
    runner = ssh_runner(ssh_hosts[1])
    runner.run("true", stream_logs=False)
    check = subprocess.run(
        ["ssh", *runner.options(), "-O", "check", runner.target], capture_output=True, text=True
    )
    assert check.returncode == 0 and "Master running" in check.stderr
    assert any(control_dir().iterdir())
    runner.close()


def test_unreachable_host_fails_fast_and_says_so(ssh_hosts: list[Any]) -> None:
    from tests.sshd import free_port

    runner = ssh_runner(ssh_hosts[0], port=free_port())  # nothing listens there
    started = time.monotonic()
    with pytest.raises(rh.SSHError, match="cannot be reached"):
        runner.run("true", stream_logs=False)
    assert time.monotonic() - started < 15  # the bound: an error, never a hang


def test_a_refused_key_says_so(ssh_hosts: list[Any], tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    with pytest.raises(rh.SSHError, match="refused the key") as info:
        ssh_runner(ssh_hosts[0], key=str(other)).run("true", stream_logs=False)
    assert "authorized_keys" in str(info.value)


def test_a_changed_host_key_is_refused(ssh_hosts: list[Any], tmp_path: Path) -> None:
    host = ssh_hosts[0]
    known = tmp_path / "known_hosts"
    ssh_runner(host, known_hosts=str(known)).close()  # no master yet to reuse
    assert ssh_runner(host, known_hosts=str(known)).run("true", stream_logs=False)[0][0] == 0
    recorded = known.read_text()
    assert recorded  # first contact trusted and recorded the key
    impostor = tmp_path / "impostor_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    lines = recorded.split()
    known.write_text(
        f"{lines[0]} {lines[1]} {(tmp_path / 'impostor_key.pub').read_text().split()[1]}\n"
    )
    runner = ssh_runner(host, known_hosts=str(known))
    runner.close()  # drop the multiplexed connection, so the key is checked again
    with pytest.raises(rh.SSHError, match=r"host key .* changed"):
        runner.run("true", stream_logs=False)


def test_cluster_run_in_an_env(cluster: rh.Cluster, shared_tmp: Path) -> None:
    results = cluster.run(["echo hi", "exit 4"], stream_logs=False)
    assert results == [(0, "hi\n", ""), (4, "", "")]
    env = rh.env(name="cmd_env", env_vars={"RH_CMD_VAR": "set"}, setup_cmds=["true"])
    [(rc, out, _)] = cluster.run('echo "$RH_CMD_VAR $(which python)"', env=env, stream_logs=False)
    var, python = out.split()
    assert rc == 0 and var == "set" and "/envs/" in python  # the env's own virtualenv
    assert cluster.run_python("print(6 * 7)", stream_logs=False) == [(0, "42\n", "")]
    (shared_tmp / "a.txt").write_text("a")
    cluster.rsync(str(shared_tmp), str(shared_tmp / "copy"))
    assert (shared_tmp / "copy" / "a.txt").read_text() == "a"
