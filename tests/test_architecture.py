"""The code's structure, checked: imports point one way, no cycles, no reaching into private names, and
every module docs/architecture.md names exists.

The layers, bottom up: ``schema`` (the catalog) ← ``adapters`` (the departments' sources) ← ``gateway``
← ``demo`` (an optional extra, found by the CLI through an entry point). grimp reads every import,
including those inside functions and under ``TYPE_CHECKING``, so a cycle cannot hide in either.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import grimp
import pytest

from gateway.pipeline import PASSES

ROOT = Path(__file__).parent.parent
PACKAGES = ("schema", "adapters", "gateway", "demo")
LAYER = {package: rank for rank, package in enumerate(PACKAGES)}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    edges = {module: sorted(graph.find_modules_directly_imported_by(module)) for module in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
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
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(edges[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_there_is_no_import_cycle(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == []


def test_imports_point_down_the_layers(graph: grimp.ImportGraph) -> None:
    upward = sorted(
        f"{module} -> {imported}"
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if LAYER[imported.split(".")[0]] > LAYER[module.split(".")[0]]
    )
    assert upward == []


def _python_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_no_module_imports_another_modules_private_names() -> None:
    reaching = []
    for path in _python_files():
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private and node.module != module:
                    reaching.append(f"{module}:{node.lineno} imports {', '.join(private)} from {node.module}")
    assert reaching == []


#: The core of the request pipeline: it runs every kind of root field through the RootNode protocol
#: (gateway/plan/plan.py) and never names a kind. Only the build stage chooses kinds.
CORE = ("gateway.execution", "gateway.pipeline.protect", "gateway.pipeline.fuse", "gateway.pipeline.bind",
        "gateway.service", "gateway.explain", "gateway.plan")  # fmt: skip
ROOT_KINDS = ("Namespace", "RootScan", "ForbiddenRoot", "Typename", "Introspection", "EntityRoot", "EntityQuery")


def test_the_core_never_names_a_kind_of_root_field(graph: grimp.ImportGraph) -> None:
    core = sorted(module for module in graph.modules if module.startswith(CORE))
    assert "gateway.execution.executor" in core and "gateway.service" in core
    reaching = sorted(
        f"{module} -> {imported}"
        for module in core
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.startswith("gateway.roots")
    )
    assert reaching == []
    asking = []
    for path in _python_files():
        if path.is_relative_to(ROOT / "gateway" / "roots"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance" and len(node.args) == 2:
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
                if names & set(ROOT_KINDS):
                    asking.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert asking == []


def test_every_package_is_installed_and_none_is_named_demo() -> None:
    """The wheel's packages are listed in pyproject.toml (the demo folder as ``fedgate_demo``): the list names
    every package folder, so a new one cannot be left out of an installation."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    renamed = {folder: name for name, folder in setuptools["package-dir"].items()}
    assert renamed == {"demo": "fedgate_demo"}
    folders = sorted(
        ".".join(path.parent.relative_to(ROOT).parts)
        for package in PACKAGES
        for path in (ROOT / package).rglob("__init__.py")
    )
    expected = sorted(renamed.get(folder.split(".")[0], folder) for folder in folders)
    assert sorted(setuptools["packages"]) == expected
    assert "demo" not in setuptools["packages"]


def test_the_demo_is_an_optional_extra() -> None:
    """``fedgate demo`` joins the CLI through the ``fedgate.commands`` entry point (the layering test shows
    the gateway imports nothing of the demo), and Faker is the demo's dependency, not the gateway's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not [d for d in project["dependencies"] if d.lower().startswith("faker")]
    assert [d for d in project["optional-dependencies"]["demo"] if d.lower().startswith("faker")]
    assert project["entry-points"]["fedgate.commands"] == {"demo": "fedgate_demo.cli:register"}


def test_every_module_the_architecture_names_exists() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:gateway|adapters|schema|demo|bench|tests)/[\w/]+(?:\.py)?/?)`", text))
    assert len(named) > 20  # the page names the modules it draws
    missing = sorted(name for name in named if not (ROOT / name).exists())
    assert missing == []


def test_the_architecture_draws_the_passes_the_code_runs() -> None:
    """The request flow on docs/architecture.md names the passes in the order ``PASSES`` runs them."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    drawn = re.search(r"PASSES, in order .*?: \((.*?)\)", text)
    assert drawn is not None
    assert [name.strip() for name in drawn.group(1).split(",")] == [run_pass.__name__ for run_pass in PASSES]
    positions = [text.index(f"│   {run_pass.__name__}.py") for run_pass in PASSES]
    assert positions == sorted(positions)
