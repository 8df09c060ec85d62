"""``runhouse status`` as text: the daemon, its nodes (resources, load, workers), its envs.

for line in render(cluster.status()):
    print(line)
"""

from __future__ import annotations

from typing import Any

# Ray's own bookkeeping resources: not what users ask their envs for.
_HIDDEN = ("object_store_memory",)
_HIDDEN_PREFIXES = ("node:", "accelerator_type:")


def render(status: dict[str, Any]) -> list[str]:
    """The status as lines: the daemon, a table of nodes (when the engine reports them),
    a table of env workers (with the node each runs on, when known)."""
    lines = [_daemon_line(status["daemon"])]
    nodes = status.get("nodes") or []
    if nodes:
        lines += ["", *_table(_node_rows(nodes))]
    lines += ["", *_table(_env_rows(status["envs"], nodes))]
    return lines


def _daemon_line(daemon: dict[str, Any]) -> str:
    line = (
        f"daemon  pid {daemon['pid']}  port {daemon['port']}  up {daemon['uptime_seconds']}s  "
        f"runhouse {daemon['runhouse']}  python {daemon['python']}  "
        f"running calls {daemon['running_calls']}"
    )
    if daemon.get("engine"):
        line += f"  engine {daemon['engine']}"
    if daemon.get("ray_address"):
        line += f" (Ray at {daemon['ray_address']})"
    return line


def _node_rows(nodes: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        ("NODE", "HEAD", "ALIVE", "CPU", "GPU", "MEMORY", "OTHER", "LOAD", "WORKERS")
    ]
    for node in sorted(nodes, key=lambda n: (not n.get("head"), str(n.get("address")))):
        total = node.get("resources") or {}
        free = node.get("available")
        load = node.get("load_1m")
        other = [
            f"{name} {_amount(free, total, name)}"
            for name in sorted(total)
            if name not in ("CPU", "GPU", "memory", *_HIDDEN)
            and not name.startswith(_HIDDEN_PREFIXES)
        ]
        rows.append(
            (
                str(node.get("address") or node.get("id") or "?"),
                "yes" if node.get("head") else "-",
                "yes" if node.get("alive") else "no",
                _amount(free, total, "CPU"),
                _amount(free, total, "GPU"),
                _amount(free, total, "memory", scale=2**30, unit=" GiB"),
                ", ".join(other) or "-",
                "-" if load is None else f"{load:.2f}",
                ", ".join(node.get("workers") or []) or "-",
            )
        )
    return rows


def _amount(
    free: dict[str, Any] | None, total: dict[str, Any], name: str, scale: float = 1, unit: str = ""
) -> str:
    """``available/total`` (free first: what a new worker can still get), or ``-``."""
    if name not in total:
        return "-"
    whole = _number(total[name] / scale)
    if free is None:
        return f"{whole}{unit}"
    return f"{_number(free.get(name, 0) / scale)}/{whole}{unit} free"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _env_rows(envs: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    addresses = {n.get("id"): n.get("address") for n in nodes}
    placed = bool(nodes)
    header = ("ENV", "WORKER PID", *(["NODE"] if placed else []), "STATE", "MEMORY", "OBJECTS")
    rows: list[tuple[str, ...]] = [header]
    for env in envs:
        workers = env.get("workers") or ([env["worker"]] if env.get("worker") else [])
        several = len(workers) > 1 or (env.get("replicas") or 1) > 1
        keys = ", ".join(env["keys"]) or "-"
        for i, worker in enumerate(workers or [env.get("worker") or {}]):
            name = f"{env['name']}/{worker.get('replica', i)}" if several else env["name"]
            rss = worker.get("rss_bytes")
            node = worker.get("node_address") or addresses.get(worker.get("node")) or "-"
            rows.append(
                (
                    name,
                    str(worker.get("pid") or "-"),
                    *([str(node)] if placed else []),
                    worker_state(worker),
                    f"{rss / 2**20:.0f} MiB" if rss else "-",
                    keys if i == 0 else "",
                )
            )
    return rows


def worker_state(worker: dict[str, Any]) -> str:
    """A worker's state for people (older daemons report none: a worker listed runs)."""
    state = worker.get("state", "running" if worker else "-")
    if state == "stopped" and worker.get("reason"):
        return f"stopped ({worker['reason']})"
    if worker.get("responding") is False:
        return "not responding"
    return str(state)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
