"""README's Layout names every module of the three packages (a new module must be listed there)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_module_is_listed_in_the_readme_layout():
    layout = ROOT.joinpath("README.md").read_text().split("## Layout", 1)[1].split("```", 2)[1]
    listed = set(re.findall(r"(\S+\.py)\b", layout))
    modules = {p.name for pkg in ("search_spaces", "trials", "nas") for p in (ROOT / pkg).rglob("*.py")
               if p.name != "__init__.py"}
    missing = sorted(modules - listed)
    assert not missing, f"README's Layout does not list: {missing}"
