"""Which engine a cluster's daemon runs, by kind of cluster: declared here, checked here.

    >>> asked(engine=None, ray_address=None, hosts=2)
    EngineChoice(engine='ray', ray_address=None)
    >>> asked(engine=None, ray_address=None, hosts=0) is None   # whichever engine runs
    True

A cluster that does not name its engine gets its kind's default; one that names it (or
gives ``ray_address=``, or has several hosts, which only Ray puts to use) needs its daemon to
run that engine, and is told so when one already runs with another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runhouse.exceptions import EngineMismatchError
from runhouse.wire.engine import ENGINES, EngineChoice


@dataclass(frozen=True)
class Kind:
    """What a kind of cluster does about engines."""

    default_engine: str
    # Under Ray (and its own Ray head), the hosts after the first join the head's Ray
    # cluster over SSH; with ray_address= the Ray cluster is the user's and none is joined.
    joins_hosts: bool
    # Whether a daemon already running with another engine serves it all the same: only
    # when nothing about the cluster asks for one engine.
    any_engine_by_default: bool


KINDS = {
    "this machine": Kind("process", joins_hosts=False, any_engine_by_default=True),
    "one host": Kind("process", joins_hosts=False, any_engine_by_default=True),
    "several hosts": Kind("ray", joins_hosts=True, any_engine_by_default=False),
}


def kind(hosts: int) -> Kind:
    """The kind of a cluster with ``hosts`` hosts (0: this machine)."""
    return KINDS["this machine" if hosts == 0 else "one host" if hosts == 1 else "several hosts"]


def choose(engine: str | None, ray_address: str | None, hosts: int) -> EngineChoice:
    """The engine a daemon started for this cluster runs (``ray_address`` implies Ray)."""
    if engine is None:
        engine = "ray" if ray_address else kind(hosts).default_engine
    return EngineChoice(engine, ray_address)


def asked(engine: str | None, ray_address: str | None, hosts: int) -> EngineChoice | None:
    """The engine this cluster needs its daemon to run; None: whichever runs (a daemon it
    starts runs its kind's default)."""
    if engine is None and ray_address is None and kind(hosts).any_engine_by_default:
        return None
    return choose(engine, ray_address, hosts)


def joins_hosts(choice: EngineChoice, hosts: int) -> bool:
    """Whether the client joins the other hosts to the head's Ray cluster after starting."""
    return choice.engine == "ray" and not choice.ray_address and kind(hosts).joins_hosts


def problem(engine: str | None, ray_address: str | None) -> str | None:
    """Why a cluster cannot be made with these settings, or None."""
    if engine is not None and engine not in ENGINES:
        return f"engine must be one of {ENGINES} (or None: the default), not {engine!r}"
    if ray_address and engine == "process":
        return (
            'ray_address= attaches the daemon to a running Ray cluster: it needs engine="ray" '
            "(or no engine, which then means Ray)"
        )
    if ray_address is not None and (not ray_address or ":" not in ray_address):
        return f'ray_address must be the Ray cluster\'s "host:port" (GCS), not {ray_address!r}'
    return None


def check_running(target: str, wanted: EngineChoice | None, info: dict[str, Any]) -> None:
    """Raise ``EngineMismatchError`` if the running daemon described by ``info`` has another
    engine than the cluster asks for (daemons from before engines run the process engine)."""
    if wanted is None:
        return
    running = str(info.get("engine") or "process")
    if running != wanted.engine:
        raise EngineMismatchError(target, wanted.engine, running)
