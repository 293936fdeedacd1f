"""The shape of the code: which layer may import which, no import cycles, small modules.

Rule: a module imports only modules of its own layer or of a lower one (``LAYERS``, lowest
first, the same table as the picture in ``docs/architecture.md``); every import counts,
at the top of a module or inside a function, and so does ``importlib.import_module`` with
a literal name. Only ``if TYPE_CHECKING:`` imports are left out of the cycle check, because
they never run; they still count for the layering, since a type names a dependency. A new
module must be placed in the table before the test passes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "idsp": ROOT / "platform" / "idsp",
    "legal_ethics": ROOT / "legal_ethics",
    "casuistiek": ROOT / "casuistiek",
}
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80

# Lowest first, the same table as docs/architecture.md. Patterns are dotted names where
# ``*`` stands for one name and ``**`` for any number (also none); a module belongs to the
# layer of its most specific matching pattern (most literal names, then fewest ``**``), so
# ``legal_ethics.profiles`` sits above the rest of ``legal_ethics.**``.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("idsp.errors", "idsp.files", "idsp.defaults", "idsp.listener")),
    ("service link", ("idsp.service.link",)),
    ("config", ("idsp.config", "idsp.keys")),
    ("case file", ("idsp.case_file",)),
    ("data and identifiers", ("idsp.data", "idsp.privacy.**", "idsp.scanning")),
    ("quality", ("idsp.quality.**",)),
    ("ethics records and gate", ("legal_ethics.**",)),
    ("case kit checklist items", ("casuistiek", "casuistiek.*", "casuistiek.*.ethics")),
    ("ethics profiles", ("legal_ethics", "legal_ethics.profiles", "legal_ethics.register",
                         # they compare the checklist with the one the profile gives (issue 13)
                         "legal_ethics.gate", "legal_ethics.workflow", "legal_ethics.render")),
    ("tracking", ("idsp.tracking.**",)),
    ("case facade", ("idsp.case",)),
    ("public API", ("idsp",)),
    ("case kits", ("casuistiek.**",)),
    ("case projects", ("idsp.case_template", "idsp.case_index", "idsp.case_projects", "idsp.case_fleet")),
    ("hub parts", ("idsp.hub.**", "idsp.doctor")),
    ("platform service", ("idsp.service.**",)),
    ("hub assembly", ("idsp.hub.configurer", "idsp.hub.supervisor")),
    ("deploy", ("idsp.deploy.**",)),
    ("cli", ("idsp.cli.**",)),
]


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    path: Path
    line: int
    typing_only: bool

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _module_name(package: str, folder: Path, path: Path) -> str:
    parts = [package, *path.relative_to(folder).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the distribution, by dotted name."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[_module_name(package, folder, path)] = path
    return found


def _ours(name: str) -> str | None:
    """The longest known module that ``name`` is or lies in, if it is one of ours."""
    known = modules()
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _typing_only_nodes(tree: ast.AST) -> set[int]:
    nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                nodes.update(id(n) for n in ast.walk(child))
    return nodes


def _targets(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = module.split(".")
            anchor = anchor if is_package else anchor[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            yield f"{base}.{alias.name}" if _ours(f"{base}.{alias.name}") == f"{base}.{alias.name}" else base
    elif isinstance(node, ast.Call) and _is_import_module(node.func) and node.args:
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            yield arg.value


def _is_import_module(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module"
    )


@cache
def imports() -> tuple[Import, ...]:
    """Every import of one of our modules by another, top-level and function-level."""
    found = []
    for module, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        typing_only = _typing_only_nodes(tree)
        for node in ast.walk(tree):
            for target in _targets(node, module, path.name == "__init__.py"):
                ours = _ours(target)
                if ours is not None and ours != module:
                    found.append(Import(module, ours, path, node.lineno, id(node) in typing_only))  # type: ignore[attr-defined]
    return tuple(found)


def _matches(pattern: list[str], name: list[str]) -> bool:
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(rest, name[i:]) for i in range(len(name) + 1))
    return bool(name) and head in ("*", name[0]) and _matches(rest, name[1:])


def _specificity(pattern: list[str]) -> tuple[int, int, int]:
    literal = sum(p not in ("*", "**") for p in pattern)
    return literal, pattern.count("*"), -pattern.count("**")


def layers_of(module: str) -> set[int]:
    """The layers whose most specific pattern matches ``module`` (one, unless ambiguous)."""
    best: tuple[int, int, int] | None = None
    found: set[int] = set()
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            parts = pattern.split(".")
            if not _matches(parts, module.split(".")):
                continue
            score = _specificity(parts)
            if best is None or score > best:
                best, found = score, {index}
            elif score == best:
                found.add(index)
    return found


def layer_of(module: str) -> int | None:
    found = layers_of(module)
    return next(iter(found)) if len(found) == 1 else None


def test_every_module_has_one_layer():
    missing = [m for m in modules() if not layers_of(m)]
    assert not missing, f"place these modules in LAYERS of {Path(__file__).name}: {missing}"
    names = [name for name, _ in LAYERS]
    twice = {m: [names[i] for i in sorted(layers_of(m))] for m in modules() if len(layers_of(m)) > 1}
    assert not twice, f"these modules match patterns of several layers equally well: {twice}"


def test_the_patterns_place_modules_as_documented():
    names = [name for name, _ in LAYERS]
    where = {m: names[layer_of(m)] for m in (  # type: ignore[index]
        "legal_ethics", "legal_ethics.profiles", "legal_ethics.gate", "casuistiek",
        "casuistiek.ce_markering", "casuistiek.ce_markering.ethics", "casuistiek.ce_markering.pipeline",
        "idsp", "idsp.privacy", "idsp.privacy.check", "idsp.cli.case",
    )}
    assert where == {
        "legal_ethics": "ethics profiles", "legal_ethics.profiles": "ethics profiles",
        "legal_ethics.gate": "ethics profiles", "casuistiek": "case kit checklist items",
        "casuistiek.ce_markering": "case kit checklist items",
        "casuistiek.ce_markering.ethics": "case kit checklist items",
        "casuistiek.ce_markering.pipeline": "case kits", "idsp": "public API",
        "idsp.privacy": "data and identifiers", "idsp.privacy.check": "data and identifiers",
        "idsp.cli.case": "cli",
    }


def test_no_module_imports_a_higher_layer():
    names = [name for name, _ in LAYERS]
    wrong = []
    for imp in imports():
        low, high = layer_of(imp.source), layer_of(imp.target)
        if low is not None and high is not None and high > low:
            wrong.append(
                f"{imp.where}: {imp.source} ({names[low]}) imports {imp.target} ({names[high]})"
            )
    assert not wrong, "a lower layer imports a higher one:\n" + "\n".join(wrong)


def test_docs_show_the_same_layers():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("| layer (lowest first) |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:] if line.startswith("|")]
    assert rows == [name for name, _ in LAYERS], "docs/architecture.md and LAYERS disagree"
    for name, _ in LAYERS:
        assert f'["{name}<br/>' in text, f"the picture in docs/architecture.md lacks layer {name!r}"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def _path_in(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One cycle through the component's first module, for the message."""
    members = set(component)
    start = component[0]
    seen = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(edges.get(node, ())):
            if child == start:
                return [*seen[node], start]
            if child in members and child not in seen:
                seen[child] = [*seen[node], child]
                queue.append(child)
    return component


