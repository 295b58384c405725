"""The one place for import rules: no circles anywhere, and the packages point one way.

``engine`` is the library, ``dashboard`` the Streamlit app on top of it, ``painlens`` what people run
(command line, HTTP server, batch front end) on top of both. Read from the source, without importing
it: every import, at module level and inside functions, relative ones resolved; ``from X import Y``
where ``X.Y`` is a module counts as an import of ``X.Y``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "dashboard", "painlens")
# Who may import whom: a package imports itself and the packages listed here, nothing else of ours.
MAY_IMPORT = {"engine": set(), "dashboard": {"engine"}, "painlens": {"engine", "dashboard"}}


def modules_under(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` in ``packages`` below ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """Module -> {imported module of ours: line of its first import}."""

    def ours(name: str) -> str | None:  # the module a dotted name lands in (``engine.x.Name`` -> ``engine.x``)
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                module = ours(target)
                if module and module != name:
                    edges.setdefault(module, node.lineno)
        graph[name] = edges
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a closed path
    through its modules (``a -> b -> a``), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(_closed_path(graph, component) for component in components)


def _closed_path(graph: dict[str, dict[str, int]], component: set[str]) -> list[str]:
    """One circle inside a strongly connected component: from its first module back to it (breadth first)."""
    start = min(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w in component and w not in came_from:
                    came_from[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def wrong_way(graph: dict[str, dict[str, int]]) -> list[tuple[str, str]]:
    """(importer, imported) of every import from one of our packages into one it may not import."""
    return [(importer, imported) for importer, edges in graph.items() for imported in edges
            if imported.split(".")[0] not in {importer.split(".")[0], *MAY_IMPORT[importer.split(".")[0]]}]


MODULES = modules_under(ROOT)
GRAPH = import_graph(MODULES)


def where(importer: str, imported: str) -> str:
    return f"{MODULES[importer].relative_to(ROOT)}:{GRAPH[importer][imported]} imports {imported}"


def test_no_module_imports_itself_in_a_circle():
    found = circles(GRAPH)
    lines = [" -> ".join(circle) + "\n    " + "\n    ".join(where(a, b) for a, b in zip(circle, circle[1:]))
             for circle in found]
    assert not found, "import circles (move the shared names down into a module both import):\n" + "\n".join(lines)


def test_the_packages_point_one_way():
    """engine imports neither dashboard nor painlens; dashboard imports engine only; painlens both."""
    offences = [where(importer, imported) for importer, imported in wrong_way(GRAPH)]
    assert not offences, "imports against the packages' direction:\n" + "\n".join(offences)


def test_the_dashboard_never_imports_the_training_stage():
    offences = [where(importer, imported) for importer, edges in GRAPH.items() if importer.startswith("dashboard")
                for imported in edges if imported == "engine.training" or imported.startswith("engine.training.")]
    assert not offences


def test_the_training_runner_does_not_import_the_explain_stage():
    # It explains through the pipeline's ``after_run`` hook only.
    for runner in ("engine.training.runner", "engine.training.executor", "engine.training.ray_engine"):
        assert not [m for m in GRAPH[runner] if m.startswith("engine.explain")], runner


# --- the checks above find what they guard (so they cannot pass by reading nothing) -----------------

def test_every_package_is_read():
    for package in PACKAGES:
        assert package in MODULES and any(name.startswith(package + ".") for name in MODULES), package
    assert sum(len(edges) for edges in GRAPH.values()) > 100


def test_the_circle_finder_finds_a_circle_and_nothing_else():
    graph = {"a": {"b": 1}, "b": {"c": 1, "d": 1}, "c": {"a": 1}, "d": {}, "e": {"a": 1, "f": 1}, "f": {"f2": 1},
             "f2": {"f": 1}}
    assert circles(graph) == [["a", "b", "c", "a"], ["f", "f2", "f"]]
    assert circles({"a": {"b": 1}, "b": {"c": 1}, "c": {}, "d": {"a": 1, "c": 1}}) == []


def test_the_reader_sees_imports_inside_functions_relative_ones_and_submodules(tmp_path):
    (tmp_path / "engine" / "sub").mkdir(parents=True)
    sources = {
        "engine/__init__.py": "",
        "engine/sub/__init__.py": "from engine.sub import leaf\n",  # a submodule: an import of engine.sub.leaf
        "engine/sub/leaf.py": "def late():\n    from ..top import Name\n",  # inside a function, relative
        "engine/top.py": "import engine.sub.leaf as leaf\nName = 1\n",
        "dashboard/__init__.py": "",
        "dashboard/page.py": "def show():\n    import painlens.cli\n",
        "painlens/__init__.py": "",
        "painlens/cli.py": "from dashboard import page\nfrom engine.sub.leaf import late\n",
    }
    for name, text in sources.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(modules_under(tmp_path))
    assert graph["engine.sub"] == {"engine.sub.leaf": 1}
    assert graph["engine.sub.leaf"] == {"engine.top": 2}
    assert graph["painlens.cli"] == {"dashboard.page": 1, "engine.sub.leaf": 2}
    assert circles(graph) == [["dashboard.page", "painlens.cli", "dashboard.page"],
                              ["engine.sub.leaf", "engine.top", "engine.sub.leaf"]]
    assert wrong_way(graph) == [("dashboard.page", "painlens.cli")]
