"""The house rules, checked on the source: layers that only point down, no import circles, a leaf metrics package,
methods reached only through the registry, and docs/architecture.md's module table true of the tree.

Imports are read with ``ast`` (every import, including those inside functions), never by importing the code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "augan", "baselines")

# Bottom to top. A module may import modules of its own layer or below, never above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("bench.errors", "bench.registry", "bench.config", "bench.atomic", "bench.lock", "bench.cache", "bench.checkpoints", "bench.weights",
              "bench.translator", "bench.distributed", "bench.results", "bench.data")),
    ("metrics, statistics and the training loop", ("bench.metrics", "bench.stats", "bench.learned",
                                                    "bench.training_log")),
    ("methods, suites, downstream models", ("augan", "baselines", "bench.suites", "bench.downstream",
                                             "bench.substitute_weights")),
    ("scoring, launching, reports", ("bench.scoring", "bench.validation", "bench.launch", "bench.scaffold", "bench.conformance",
                                     "bench.report", "bench.protocol")),
    ("runs", ("bench.runner",)),
    ("commands, leaderboards", ("bench.train", "bench.external", "bench.leaderboard")),
    ("command line", ("bench.cli",)),
]


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Project modules that ``name`` imports (a ``from pkg import sub`` of a sub-module counts as that module)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:  # "bench.suites.base.Suite" -> "bench.suites.base"
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS here and to docs/architecture.md")
    return best


def test_every_module_has_a_layer():
    for m in MODULES:
        if m in PACKAGES:
            continue
        layer_of(m)


def test_layers_point_down():
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
              for m, targets in GRAPH.items() if m not in PACKAGES
              for t in targets if t not in PACKAGES and layer_of(t) > layer_of(m)]
    assert not upward, "imports that run up the layers:\n" + "\n".join(sorted(upward))


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    assert _cycles() == []


def test_cycle_finder_finds_a_planted_circle(monkeypatch):
    """The checker itself can fail: a planted runner <-> launch arrow (the circle this rule was written for)."""
    monkeypatch.setitem(GRAPH, "bench.launch", GRAPH["bench.launch"] | {"bench.runner"})
    assert ["bench.launch", "bench.runner"] in _cycles()


def test_metrics_is_a_leaf_of_pure_metric_code():
    orchestration = ("bench.suites", "bench.downstream", "bench.runner", "bench.report", "bench.results",
                     "bench.scoring", "bench.launch", "bench.train", "bench.cli", "augan", "baselines")
    bad = [f"{m} imports {t}" for m, targets in GRAPH.items() if m.startswith("bench.metrics")
           for t in targets if t.startswith(orchestration)]
    assert not bad, bad


def test_stats_is_a_leaf():
    """The statistics of comparisons import nothing of bench but each other: a reader checks them on their own."""
    bad = [f"{m} imports {t}" for m, targets in GRAPH.items() if m.startswith("bench.stats")
           for t in targets if not t.startswith("bench.stats")]
    assert not bad, bad


def test_bench_reaches_methods_only_through_the_registry():
    bad = [f"{m} imports {t}" for m, targets in GRAPH.items() if m.startswith("bench")
           for t in targets if t.split(".")[0] in ("augan", "baselines")]
    assert not bad, bad


SHARED = ("baselines.tf_exact", "baselines.two_autoencoders", "baselines.cyclegan_codebase", "baselines.antialiased_sampling",
          "baselines.patch_nce", "baselines.cut_codebase")


def test_methods_do_not_import_each_other():
    """What two methods share sits in a module both import, named for what it holds (not inside one of them)."""
    def method_of(m: str) -> str:
        parts = m.split(".")
        return parts[0] if parts[0] == "augan" else ".".join(parts[:2])

    methods = [m for m in GRAPH if m.split(".")[0] in ("augan", "baselines") and not m.startswith(SHARED)]
    bad = [f"{m} imports {t}" for m in methods for t in GRAPH[m]
           if t.split(".")[0] in ("augan", "baselines") and not t.startswith(SHARED) and t != "baselines"
           and method_of(t) != method_of(m)]
    assert not bad, bad
    shared_up = [f"{m} imports {t}" for m, targets in GRAPH.items() if m.startswith(SHARED)
                 for t in targets if t.split(".")[0] in ("augan", "baselines") and not t.startswith(SHARED)]
    assert not shared_up, shared_up


def _table_paths() -> list[str]:
    """Paths named in the first column of docs/architecture.md's module table (``a/b.py``, ``c.py`` shorthand
    resolves against the folder of the path before it)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    paths = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        folder = ""
        for p in re.findall(r"`([^`]+)`", first):
            if "/" in p.rstrip("/"):
                folder = p.rstrip("/").rsplit("/", 1)[0] + "/"
                paths.append(p)
            else:
                paths.append(folder + p)
    return paths


def test_module_table_matches_the_tree():
    listed = _table_paths()
    missing_on_disk = [p for p in listed if not (ROOT / p).exists()]
    assert not missing_on_disk, f"docs/architecture.md lists what does not exist: {missing_on_disk}"
    folders = [p for p in listed if p.endswith("/")]
    files = set(listed)
    unlisted = []
    for path in MODULES.values():
        rel = path.relative_to(ROOT).as_posix()
        if rel in files or any(rel.startswith(f) and f.count("/") >= 2 for f in folders):
            continue  # listed itself, or inside a listed sub-package (baselines/cyclegan/)
        if path.name == "__init__.py" and (path.parent.relative_to(ROOT).as_posix() + "/") in files:
            continue
        if path.name == "__init__.py" and path.stat().st_size < 200:
            continue  # an empty package marker
        unlisted.append(rel)
    assert not unlisted, f"modules missing from docs/architecture.md's table: {unlisted}"


@pytest.mark.parametrize("module", ["bench.metrics.fid_kid", "bench.scoring", "bench.cli"])
def test_graph_reads_imports_inside_functions(module):
    """Lazy imports count: the scorer imports the downstream models inside its functions."""
    assert GRAPH[module], module
    if module == "bench.scoring":
        assert "bench.downstream.synthetic_segmenter" in GRAPH[module]
