"""The layout of docs/DESIGN.md: a module imports only from rows above it (and never from cli)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ladtalk"

# Row of each top-level part; a module may import from its own row or lower rows only.
ROWS = {
    "errors": 0, "runtime": 0, "presets": 0, "configs": 0, "pixels": 0,
    "io": 1, "features": 2, "face": 3, "models": 4,
    "weights": 5, "checkpoint": 5, "lipsync_weights": 5, "pretrained": 5,
    "data": 6, "losses": 7, "metrics": 8, "pipeline": 9, "train": 10,  # training uses the cascade's stages
    "evaluate": 11, "analyze": 11, "reenact": 11, "demo": 12, "serve": 12,
    "cli": 13, "__main__": 14,
}


def _part(module: str) -> str:
    parts = module.split(".")
    assert parts[0] == "ladtalk"
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ladtalk."):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "ladtalk":
                for alias in node.names:
                    yield node.lineno, f"ladtalk.{alias.name}"
            elif node.module.startswith("ladtalk."):
                yield node.lineno, node.module


def test_every_part_has_a_row():
    parts = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if not p.name.startswith("_") or p.name == "__main__.py"}
    parts -= {"configs", "py"}
    missing = sorted(p for p in parts if p not in ROWS and not p.endswith(".typed"))
    assert not missing, f"add these parts of src/ladtalk to ROWS in {__file__}: {missing}"


def test_no_upward_imports():
    bad = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts)
        if module in ("ladtalk.__init__",):
            continue  # the lazy public API re-exports from every layer
        own = ROWS[_part(module.replace(".__init__", ""))]
        for lineno, target in _imports(path):
            part = _part(target)
            if part == "" or part.startswith("__"):
                continue  # the package itself or a dunder such as __version__
            if ROWS.get(part, 99) > own:
                bad.append(f"{path.relative_to(SRC)}:{lineno} imports {target}")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_public_functions_stay_functions_after_their_modules_are_imported():
    import subprocess
    import sys

    # a fresh interpreter: importing a submodule named like an API function used to replace the function
    code = ("import ladtalk, ladtalk.reenact, ladtalk.demo, ladtalk.analyze, ladtalk.evaluate\n"
            "from ladtalk.reenact import row_key\n"
            "modules = [n for n in ladtalk.__all__ if isinstance(getattr(ladtalk, n), type(ladtalk))]\n"
            "assert not modules and all(callable(getattr(ladtalk, n)) for n in ladtalk.__all__), modules\n"
            "assert ladtalk.reenact.__name__ == 'reenact'")
    subprocess.run([sys.executable, "-c", code], check=True)
