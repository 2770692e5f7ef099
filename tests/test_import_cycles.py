"""No import cycle anywhere in the project's packages: one module per concept, dependencies one way.

Every import counts — at module level, inside functions (a lazy import hides a cycle, it does not
remove it) and under TYPE_CHECKING — across edge_agent/, control_plane/, contract/ and natswire/
together (a cycle may run through two packages). Standard library only: the graph is read with `ast`.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge_agent", "control_plane", "contract", "natswire")


def _module(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str, modules: set[str]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from pkg import submodule` imports the submodule; `from mod import name`, the module.
            subs = {f"{target}.{a.name}" for a in node.names} & modules
            out.update(subs)
            if len(subs) < len(node.names):
                out.add(target)
    return out


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = {_module(p, root): p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")}
    return {m: {i for i in _imports(p, m, set(files)) if i in files and i != m} for m, p in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, deterministic order)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_finder_sees_a_cycle_through_a_lazy_relative_import(tmp_path: Path) -> None:
    pkg = tmp_path / "edge_agent"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from edge_agent import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")
    for other in PACKAGES[1:]:
        (tmp_path / other).mkdir()
    assert find_cycle(import_graph(tmp_path)) == ["edge_agent.a", "edge_agent.b", "edge_agent.a"]
    (pkg / "b.py").write_text("import json\n")
    assert find_cycle(import_graph(tmp_path)) is None


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 100  # the packages were found
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])
