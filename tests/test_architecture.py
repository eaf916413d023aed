"""The package's layering: no module imports a layer above its own, and no import cycle.

Every ``import privrec…`` in every module counts, including those inside functions (a lazy
import is still a dependency); imports under ``if TYPE_CHECKING:`` are annotations only and do
not count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Lowest first. A module may import its own layer and the layers below it.
LAYERS: list[tuple[str, ...]] = [
    (
        "privrec._version",
        "privrec.errors",
        "privrec.config_types",
        "privrec.progress",
        "privrec.cpus",
        "privrec.defence_names",
    ),
    ("privrec.artifacts",),
    ("privrec.data",),
    ("privrec.evaluation", "privrec.models"),
    ("privrec.training",),
    ("privrec.defences", "privrec.audit"),
    ("privrec.runs",),
    ("privrec.experiments",),
    ("privrec.api",),
    ("privrec.cli", "privrec.__main__"),
    ("privrec",),
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> int:
    best, best_len = None, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, top_level_only: bool) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST, depth: int) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub, depth)
                continue
            nested = depth + isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import) and not (top_level_only and depth):
                found.update(a.name for a in child.names if a.name.startswith("privrec"))
            elif isinstance(child, ast.ImportFrom) and not (top_level_only and depth):
                if child.level:  # relative import
                    base = module.rsplit(".", child.level)[0]
                    name = f"{base}.{child.module}" if child.module else base
                else:
                    name = child.module or ""
                if name.startswith("privrec"):
                    found.add(name)
            visit(child, nested)

    visit(tree, 0)
    return found


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    graph = {}
    for path in sorted((SRC / "privrec").rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[module] = _imports(tree, module, top_level_only)
    return graph


def test_no_module_imports_a_higher_layer():
    upward = []
    for module, imported in _graph(top_level_only=False).items():
        for target in imported:
            if _layer(target) > _layer(module):
                upward.append(f"{module} → {target}")
    assert not upward, "imports of a higher layer:\n" + "\n".join(sorted(upward))


def test_no_import_cycle():
    graph = _graph(top_level_only=False)
    modules = set(graph)

    def resolve(target: str) -> str | None:  # `from privrec.x import y` may name a package
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    edges = {
        m: {r for t in ts if (r := resolve(t)) is not None and r != m} for m, ts in graph.items()
    }
    # a package's __init__ re-exporting its submodules is not a cycle with them
    for m in edges:
        edges[m] = {t for t in edges[m] if not m.startswith(t + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_layer_check_sees_a_violation(tmp_path):
    """The checker itself: an upward import inside a function is found."""
    tree = ast.parse("def f():\n    from privrec.cli.app import app\n")
    assert _imports(tree, "privrec.data.x", top_level_only=False) == {"privrec.cli.app"}
    assert _layer("privrec.cli.app") > _layer("privrec.data.x")
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import privrec.api\n"
    )
    assert _imports(tree, "privrec.data.x", top_level_only=False) == set()


@pytest.mark.slow
def test_import_privrec_is_light():
    """``import privrec`` loads the curated API on first use, not torch at import."""
    code = "import sys, privrec; assert 'torch' not in sys.modules; privrec.train; privrec.Run"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_cli_import_leaves_warnings_display_alone():
    code = (
        "import warnings; before = warnings.showwarning; import privrec.cli.app; "
        "assert warnings.showwarning is before"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_fit_restores_torch_threads(tiny):
    import torch

    from privrec.data.split import leave_last_out
    from privrec.training import TrainConfig, Trainer

    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    cfg = TrainConfig(embedding_size=4, epochs=1, batch_size=1024, patience=0, num_threads=want)
    Trainer(cfg).fit(leave_last_out(tiny.interactions))
    assert torch.get_num_threads() == before
