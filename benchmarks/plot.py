"""PNG charts of the latest results (``hub bench --plot``): the cost curves and latency
percentiles, each hub figure beside its same-run baseline. Needs matplotlib (the ``plot``
extra); reads ``<results>/<suite>.json`` and writes ``<results>/plots/<chart>.png``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import results_dir

HUB, BASE = "#0b7285", "#adb5bd"


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _stamp(ax: Any, data: dict[str, Any]) -> None:
    machine = data.get("machine", {})
    cores = f"{machine.get('cpus', '?')} cores {machine.get('cpu', '')}"
    ax.annotate(
        f"{data.get('measured_at', '')} · {cores}",
        xy=(1, 1.01),
        xycoords="axes fraction",
        ha="right",
        va="bottom",
        fontsize=7,
        color="#868e96",
    )


def router(plt: Any, folder: Path) -> Any:
    data = _load(folder, "router")
    if data is None or not data.get("compare"):
        return None
    small, large = data["compare"], data
    fig, ax = plt.subplots(figsize=(6, 3.6))
    agents = [small["agents"], large["agents"]]
    ax.plot(agents, [small["us_per_decision"], large["us_per_decision"]], "o-", color=HUB)
    ax.set_xscale("log")
    ax.set_xlabel("agents on the floor")
    ax.set_ylabel("µs per routing decision")
    ax.set_title(
        loc="left",
        fontsize=10,
        label=f"Router: 10× the agents costs {data.get('cost_ratio')}× per decision",
    )
    ax.set_ylim(bottom=0)
    _stamp(ax, data)
    return fig


def history(plt: Any, folder: Path) -> Any:
    data = _load(folder, "history")
    if data is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sizes = [data["small_messages"], data["large_messages"]]
    for key, style in (("median", "o-"), ("p99", "s--")):
        values = [data["first_page_ms_small"][key], data["first_page_ms_large"][key]]
        ax.plot(sizes, values, style, color=HUB, label=key)
    ax.set_xscale("log")
    ax.set_xlabel("messages stored")
    ax.set_ylabel("first history page, ms")
    ax.set_title(
        loc="left",
        fontsize=10,
        label=f"History page: {data['ratio_median_large_over_small']}× at 100× the data",
    )
    ax.set_ylim(bottom=0)
    ax.legend()
    _stamp(ax, data)
    return fig


def fanout(plt: Any, folder: Path) -> Any:
    data = _load(folder, "fanout")
    if data is None:
        return None
    rows = data["results"]
    sockets = [r["sockets"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(sockets, [r["hub_spread_ms"] for r in rows], "o-", color=HUB, label="hub fan-out")
    ax.plot(
        sockets,
        [r["baseline_spread_ms"] for r in rows],
        "o-",
        color=BASE,
        label="websockets.broadcast",
    )
    ax.plot(
        sockets,
        [r["hub_last_ms"]["median"] for r in rows],
        "s--",
        color=HUB,
        alpha=0.5,
        label="hub, request → last socket",
    )
    ax.set_xlabel("console sockets")
    ax.set_ylabel("ms (median)")
    ax.set_title(loc="left", fontsize=10, label="One event to N sockets")
    ax.legend(fontsize=8)
    _stamp(ax, data)
    return fig


def scale(plt: Any, folder: Path) -> Any:
    data = _load(folder, "scale")
    if data is None or not data.get("rounds"):
        return None
    rounds = data["rounds"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.bar([str(r["processes"]) for r in rounds], [r["contacts_per_s"] for r in rounds], color=HUB)
    ax.set_xlabel("hub processes (PostgreSQL + Redis, same machine)")
    ax.set_ylabel("contacts/s")
    ax.set_title(loc="left", fontsize=10, label="Throughput vs processes")
    _stamp(ax, data)
    return fig


def latency(plt: Any, folder: Path) -> Any:
    lat, chat = _load(folder, "latency"), _load(folder, "chat")
    if lat is None and chat is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    keys = ["median", "p95" if lat else "p90", "p99"]
    series: list[tuple[str, dict[str, float], str]] = []
    if lat is not None:
        series.append((f"webhook → agent socket ({lat['agents']} agents)", lat["latency_ms"], HUB))
    if chat is not None:
        series.append(("web chat ack, hub", chat["hub"]["ack_ms"], "#5f3dc4"))
        series.append(("web chat ack, bare socket", chat["baseline"]["ack_ms"], BASE))
    width = 0.8 / len(series)
    for i, (label, values, colour) in enumerate(series):
        xs = [k + i * width for k in range(3)]
        ax.bar(
            xs,
            [values.get(k, values.get("p90", 0)) for k in keys],
            width,
            label=label,
            color=colour,
        )
    ax.set_xticks(
        [k + width * (len(series) - 1) / 2 for k in range(3)], ["median", "p95/p90", "p99"]
    )
    ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.set_title(loc="left", fontsize=10, label="Latency percentiles")
    ax.legend(fontsize=7)
    _stamp(ax, lat or chat or {})
    return fig


def ingest(plt: Any, folder: Path) -> Any:
    runs = [
        (db, _load(folder, name))
        for db, name in (("SQLite", "ingest"), ("PostgreSQL", "ingest_postgresql"))
    ]
    found = [(db, d) for db, d in runs if d is not None]
    if not found:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    xs = range(len(found))
    ax.bar([x - 0.2 for x in xs], [d["hub_per_s"] for _, d in found], 0.4, color=HUB, label="hub")
    ax.bar(
        [x + 0.2 for x in xs],
        [d["baseline_per_s"] for _, d in found],
        0.4,
        color=BASE,
        label="bare one-row handler",
    )
    ax.set_xticks(list(xs), [f"{db} ({d['ratio']}×)" for db, d in found])
    ax.set_ylabel("signed SMS webhooks/s")
    ax.set_title(loc="left", fontsize=10, label="Ingest: the whole pipeline vs one INSERT")
    ax.legend(fontsize=8)
    _stamp(ax, found[0][1])
    return fig


def mail(plt: Any, folder: Path) -> Any:
    data = _load(folder, "mail")
    if data is None or not data.get("peer", {}).get("per_s"):
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.bar(
        ["hub (SMTP)", "django-helpdesk (in-process)"],
        [data["hub"]["per_s"], data["peer"]["per_s"]],
        color=[HUB, BASE],
    )
    ax.set_ylabel("mails/s, stored and threaded")
    ax.set_title(
        loc="left",
        fontsize=10,
        label=f"Email ingest, same corpus: {data.get('ratio')}× (target 10×)",
    )
    _stamp(ax, data)
    return fig


CHARTS: dict[str, Callable[[Any, Path], Any]] = {
    "ingest": ingest,
    "mail": mail,
    "router": router,
    "history": history,
    "fanout": fanout,
    "scale": scale,
    "latency": latency,
}


def draw(folder: Path | None = None) -> list[Path]:
    """Every chart whose results exist; the PNGs written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = folder or results_dir()
    out = source / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, chart in CHARTS.items():
        fig = chart(plt, source)
        if fig is None:
            continue
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
