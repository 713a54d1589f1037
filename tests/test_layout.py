"""The tree shows the architecture, and the imports keep to it: the method (the top level of paperlib and nets/) and
storage (store/) never import the study, the plots or the notebook support; the plots never import the study;
nothing but the notebook support and the command line imports the notebook support; no module-level cycles;
``import paperlib`` imports no torch and no study code."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "paperlib"
FORBIDDEN = {  # layer -> layers it must never import
    "method": {"study", "plots", "notebook"},
    "store": {"study", "plots", "notebook"},
    "plots": {"study", "notebook"},
    "study": {"notebook"},
    "notebook": set(),
    "cli": set(),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("store", "study", "plots", "notebook"):
        return parts[1]
    return "cli" if module == "paperlib.__main__" else "method"


def imports(path: Path, module: str, top_level_only: bool) -> set[str]:
    """paperlib modules ``path`` imports (all of them, or only those imported when it is itself imported)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".")[: len(module.split(".")) - node.level + (path.name == "__init__.py")]
                base = ".".join(package + ([base] if base else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {name for name in found if name.split(".")[0] == "paperlib"}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_imports_run_one_way():
    wrong = [f"{module} ({layer(module)}) imports {name} ({layer(name)})"
             for module, path in MODULES.items() for name in imports(path, module, top_level_only=False)
             if name in MODULES and layer(name) in FORBIDDEN[layer(module)]]
    assert wrong == []


def test_no_module_level_import_cycles():
    graph = {m: {n for n in imports(p, m, top_level_only=True) if n in MODULES and n != m} for m, p in MODULES.items()}
    state, cycles = {}, []

    def visit(module, stack):
        state[module] = "open"
        for name in sorted(graph[module]):
            if state.get(name) == "open":
                cycles.append(stack[stack.index(name):] + [name])
            elif name not in state:
                visit(name, stack + [name])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_import_paperlib_is_light():
    code = ("import sys, paperlib; heavy = sorted(m for m in sys.modules if m == 'torch' or m.startswith('paperlib.'));"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout
    assert out.strip() == "[]"


def test_every_export_is_documented():
    import paperlib

    undocumented = [name for name in paperlib.__all__ if len((getattr(paperlib, name).__doc__ or "").strip()) < 40]
    assert undocumented == []