def test_no_import_cycle():
    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for imp in imports():
        if not imp.typing_only:
            edges.setdefault(imp.source, set()).add(imp.target)
            where.setdefault((imp.source, imp.target), imp.where)
    messages = []
    for component in _cycles(edges):
        path = _path_in(component, edges)
        steps = [f"{a} -> {b} ({where[(a, b)]})" for a, b in zip(path, path[1:], strict=False)]
        messages.append(" | ".join(steps))
    assert not messages, "import cycles (function-level imports count):\n" + "\n".join(messages)


def test_the_cycle_finder_finds_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _path_in(["a", "b", "c"], edges) == ["a", "b", "c", "a"]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_and_string_imports_count(tmp_path):
    source = (
        "import importlib\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from idsp.cli import app\n"
        "def f():\n"
        "    from idsp import errors\n"
        "    return importlib.import_module('idsp.config')\n"
    )
    tree = ast.parse(source)
    typing_only = _typing_only_nodes(tree)
    got = {
        (target, id(node) in typing_only)
        for node in ast.walk(tree)
        for target in _targets(node, "idsp.files", False)
        if target.startswith("idsp")
    }
    assert got == {("idsp.cli", True), ("idsp.errors", False), ("idsp.config", False)}


def _string_imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``import_module``/``__import__`` calls whose name is, or starts as, one of ours."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        if not (_is_import_module(func) or (isinstance(func, ast.Name) and func.id == "__import__")):
            continue
        arg = node.args[0]
        if isinstance(arg, ast.JoinedStr):
            first = arg.values[0] if arg.values else None
            text = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
        elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            text = arg.value
        else:
            continue
        if text.split(".")[0] in PACKAGES:
            yield node.lineno, text


def test_our_modules_import_each_other_directly_not_by_name():
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {text!r} by name"
        for path in modules().values()
        for line, text in _string_imports(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not found, "use a plain import statement (a renamed module must fail loudly):\n" + "\n".join(found)


def test_the_string_import_finder_sees_literals_and_f_strings():
    tree = ast.parse("import importlib\nimportlib.import_module(f'idsp.cli.{x}')\n"
                     "importlib.import_module('legal_ethics')\nimportlib.import_module(f'mlflow.{x}')\n")
    assert [text for _, text in _string_imports(tree)] == ["idsp.cli.", "legal_ethics"]


def test_no_module_over_600_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {long}"


def test_no_function_over_80_lines():
    long = []
    for path in modules().values():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = (node.end_lineno or node.lineno) - first + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
