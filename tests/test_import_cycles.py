"""No import circles, in the package or among the bench scripts: each file can be read, and changed, from the
files it imports alone. Imports inside functions count too (a deferred import only hides a circle)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _graph(files: dict[str, Path], resolve) -> dict[str, set[str]]:
    graph = {}
    for name, path in files.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets |= {resolve(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(resolve(node.module))
                targets |= {resolve(f"{node.module}.{alias.name}") for alias in node.names}
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, or None (depth-first search with the path so far)."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for nxt in sorted(graph[node]):
            found = visit(nxt, path + [node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_the_bench_scripts_import_each_other_without_a_circle():
    files = {p.stem: p for p in (ROOT / "bench").glob("*.py")}
    circle = _cycle(_graph(files, lambda name: name.split(".")[0]))
    assert circle is None, " -> ".join(circle)


def test_the_package_modules_import_each_other_without_a_circle():
    src = ROOT / "src"
    files = {".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (src / "ladtalk").rglob("*.py")}
    files.pop("ladtalk")  # the lazy public API names every layer; it imports none of them at load

    def resolve(name: str) -> str:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    circle = _cycle(_graph(files, resolve))
    assert circle is None, " -> ".join(circle)
