"""edgeloop/link/ is the board link: twins and models are handed to it, it never imports trainer/.

Checked twice: statically (every import statement in the package's sources, lazy ones inside
functions included) and at run time (importing every link module pulls in no trainer,
TensorFlow or Keras).
"""

from __future__ import annotations

import ast
import subprocess
import sys

FORBIDDEN = ("trainer", "tensorflow", "keras")


def _imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant):
                roots.add(str(node.args[0].value).split(".")[0])
    return roots


def test_link_sources_import_no_trainer(repo_root) -> None:
    link = repo_root / "edgeloop" / "link"
    files = sorted(link.rglob("*.py"))
    assert len(files) > 5
    bad = {
        str(p.relative_to(repo_root)): sorted(_imported_roots(p.read_text()) & set(FORBIDDEN))
        for p in files
    }
    assert not {k: v for k, v in bad.items() if v}


def test_importing_the_link_pulls_in_no_trainer(repo_root) -> None:
    code = (
        "import pkgutil, importlib, sys, edgeloop.link\n"
        "for m in pkgutil.iter_modules(edgeloop.link.__path__):\n"
        "    importlib.import_module('edgeloop.link.' + m.name)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
