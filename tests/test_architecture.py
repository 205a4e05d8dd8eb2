"""The one-way layers of ARCHITECTURE.md, enforced: the import-linter contract in
pyproject.toml must hold (``make lint`` runs the same check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_contract_holds():
    pytest.importorskip("importlinter")
    done = subprocess.run([sys.executable, "-c",
                           "import sys; from importlinter.cli import lint_imports; "
                           "sys.exit(lint_imports(no_cache=True))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def _module_imports(package: Path) -> dict[str, set[str]]:
    """module -> the mixmio modules it imports anywhere (function bodies and TYPE_CHECKING
    blocks included), from the AST."""
    import ast

    mods = {}
    for p in package.rglob("*.py"):
        parts = p.relative_to(package.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for a in node.names:
                    cand = f"{target}.{a.name}"
                    edges[m].add(cand if cand in mods else target)
            elif isinstance(node, ast.Import):
                edges[m].update(a.name for a in node.names)
    return {m: {t for t in ts if t in mods and t != m} for m, ts in edges.items()}


def test_upper_layers_have_no_import_cycle():
    """api, inference and results import one way even inside a layer and inside functions
    (import-linter's layers contract does not see cycles within a layer)."""
    edges = _module_imports(ROOT / "mixmio")
    upper = ("mixmio.api", "mixmio.inference", "mixmio.results")
    nodes = [m for m in edges if m.startswith(upper)]
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(m, path):
        state[m] = 1
        for t in sorted(edges[m]):
            if not t.startswith(upper):
                continue
            if state.get(t) == 1:
                cycle.extend(path[path.index(t):] + [m, t] if t in path else [m, t])
                return True
            if t not in state and visit(t, path + [m]):
                return True
        state[m] = 2
        return False

    for m in nodes:
        if m not in state and visit(m, []):
            break
    assert not cycle, " -> ".join(cycle)


def test_fit_methods_reach_inference_through_the_registry():
    """fit.bootstrap(), fit.stability() and the plots delegate through
    mixmio.results._methods, which import mixmio fills (no results -> inference import)."""
    import mixmio  # noqa: F401
    from mixmio import inference
    from mixmio.inference import glmer, plots
    from mixmio.results._methods import METHODS, method

    assert METHODS["bootstrap"] is inference.bootstrap
    assert METHODS["stability"] is inference.stability
    assert METHODS["subset_bootstrap"] is inference.subset_bootstrap
    assert METHODS["bootstrap_glmer"] is glmer.bootstrap_glmer
    assert METHODS["stability_glmer"] is glmer.stability_glmer
    for name in ("plot_effects", "plot_funnel", "plot_clusters"):
        assert METHODS[name] is getattr(plots, name)
    with pytest.raises(RuntimeError, match="import mixmio.inference"):
        method("no such method")
