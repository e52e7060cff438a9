"""The house rules, checked on the source: phase packages import only the layers below them,
the report layer imports neither JAX nor the theory, no import cycle, and the docs' results
schema is the one generated from jaxsym.core.records."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jaxsym"

#: what each phase package may import from jaxsym (itself included), at any level of a module
ALLOWED = {"core": {"core"}, "study": {"core", "study"},
           "engine": {"core", "study", "engine"}, "theory": {"core", "study", "theory"},
           "analysis": {"core", "study", "engine", "theory", "analysis"},
           "reporting": {"core", "study", "engine", "analysis", "reporting"}}


def _imports(path: Path) -> set[str]:
    """Every module a file imports (``from X import a`` counts ``X`` and ``X.a``), anywhere in
    the file (function-level imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    return {_module(p): p for p in PACKAGE.rglob("*.py")}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_phase_imports_only_the_layers_below(package):
    bad = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "jaxsym" or len(parts) < 2 or parts[1].startswith("_"):
                continue
            if parts[1] not in ALLOWED[package] and parts[1] != "__version__":
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_report_layer_imports_neither_jax_nor_the_theory():
    bad = [f"{p.relative_to(ROOT)}: {name}" for p in (PACKAGE / "reporting").rglob("*.py")
           for name in _imports(p)
           if name.split(".")[0] in ("jax", "jaxlib", "optax") or name.startswith("jaxsym.theory")]
    assert not bad, bad


def test_no_import_cycle():
    """The graph of jaxsym modules (function-level imports included) has no cycle."""
    modules = _modules()
    graph = {name: {m for m in _imports(path) if m in modules and m != name}
             for name, path in modules.items()}
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    # the top-level package is a lazy facade (``jaxsym.run`` imports jaxsym.api on first use,
    # never at import time); what the layers take from it is ``__version__``
    graph["jaxsym"] = set()
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(
                    stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_architecture_doc_holds_the_generated_results_schema():
    from jaxsym.core import records

    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    assert records.schema_markdown() in doc, (
        "docs/ARCHITECTURE.md is out of date: paste `python -m jaxsym.core.records`")
