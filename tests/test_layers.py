"""The house plan (docs/architecture.md) holds: every import of the package, function-level ones
included, goes to the same or a lower layer, no two packages import each other (directly or round
a cycle), and an entry point never imports another."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "robustgen"

# Lowest first. A unit is a subpackage (robustgen.eval) or a top-level module (robustgen.train).
LAYERS = [
    ("leaves", {"robustgen", "robustgen.errors", "robustgen.modes", "robustgen.files"}),
    ("domain and run record", {"robustgen.arch", "robustgen.attack", "robustgen.data", "robustgen.method",
                               "robustgen.regularizer", "robustgen.sparsity", "robustgen.corrupt",
                               "robustgen.record"}),
    ("evaluation and training", {"robustgen.eval", "robustgen.training"}),
    ("report", {"robustgen.report"}),
    ("Hydra glue", {"robustgen.cli"}),
    ("benchmarks", {"robustgen.bench"}),
    ("entry points", set()),  # every other top-level module, and every `__main__` module
]
# `python -m robustgen` is `python -m robustgen.train` under another name.
ALIASES = {("robustgen.__main__", "robustgen.train")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, module: str) -> list[tuple[str, int]]:
    """(imported robustgen module, line) for every import statement in the file, at any depth."""
    out = []
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from robustgen.x import y` may import the module robustgen.x.y
            out += [(f"{target}.{alias.name}", node.lineno) for alias in node.names
                    if (PACKAGE.parent / f"{target}.{alias.name}".replace(".", "/")).with_suffix(".py").is_file()
                    or (PACKAGE.parent / f"{target}.{alias.name}".replace(".", "/") / "__init__.py").is_file()]
            out.append((target, node.lineno))
    return [(name, line) for name, line in out if name == "robustgen" or name.startswith("robustgen.")]


def is_entry_point(module: str) -> bool:
    return module.endswith(".__main__") or (module.count(".") == 1 and module not in LAYERS[0][1]
                                           and module not in set().union(*(units for _, units in LAYERS)))


def unit(module: str) -> str:
    """The unit a module belongs to: its subpackage, or itself for a top-level module or an entry
    point inside a package (robustgen.corrupt.__main__ is not part of the corruption library)."""
    if module.endswith(".__main__"):
        return module
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def layer(module: str) -> int:
    if is_entry_point(module):
        return len(LAYERS) - 1
    for rank, (_, units) in enumerate(LAYERS):
        if module in units or unit(module) in units:
            return rank
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS and docs/architecture.md")


def graph(root: Path = PACKAGE) -> dict[str, list[tuple[str, int]]]:
    return {module_name(p): imports(p, module_name(p)) for p in sorted(root.rglob("*.py"))}


def violations(edges: dict[str, list[tuple[str, int]]]) -> list[str]:
    found = []
    for module, targets in edges.items():
        for target, line in targets:
            if layer(target) > layer(module):
                found.append(f"{module}:{line} imports {target}: a higher layer "
                             f"({LAYERS[layer(target)][0]} above {LAYERS[layer(module)][0]})")
            elif (is_entry_point(module) and is_entry_point(target) and unit(module) != unit(target)
                  and (module, target) not in ALIASES):
                found.append(f"{module}:{line} imports {target}: an entry point importing another")
    return found


def package_cycles(edges: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Strongly connected components of more than one unit in the unit-level import graph."""
    units: dict[str, set[str]] = {}
    for module, targets in edges.items():
        units.setdefault(unit(module), set()).update(unit(t) for t, _ in targets if unit(t) != unit(module))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in units.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(units):
        if node not in index:
            visit(node)
    return cycles


def test_every_import_goes_down_the_layers():
    assert violations(graph()) == []


def test_no_package_cycles():
    assert package_cycles(graph()) == []


def test_a_planted_upward_import_is_caught(tmp_path):
    """The checker itself: an attack reaching up into the training runtime, a function-level import
    from a data module into eval, and the cycle that makes, are each reported."""
    edges = graph()
    edges["robustgen.attack.pgd"] = edges["robustgen.attack.pgd"] + [("robustgen.training.module", 99)]
    edges["robustgen.data.datasets"] = edges["robustgen.data.datasets"] + [("robustgen.eval.outcomes", 7)]
    found = violations(edges)
    assert any(v.startswith("robustgen.attack.pgd:99 imports robustgen.training.module") for v in found)
    assert any(v.startswith("robustgen.data.datasets:7 imports robustgen.eval.outcomes") for v in found)
    assert any({"robustgen.data", "robustgen.eval"} <= set(cycle) for cycle in package_cycles(edges))


def test_function_level_imports_are_seen(tmp_path):
    source = tmp_path / "robustgen" / "attack" / "x.py"
    source.parent.mkdir(parents=True)
    source.write_text("def f():\n    if True:\n        from robustgen.report.runs import collect\n")
    assert ("robustgen.report.runs", 3) in imports(source, "robustgen.attack.x")


LIBRARIES = ["robustgen", "robustgen.attack", "robustgen.arch", "robustgen.data", "robustgen.method",
             "robustgen.regularizer", "robustgen.sparsity", "robustgen.corrupt", "robustgen.record", "robustgen.eval",
             "robustgen.training", "robustgen.report"]


def test_library_packages_load_no_hydra():
    """Only robustgen.cli (and what sits above it) loads Hydra or OmegaConf. The packages are imported
    one after another in one fresh process: the first that loads either is named."""
    code = ("import importlib, sys\n"
            f"for name in {LIBRARIES!r}:\n"
            "    importlib.import_module(name)\n"
            "    loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('hydra', 'omegaconf'))\n"
            "    if loaded:\n"
            "        sys.exit(f'import {name} loaded {loaded[:3]}')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-800:]
