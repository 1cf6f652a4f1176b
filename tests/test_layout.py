"""The package layout shows the flow: stage folders import only folders below them, never above,
and no two modules import each other (directly or around a loop)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "include" / "hiresync"

# Bottom to top. A folder may import itself and anything earlier in this list, nothing later.
LAYERS = ["errors", "jsonfast", "heap", "helper_process", "background_server", "config", "hub", "privacy", "ingest", "mapping",
          "contract", "delivery", "load", "audit", "monitor", "report", "pipeline", "tools",
          "cli", "demo", "dev_airflow"]


def _imports(path: Path) -> set[str]:
    """Every hiresync module a file imports at run time (TYPE_CHECKING blocks are type hints only)."""
    tree = ast.parse(path.read_text())
    type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                 and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hiresync"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("hiresync"))
    return out


def _module(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["hiresync", *parts])


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PKG.rglob("*.py") if "migrations" not in p.parts}
    return {mod: {m for m in _imports(p) if m in files and m != "hiresync"} for mod, p in files.items()}


def _layer(module: str) -> int:
    top = module.split(".")[1]
    return LAYERS.index(top)


def test_every_module_sits_in_a_known_layer():
    unknown = sorted({m.split(".")[1] for m in _graph() if len(m.split(".")) > 1} - set(LAYERS))
    assert not unknown, f"add these to LAYERS in the right place: {unknown}"


def test_folders_import_only_downwards():
    upward = [(mod, dep) for mod, deps in _graph().items() if len(mod.split(".")) > 1
              for dep in deps if _layer(dep) > _layer(mod)]
    assert not upward, "imports pointing up the flow:\n" + "\n".join(f"{a} -> {b}" for a, b in upward)


def test_no_import_cycles():
    graph, state, cycles = _graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for dep in graph[node]:
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
