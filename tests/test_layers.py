"""The project's packages import each other without a cycle (audio/ at the ground floor; protocols/ above it;
the load side and target/ above those), and metrics/ is pure (no Locust, no gevent: the Locust adapters are
locust_adapters/), checked from the source's own import statements."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from orchestrator.local_stack import REPO_ROOT

NOT_PRODUCT = {"tests", "bench", "stack", "deploy", "results", "docs"}
NOT_IN_PURE_METRICS = {"locust", "gevent"}


def top_level_units(root: Path) -> set[str]:
    """Packages (folders of .py files) and top-level modules of the product."""
    folders = {p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.py")) and p.name not in NOT_PRODUCT}
    return folders | {p.stem for p in root.glob("*.py")}


def import_graph(root: Path) -> dict[str, dict[str, set[str]]]:
    """unit -> unit it imports -> the files that do (absolute imports between the product's own units)."""
    units = top_level_units(root)
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        unit = relative.parts[0] if len(relative.parts) > 1 else path.stem
        if unit not in units:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            for name in names:
                target = name.split(".")[0]
                if target in units and target != unit:
                    graph[unit][target].add(str(relative))
    return graph


def imported_modules(source: str) -> set[str]:
    """Every module a source imports (absolute imports, wherever they are: module level or in a function)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def forbidden_imports(folder: Path, forbidden: set[str]) -> dict[str, set[str]]:
    """file -> the modules it imports from the `forbidden` top-level packages."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        if bad := {name for name in imported_modules(path.read_text()) if name.split(".")[0] in forbidden}:
            found[str(path.relative_to(folder.parent))] = bad
    return found


def cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    """One cycle of the graph as a path a -> b -> ... -> a, or None (depth-first search, bounded by its size)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(unit: str) -> list[str] | None:
        state[unit] = 1
        path.append(unit)
        for imported in sorted(graph.get(unit, {})):
            if state.get(imported) == 1:
                return path[path.index(imported):] + [imported]
            if imported not in state and (found := visit(imported)):
                return found
        path.pop()
        state[unit] = 2
        return None

    for unit in sorted(graph):
        if unit not in state and (found := visit(unit)):
            return found
    return None


def test_the_packages_import_each_other_without_a_cycle():
    graph = import_graph(REPO_ROOT)
    found = cycle(graph)
    where = [sorted(graph[a][b]) for a, b in zip(found, found[1:])] if found else []
    assert found is None, f"import cycle {' -> '.join(found)}: {where}"
    assert "audio" in graph["protocols"] and not graph.get("audio"), dict(graph.get("audio", {}))  # the ground floor


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b": {"a.py"}}, "b": {"c": {"b.py"}}, "c": {"a": {"c.py"}}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b": {"a.py"}}, "b": {}}) is None


def test_metrics_is_pure():
    assert any((REPO_ROOT / "metrics").glob("*.py"))
    found = forbidden_imports(REPO_ROOT / "metrics", NOT_IN_PURE_METRICS)
    assert not found, f"metrics/ imports Locust or gevent (move the adapter to locust_adapters/): {found}"


def test_the_purity_check_finds_an_import(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "pure.py").write_text("import json\nfrom metrics.histogram import LatencyHistogram\n")
    (tmp_path / "metrics" / "plugin.py").write_text("import gevent\n\ndef f():\n    from locust.runners import MasterRunner\n")
    assert forbidden_imports(tmp_path / "metrics", NOT_IN_PURE_METRICS) == {"metrics/plugin.py": {"gevent", "locust.runners"}}
