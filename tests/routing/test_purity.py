"""The routing core stays pure: no I/O, no clock, no randomness, nothing else of the hub."""

from __future__ import annotations

import ast
from pathlib import Path

import routing

FORBIDDEN = {
    "aiohttp",
    "sqlalchemy",
    "asyncio",
    "time",
    "datetime",
    "socket",
    "random",
    "hub",
    "storage",
    "channels",
    "agent_console",
    "config",
    "benchmarks",
}
# The simulator may keep a clock (simpy), draw random numbers and use processes.
EXEMPT = {"sim.py"}
ROUTING = Path(routing.__file__).parent


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            roots.add("__import__")
    return roots


def test_routing_modules_import_nothing_impure() -> None:
    modules = sorted(p for p in ROUTING.glob("*.py") if p.name not in EXEMPT)
    assert len(modules) >= 8
    offenders = {
        p.name: sorted(imported_roots(p) & (FORBIDDEN | {"__import__", "importlib"}))
        for p in modules
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_the_scan_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom datetime import datetime\nfrom hub.errors import NotFound\n")
    assert imported_roots(bad) >= {"time", "datetime", "hub"}


def test_relative_imports_stay_inside_the_package(tmp_path: Path) -> None:
    mod = tmp_path / "rel.py"
    mod.write_text("from . import models\nfrom .core import Router\n")
    assert imported_roots(mod) == set()
