"""Package boundaries: the layout table of docs/layout.md as tests.

Two kinds of check. The static one reads every module of ``model``, ``sim``, ``rtl`` and
``boards`` with :mod:`ast` and lists every import, including those inside functions (an import
hidden in a function body is still a dependency): who may import whom, no import of another
module's private name, no import circles. The dynamic one imports the packages in a fresh
interpreter and looks at what got loaded (``sim``, ``rtl`` and ``boards`` run without PyTorch).
Each check is also run on a small tree that breaks it, so that none of them can pass vacuously.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "sim", "rtl", "boards", "polychrony_cli")
#: Allowed first-party imports per package: a prefix list (``model.ir`` allows its submodules).
#: Third-party imports are not restricted here except torch, which the dynamic test covers.
ALLOWED = {
    "model": ("model",),
    "sim": ("sim", "model.ir"),
    "rtl": ("rtl", "model.ir"),
    "boards": ("boards", "rtl", "model.ir"),
    "polychrony_cli": ("polychrony_cli", "model", "sim", "rtl", "boards"),
}
FIRST_PARTY = PACKAGES + ("bench", "tests", "polychrony_cli")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    """The absolute name an ``from ... import`` refers to."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_pkg:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (imports for annotations
    only, which never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and \
                    child.test.id == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def imports(root: Path, packages=PACKAGES) -> dict[str, list[tuple[str, str, int]]]:
    """{module: [(imported module, imported name or "", line)]} for every first-party import."""
    out = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            mod = _module_name(root, path)
            tree = ast.parse(path.read_text(), str(path))
            found = []
            for node in _runtime_nodes(tree):
                if isinstance(node, ast.Import):
                    found += [(a.name, "", node.lineno) for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    target = _resolve(mod, path.name == "__init__.py", node)
                    found += [(target, a.name, node.lineno) for a in node.names]
            out[mod] = [f for f in found if f[0].split(".")[0] in FIRST_PARTY]
    return out


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _submodule(graph: dict, target: str, name: str) -> str:
    """``from target import name`` imports the module ``target.name`` when there is one."""
    return f"{target}.{name}" if name and f"{target}.{name}" in graph else target


def layering_breaks(graph: dict) -> list[str]:
    """Imports that cross the layout table's boundaries."""
    bad = []
    for mod, found in graph.items():
        allowed = ALLOWED[mod.split(".")[0]]
        for target, name, line in found:
            full = _submodule(graph, target, name)
            if not any(_under(full, a) or _under(target, a) for a in allowed):
                bad.append(f"{mod}:{line} imports {full}")
    return bad


def private_imports(graph: dict) -> list[str]:
    """``from a import _b`` where ``_b`` is a name private to module ``a`` (not a submodule)."""
    bad = []
    for mod, found in graph.items():
        for target, name, line in found:
            if name.startswith("_") and not name.startswith("__") and \
                    f"{target}.{name}" not in graph and target != mod:
                bad.append(f"{mod}:{line} imports the private {target}.{name}")
    return bad


def circles(graph: dict) -> list[list[str]]:
    """Import circles between modules (strongly connected components of more than one module;
    a package's ``__init__`` re-exporting its own modules does not count)."""
    edges = {m: set() for m in graph}
    for mod, found in graph.items():
        for target, name, _ in found:
            full = _submodule(graph, target, name)
            if full in graph and full != mod and not _under(full, mod):
                edges[mod].add(full)
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):  # Tarjan's algorithm, recursive: the graph has a few hundred modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_packages_import_only_what_the_layout_table_allows():
    assert layering_breaks(imports(ROOT)) == []


def test_no_module_imports_another_modules_private_names():
    """Nor do the tests: what a test needs is public."""
    assert private_imports(imports(ROOT, PACKAGES + ("tests",))) == []


def test_no_import_circles():
    assert circles(imports(ROOT)) == []


def test_the_static_checks_can_fail(tmp_path):
    """A tree that breaks each rule once: every check must name its break."""
    files = {
        "model/__init__.py": "",
        "model/ir/__init__.py": "from .types import Net\n",
        "model/ir/types.py": "class Net: ...\n",
        "model/a.py": "def f():\n    from model.b import g\n",
        "model/b.py": "from model import a\ndef g(): ...\n",
        "model/c.py": "def h():\n    import sim.x\n",
        "sim/__init__.py": "",
        "sim/x.py": "from model.ir import Net\nfrom model.a import f\n",
        "rtl/__init__.py": "",
        "rtl/y.py": "from model.ir.types import Net\nfrom .z import _helper\n",
        "rtl/z.py": "def _helper(): ...\n",
        "boards/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = imports(tmp_path)
    assert layering_breaks(graph) == ["model.c:2 imports sim.x", "sim.x:2 imports model.a"]
    assert private_imports(graph) == ["rtl.y:2 imports the private rtl.z._helper"]
    assert circles(graph) == [["model.a", "model.b"]]


def _python_prints_ok(code: str) -> None:
    """Run ``code`` in a fresh interpreter and require that it printed ``ok``."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_sim_rtl_boards_do_not_import_torch():
    code = ("import sys, importlib, pkgutil\n"
            "import model, model.ir\n"
            "for pkg in ('sim', 'rtl', 'boards'):\n"
            "    m = importlib.import_module(pkg)\n"
            "    for info in pkgutil.walk_packages(m.__path__, pkg + '.'):\n"
            "        importlib.import_module(info.name)\n"
            "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
            "assert not bad, bad\n"
            "print('ok')\n")
    _python_prints_ok(code)


def test_the_check_above_can_fail():
    """Guard against a vacuous check: importing the trainer does pull torch in."""
    _python_prints_ok("import sys, model.wm; assert 'torch' in sys.modules; print('ok')")


def test_sim_does_not_import_amaranth():
    code = ("import sys, importlib, pkgutil, sim\n"
            "for info in pkgutil.walk_packages(sim.__path__, 'sim.'):\n"
            "    importlib.import_module(info.name)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('amaranth', 'rtl'))\n"
            "assert not bad, bad\n"
            "print('ok')\n")
    _python_prints_ok(code)
