"""The packages' layers, checked on the source: which package may import which, and only through the
public roots of the packages below it.

    search_spaces  <-  trials  <-  nas.rundir  <-  nas.report  <-  nas.orchestration  <-  nas commands

Reading the imports (relative ones resolved) is enough: no module is imported here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search_spaces", "trials", "nas")
# What each library part may import from this project (a prefix of the imported module's name).
ALLOWED = {
    "search_spaces": ("search_spaces",),
    "trials": ("trials", "search_spaces"),
    "nas.rundir": ("nas.rundir", "nas.errors"),
    "nas.report": ("nas.report", "nas.rundir", "nas.errors", "search_spaces", "trials"),
    "nas.orchestration": ("nas.orchestration", "nas.report", "nas.rundir", "nas.errors", "search_spaces", "trials"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import of this project's packages in `path`."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from . import x` / `from pkg import sub`: the names may be modules; judge the module itself
            found.append((node.lineno, module))
    return [(line, m) for line, m in found if m.split(".")[0] in PACKAGES]


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _part(module: str) -> str | None:
    for part in sorted(ALLOWED, key=len, reverse=True):
        if module == part or module.startswith(part + "."):
            return part
    return None


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layers(path):
    name = _module_name(path)
    part = _part(name)
    for line, module in _imports(path):
        where = f"{path.relative_to(ROOT)}:{line} imports {module}"
        top = module.split(".")[0]
        # Other packages are reached through their public root only (search_spaces, trials).
        if top in ("search_spaces", "trials") and not name.startswith(top):
            assert module == top, f"{where}: import from the package root `{top}` instead"
        if part is not None:
            assert module.startswith(ALLOWED[part]), f"{where}: {part} may import only {ALLOWED[part]}"


def test_every_library_module_is_checked():
    parts = {_part(_module_name(p)) for p in _sources()}
    assert {"search_spaces", "trials", "nas.rundir", "nas.report", "nas.orchestration"} <= parts
