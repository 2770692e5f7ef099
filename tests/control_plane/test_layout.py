"""The control plane's layering, checked on its import graph (every import counts, including those
inside functions and under TYPE_CHECKING): the domain is pure; route handlers hold no
SQL and reach neither the database nor the runtime; services never build the HTTP app.
Import cycles (this package and the others) are tests/test_import_cycles.py's."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "control_plane"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _all_imports(prefix: str) -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in PKG.rglob("*.py") if _module(p).startswith(prefix)}


def test_domain_is_pure() -> None:
    for mod, imps in _all_imports("control_plane.domain").items():
        bad = {i for i in imps if i.split(".")[0] in {"sqlalchemy", "fastapi", "nats", "httpx", "natswire"}
               or i.startswith(("control_plane.adapters", "control_plane.services", "control_plane.http"))}
        assert not bad, f"{mod} imports {bad}"


def test_http_layer_holds_no_sql_and_no_runtime() -> None:
    for mod, imps in _all_imports("control_plane.http").items():
        bad = {i for i in imps if i.split(".")[0] == "sqlalchemy"
               or i.startswith(("control_plane.adapters.db", "control_plane.runtime", "control_plane.app"))}
        assert not bad, f"{mod} imports {bad}"


def test_only_the_composition_root_builds_the_app() -> None:
    for mod, imps in _all_imports("control_plane").items():
        if mod in ("control_plane.runtime", "control_plane.app", "control_plane.cli") or mod.startswith(
                "control_plane.http"):
            continue
        bad = {i for i in imps if i.startswith(("control_plane.http", "control_plane.runtime", "control_plane.app"))}
        assert not bad, f"{mod} imports {bad}"
