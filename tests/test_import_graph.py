"""No circular imports between library modules: the graph of module-level imports (not those inside functions
or under ``if TYPE_CHECKING``, which run later or never) is acyclic."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "bandits", "engine", "scenarios", "solvers")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _top_level_imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [alias.name for alias in node.names]))
    return out


def import_graph() -> nx.DiGraph:
    modules = _modules()
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        for target, names in _top_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            for dep in submodules or ([target] if target in modules else []):
                if dep != name:
                    graph.add_edge(name, dep)
    return graph


def test_library_imports_are_acyclic():
    graph = import_graph()
    assert graph.number_of_nodes() > 150 and graph.number_of_edges() > 300  # the graph is really read
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"circular imports: {cycles}"


def test_a_cycle_would_be_found():
    graph = import_graph()
    graph.add_edge("scenarios.errors", "engine.engine")  # engine.engine reaches scenarios.errors
    assert any(len(c) > 1 for c in nx.strongly_connected_components(graph))
