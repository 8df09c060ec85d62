"""A client installed from a release (not a checkout) has a fresh host install that release."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import runhouse as rh

# Run by the released client: bootstrap the host, call a function there, report what ran.
CLIENT = """
import json, sys
import runhouse as rh

def where() -> str:
    import runhouse
    return runhouse.__file__

host = json.loads(sys.argv[1])
creds = {"ssh_user": host["user"], "ssh_private_key": host["key"]}
c = rh.cluster(host="127.0.0.1", ssh_creds=creds, ssh_port=host["port"], server_port=0)
try:
    c.up_if_not()
except rh.DaemonError as exc:
    print(json.dumps({"error": str(exc)}))
    sys.exit(0)
try:
    remote = rh.function(where).to(c)()
    [(_, marker, _)] = c.run("cat ~/.rh/venv/.runhouse-source", stream_logs=False)
    print(json.dumps({"client": rh.__file__, "remote": remote, "marker": marker.strip()}))
finally:
    c.daemon_host.stop()
"""


def released_client(wheel: Path, folder: Path) -> Path:
    """A venv holding runhouse unpacked from ``wheel`` (as a release install leaves it); its
    dependencies come from the test venv's site-packages (not processed as a site dir, so
    this checkout's editable install does not apply there)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(purelib)
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def run_client(python: Path, host: Any, cwd: Path) -> dict[str, Any]:
    """Run CLIENT with the released client against ``host``; its JSON report."""
    spec = {"user": host.user, "key": str(host.key), "port": host.port}
    result = subprocess.run(
        [python, "-c", CLIENT, json.dumps(spec)], capture_output=True, text=True, cwd=cwd
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_released_client_has_a_fresh_host_install_the_same_release(
    ssh_hosts: list[Any], tmp_path: Path, shared_tmp: Path
) -> None:
    from runhouse.client.hosts import build_wheel
    from tests import sshd

    wheel, _ = build_wheel()  # stands for the release on a package index
    python = released_client(wheel, tmp_path / "released")
    host = sshd.start_host(ssh_hosts[0].key.parent, "release", "rhtest5", ssh_hosts[0].key)
    try:
        # The host's index does not offer this version: a clear error that says what to do.
        failed = run_client(python, host, tmp_path)
        assert f"runhouse=={rh.__version__}" in failed["error"]
        assert "package index must offer" in failed["error"]

        # The host's pip is pointed at an index that holds the release (a folder, here).
        index = shared_tmp / "index"
        index.mkdir()
        shutil.copy(wheel, index)
        (index / wheel.name).chmod(0o644)
        pip_conf = host.home / ".config" / "pip" / "pip.conf"
        pip_conf.parent.mkdir(parents=True)
        pip_conf.write_text(f"[global]\nfind-links = {index}\n")
        entry = pwd.getpwnam(host.user)
        for path in (pip_conf.parent.parent, pip_conf.parent, pip_conf):
            os.chown(path, entry.pw_uid, entry.pw_gid)

        report = run_client(python, host, tmp_path)
        assert report["client"].startswith(str(tmp_path / "released"))  # not the checkout
        assert report["remote"].startswith(str(host.home / ".rh" / "venv"))
        assert report["marker"] == f"release {rh.__version__}"
    finally:
        host.stop()
