"""Progress bars: the line for known inputs, throttling by a fake clock, on only at a
terminal and when not refused, and real transfers drawing into a captured stream."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import runhouse as rh
from runhouse.client.runners.base import run_rsync
from runhouse.data import progress
from runhouse.data.progress import Bar, duration_text, size_text
from tests.data.test_bucket_transfers import with_s3
from tests.data.test_transfers import FILES, contents, remote_path, source
from tests.storage_servers import Service

MiB, GiB = 2**20, 2**30


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def drawn(stream: io.StringIO) -> list[str]:
    """The lines a bar drew, in order (each redraw starts with a carriage return)."""
    return [line.rstrip() for line in stream.getvalue().split("\r") if line]


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (320 * MiB, "320.0 MiB"),
        (GiB, "1.0 GiB"),
        (3 * 2**40 + 2**39, "3.5 TiB"),
        (2**60, "1024.0 PiB"),
    ],
)
def test_sizes_in_binary_units(n: int, text: str) -> None:
    assert size_text(n) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "--:--"), (0, "0:00"), (6.4, "0:06"), (59.6, "1:00"), (3725, "1:02:05")],
)
def test_durations(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text


def test_the_line_shows_bytes_rate_and_eta() -> None:
    clock = Clock()
    bar = Bar("here -> s3://b/data", Terminal(), clock=clock, columns=120)
    bar.begin(GiB)
    clock.now += 2
    bar.reach(256 * MiB)
    assert bar.text(clock.now) == (
        "here -> s3://b/data  [#####---------------]  25%  256.0 MiB/1.0 GiB  128.0 MiB/s  ETA 0:06"
    )
    clock.now += 6
    bar.reach(GiB)
    assert bar.text(clock.now) == (
        "here -> s3://b/data  [####################] 100%  1.0 GiB/1.0 GiB  128.0 MiB/s  in 0:08"
    )


def test_a_resumed_transfer_counts_its_rate_from_what_was_there() -> None:
    clock = Clock()
    bar = Bar("x", Terminal(), clock=clock, columns=120)
    bar.begin(100 * MiB, done=60 * MiB)
    clock.now += 1
    bar.reach(70 * MiB)
    assert "70%  70.0 MiB/100.0 MiB  10.0 MiB/s  ETA 0:03" in bar.text(clock.now)


def test_an_unknown_total_shows_bytes_and_rate() -> None:
    clock = Clock()
    bar = Bar("x", Terminal(), clock=clock, columns=120)
    clock.now += 2
    bar.advance(3 * MiB)
    assert bar.text(clock.now) == "x  3.0 MiB  1.5 MiB/s"


def test_a_long_label_is_cut_to_fit_the_terminal() -> None:
    bar = Bar("a" * 50 + "/the-end", Terminal(), clock=Clock(), columns=80)
    bar.begin(GiB)
    text = bar.text(101.0)
    assert len(text) <= 80 and text.startswith("...") and "/the-end  [" in text


def test_nothing_for_the_first_second_then_at_most_every_interval() -> None:
    clock, out = Clock(), Terminal()  # steps of 1/8 and 1/16 s: exact in binary
    bar = Bar("x", out, clock=clock, show_after=1.0, interval=0.25, columns=120)
    bar.begin(1000)
    for _ in range(7):  # 0.875 s of updates: a quick transfer shows nothing
        clock.now += 0.125
        bar.advance(10)
    assert out.getvalue() == ""
    clock.now += 0.125
    bar.advance(10)  # 1 s: the first line
    assert drawn(out) == ["x  [#-------------------]   8%  80 B/1000 B  80 B/s  ETA 0:12"]
    for _ in range(3):  # up to 0.1875 s later: too soon
        clock.now += 0.0625
        bar.advance(10)
    assert len(drawn(out)) == 1
    clock.now += 0.0625
    bar.advance(10)  # 0.25 s after the first
    assert len(drawn(out)) == 2 and "12%" in drawn(out)[-1]
    bar.close()
    assert out.getvalue().endswith("\n") and "100%" in drawn(out)[-1]


def test_a_shorter_line_wipes_the_longer_one_before_it() -> None:
    clock, out = Clock(), Terminal()
    bar = Bar("x", out, clock=clock, show_after=0, interval=0, columns=120)
    bar.begin(GiB)
    clock.now += 1024
    bar.reach(MiB)  # 1.0 KiB/s: an ETA of hours
    clock.now += 1
    bar.reach(GiB)  # done: a shorter line
    first, second = out.getvalue().split("\r")[1:]
    assert "ETA 290:59:12" in first and "in 17:05" in second
    assert len(second) == len(first) and second.endswith(" ")


def test_a_failed_transfer_ends_its_line_where_it_stopped() -> None:
    clock, out = Clock(), Terminal()
    with pytest.raises(OSError), Bar("x", out, clock=clock, show_after=0, columns=120) as bar:
        bar.begin(100)
        clock.now += 1
        bar.reach(40)
        raise OSError("cut")
    assert drawn(out)[-1].split()[2] == "40%" and out.getvalue().endswith("\n")


def test_a_quick_transfer_leaves_no_trace() -> None:
    out = Terminal()
    with Bar("x", out, clock=Clock()) as bar:
        bar.begin(10)
        bar.reach(10)
    assert out.getvalue() == ""


def test_a_stopped_counter_stops_its_transfer() -> None:
    bar = Bar()
    bar.advance(1)
    bar.stop()
    with pytest.raises(progress.Stopped):
        bar.advance(1)


def test_on_only_at_a_terminal_and_when_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert progress.wanted(None, Terminal())
    assert not progress.wanted(None, io.StringIO())  # a file or a pipe
    assert not progress.wanted(False, Terminal())
    monkeypatch.setenv("RH_PROGRESS", "false")
    assert not progress.wanted(None, Terminal())
    assert progress.wanted(True, Terminal())  # the caller's word wins over the setting
    assert not progress.wanted(True, io.StringIO())
    monkeypatch.delenv("RH_PROGRESS")
    rh.configs.set("progress", False)
    assert not progress.wanted(None, Terminal())


def test_a_bar_draws_on_stderr_only_when_it_is_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress.bar("x").stream is sys.stderr
    assert progress.bar("x", requested=False).stream is None
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress.bar("x").stream is None


def test_rsync_reports_the_bytes_it_sent(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for n in range(3):
        (src / f"f{n}.bin").write_bytes(os.urandom(1 << 20))
    counts: list[int] = []
    argv = ["rsync", "-a", f"{src}/", str(tmp_path / "dest")]
    returncode, _, _ = run_rsync(argv, None, counts.append)
    assert returncode == 0 and counts and counts[-1] == 3 << 20
    assert counts == sorted(counts)
    assert (tmp_path / "dest" / "f2.bin").read_bytes() == (src / "f2.bin").read_bytes()


def test_rsync_without_a_listener_runs_as_before(tmp_path: Path) -> None:
    argv = ["rsync", "-a", "--verbose", f"{tmp_path}/nothing-here", str(tmp_path / "x")]
    returncode, _, stderr = run_rsync(argv, None, None)
    assert returncode != 0 and "nothing-here" in stderr


def test_a_transfer_here_draws_into_a_forced_stream(tmp_path: Path) -> None:
    out = io.StringIO()
    src = source(tmp_path / "src")
    with progress.forced(out, columns=1000):
        copy = src.to("here", path=str(tmp_path / "copy"))
    assert contents(copy) == FILES
    lines = drawn(out)
    assert lines and all(f"{src.path} -> {copy.path}" in line for line in lines)
    assert "100%" in lines[-1] and out.getvalue().endswith("\n")


def test_no_bar_when_the_caller_refuses_one(tmp_path: Path) -> None:
    out = io.StringIO()
    src = source(tmp_path / "src")
    with progress.forced(out, columns=1000):
        src.to("here", path=str(tmp_path / "copy"), progress=False)
        src.mv("here", path=str(tmp_path / "moved"), progress=False)
    assert out.getvalue() == ""
    assert contents(rh.folder(path=str(tmp_path / "moved"))) == FILES


@pytest.fixture
def local_cluster(cluster: rh.Cluster) -> rh.Cluster:
    """The local variant of ``cluster`` only (the SSH one is covered by the benchmark)."""
    if cluster.ips:
        pytest.skip("drawn on the local cluster; SSH transfers share the rsync path")
    return cluster


def test_here_to_a_cluster_and_back_draw_from_rsync(
    local_cluster: rh.Cluster, tmp_path: Path
) -> None:
    big = {"a.bin": os.urandom(2 << 20), "sub/b.bin": os.urandom(1 << 20), **FILES}
    src = source(tmp_path / "src", big)
    out = io.StringIO()
    with progress.forced(out, columns=1000):
        on_c = src.to(local_cluster, path=remote_path())
        up = drawn(out)
        back = on_c.to("here", path=str(tmp_path / "back"))
    assert contents(back) == big
    total = size_text(sum(len(v) for v in big.values()))
    assert up and all("-> " in line for line in up) and f"/{total}" in up[-1]
    assert "100%" in up[-1] and "100%" in drawn(out)[-1]
    on_c.rm()


def test_a_copy_the_cluster_makes_itself_draws_from_its_reports(
    local_cluster: rh.Cluster, s3: Service, tmp_path: Path
) -> None:
    with_s3(local_cluster)
    on_c = source(tmp_path / "src").to(local_cluster, path=remote_path())
    out = io.StringIO()
    with progress.forced(out, columns=1000):
        in_s3 = on_c.to("s3", path=f"{s3.bucket()}/data", data_config=s3.options)
    assert contents(in_s3) == FILES
    lines = drawn(out)
    assert lines and "s3://" in lines[-1] and "100%" in lines[-1]
    on_c.rm()


def test_here_to_s3_draws_from_fsspec_callbacks(s3: Service, tmp_path: Path) -> None:
    big = {f"part{i}.bin": os.urandom(1 << 20) for i in range(4)}
    src = source(tmp_path / "src", big)
    out = io.StringIO()
    with progress.forced(out, columns=1000):
        in_s3 = src.to("s3", path=f"{s3.bucket()}/data")
        back = in_s3.to("here", path=str(tmp_path / "back"))
    assert contents(back) == big
    text = out.getvalue()
    assert text.count("\n") == 2 and "4.0 MiB/4.0 MiB" in text
    assert [line for line in drawn(out) if "s3://" in line][-1].split()[4] == "100%"


def test_the_http_path_draws_from_the_tar_parts(
    local_cluster: rh.Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runhouse.data import transfers

    monkeypatch.setattr(transfers, "route", lambda cluster: "http")  # a cluster without SSH
    src = source(tmp_path / "src")
    out = io.StringIO()
    with progress.forced(out, columns=1000):
        on_c = src.to(local_cluster, path=remote_path())
        on_c.to("here", path=str(tmp_path / "back"))
    assert [line for line in drawn(out) if "100%" in line]
    assert out.getvalue().count("\n") == 2
    on_c.rm()


def test_the_setting_is_declared_with_its_variable() -> None:
    from runhouse.config import SETTINGS

    setting = SETTINGS["progress"]
    assert setting.type is bool and setting.default is True
    assert setting.env_var == "RH_PROGRESS"


def test_a_process_whose_stderr_is_a_pipe_draws_nothing(python: str) -> None:
    code = (
        "import runhouse.data.progress as p\n"
        "b = p.bar('x')\n"
        "b.begin(10); b.reach(5); b.close()\n"
        "print(b.stream is None)"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True" and done.stderr == ""
