"""The import graph keeps the shape README's drawing promises.

Every ``.py`` file of our packages is parsed (not imported): every ``import`` counts, at
module level, inside functions and under ``if TYPE_CHECKING:`` alike, because a cycle hidden
in a function is still a cycle for whoever reads or moves the code. From that graph:

- no cycle between files, and none between top-level packages;
- ``contract`` and ``routing`` import nothing of ours; ``config`` and ``storage`` only the
  contract; ``hub`` never the layers above it; the console never storage or channels;
- a channel folder imports only the contract and third-party code, never another channel;
- only the composition root (``server``) knows the channel registry, and only the demo and
  the benchmarks import the channels' ``testing`` fakes.

Each rule has a companion test on a small made-up graph, so none can pass vacuously.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "contract",
    "config",
    "storage",
    "routing",
    "hub",
    "channels",
    "agent_console",
    "server",
    "benchmarks",
)
Graph = Mapping[str, set[str]]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_files() -> dict[str, Path]:
    """Our modules by dotted name (not what a virtualenv under a package holds: the peer's
    for ``hub bench mail`` lives in ``benchmarks/peers/.venv``)."""
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
    }


def _imported_names(tree: ast.AST, package: str) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            # "from a.b import c" may import the module a.b.c or the name c of a.b.
            yield from (f"{base}.{alias.name}" for alias in node.names)
            yield base


def import_graph(files: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (nearest existing module of each name)."""
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for imported in _imported_names(ast.parse(path.read_text(), str(path)), package):
            while imported and imported not in files:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph.get(start, ())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def package_graph(graph: Graph) -> dict[str, set[str]]:
    """Top-level package -> the other top-level packages it imports."""
    packages: dict[str, set[str]] = {}
    for source, targets in graph.items():
        top = source.split(".")[0]
        packages.setdefault(top, set()).update(
            t.split(".")[0] for t in targets if t.split(".")[0] != top
        )
    return packages


def _top(module: str) -> str:
    return module.split(".")[0]


def _channel(module: str) -> str | None:
    """The channel folder a module belongs to (``channels.telegram.adapter`` -> telegram)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "channels" and len(parts) > 2 else None


# What each top-level package may import of ours, besides itself.
ALLOWED: dict[str, set[str]] = {
    "contract": set(),
    "routing": set(),
    "config": {"contract"},
    "storage": {"contract"},
    "hub": {"contract", "config", "storage", "routing"},
    "agent_console": {"contract", "config", "hub", "routing"},
    "channels": {"contract"},
    "server": set(PACKAGES) - {"server", "benchmarks"},
    "benchmarks": set(PACKAGES) - {"benchmarks"},
}


def layer_violations(graph: Graph) -> list[str]:
    """Imports that go against ``ALLOWED``."""
    return sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if _top(target) != _top(source) and _top(target) not in ALLOWED[_top(source)]
    )


def channel_violations(graph: Graph) -> list[str]:
    """A channel importing another channel, or channel-level modules nobody else may use."""
    bad = []
    for source, targets in graph.items():
        for target in targets:
            mine, theirs = _channel(source), _channel(target)
            if mine and theirs and mine != theirs:
                bad.append(f"{source} -> {target}: one channel imports another")
            if target == "channels.registry" and _top(source) != "server":
                bad.append(f"{source} -> {target}: only the composition root reads the registry")
            is_fake = ".testing" in target and _top(target) == "channels"
            trusted = source == "server.demo" or _top(source) == "benchmarks"
            if is_fake and not trusted and ".testing" not in source:
                bad.append(f"{source} -> {target}: fakes and simulators stay out of production")
    return sorted(bad)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(module_files())


def test_the_graph_covers_every_package(graph: dict[str, set[str]]) -> None:
    assert {_top(m) for m in graph} == set(PACKAGES)
    assert len(graph) > 120
    # Function-level imports are seen (the CLI imports its subcommands lazily).
    assert sum(len(t) for t in graph.values()) > 400


def test_no_import_cycle_between_files(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_no_import_cycle_between_packages(graph: dict[str, set[str]]) -> None:
    assert cycles(package_graph(graph)) == []


def test_every_package_imports_only_the_layers_below_it(graph: dict[str, set[str]]) -> None:
    assert layer_violations(graph) == []


def test_channels_stay_in_their_folders(graph: dict[str, set[str]]) -> None:
    assert channel_violations(graph) == []


# The checker itself, on made-up graphs and files.


def _write(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    paths = {}
    for name, text in files.items():
        path = tmp_path / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths[name] = path
    return paths


def test_function_level_relative_and_type_checking_imports_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    files = _write(
        tmp_path,
        {
            "hub.a": "def f():\n    from hub import b\n",
            "hub.b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import X\n",
            "hub.c": "import hub.a\n",
        },
    )
    graph = import_graph(files)
    assert graph == {"hub.a": {"hub.b"}, "hub.b": {"hub.c"}, "hub.c": {"hub.a"}}
    assert cycles(graph) == [["hub.a", "hub.b", "hub.c"]]


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"a"}}, []),
    ],
)
def test_cycles_are_found_and_only_cycles(graph: Graph, expected: list[list[str]]) -> None:
    assert cycles(graph) == expected


@pytest.mark.parametrize(
    ("check", "graph", "needle"),
    [
        (layer_violations, {"contract.errors": {"hub.uow"}}, "contract.errors -> hub.uow"),
        (layer_violations, {"routing.core": {"storage.models"}}, "routing.core"),
        (layer_violations, {"hub.uow": {"channels.registry"}}, "hub.uow -> channels"),
        (layer_violations, {"hub.uow": {"agent_console.gateway"}}, "hub.uow"),
        (layer_violations, {"agent_console.views": {"storage.models"}}, "agent_console"),
        (layer_violations, {"channels.sms.adapter": {"hub.web.auth"}}, "channels.sms"),
        (layer_violations, {"config.settings": {"hub.uow"}}, "config.settings"),
        (channel_violations, {"channels.a.x": {"channels.b.y"}}, "one channel imports"),
        (channel_violations, {"hub.app": {"channels.registry"}}, "composition root"),
        (channel_violations, {"channels.a.adapter": {"channels.a.testing.fake"}}, "fakes"),
    ],
)
def test_each_rule_catches_its_violation(
    check: Callable[[Graph], list[str]], graph: Graph, needle: str
) -> None:
    assert any(needle in line for line in check(graph))


def test_allowed_imports_are_not_flagged() -> None:
    graph = {
        "channels.a.adapter": {"contract.channel", "channels.a.payloads"},
        "channels.a.testing.sim": {"channels.a.testing.fake"},
        "server.demo": {"channels.a.testing.sim", "channels.registry"},
        "hub.uow": {"storage.models", "contract.errors", "routing.core"},
    }
    assert layer_violations(graph) == []
    assert channel_violations(graph) == []
