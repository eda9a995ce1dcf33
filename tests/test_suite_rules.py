"""The suite's own rules (tests/conftest.py): `slow` comes from the fixtures a test uses, never by hand,
and test modules start processes and Ray only through the fixtures that carry the marker."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# What starts a process or a Ray from a test module, bypassing `search_process` / `cli` / `ray_instance`.
PROCESS_CALLS = {("subprocess", name) for name in ("run", "Popen", "call", "check_call", "check_output",
                                                   "getoutput", "getstatusoutput")}
PROCESS_CALLS |= {("os", "system"), ("os", "popen"), ("ray", "init")}
PROCESS_CALLS |= {("searchrun", name) for name in ("run", "start", "command", "ray_head")}
PROCESS_IMPORTS = {"subprocess": {"run", "Popen", "call", "check_call", "check_output"},
                   "tests.helpers.searchrun": {"run", "start", "command", "ray_head", "SearchProcesses",
                                               "QuickCommands"}}


def violations(source: str, filename: str = "<test>") -> list[str]:
    """Each place in a test module that starts a process or Ray itself, or marks `slow` by hand."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(
                node.func.value, ast.Name) and (node.func.value.id, node.func.attr) in PROCESS_CALLS:
            found.append(f"{filename}:{node.lineno}: {node.func.value.id}.{node.func.attr}(...) "
                         "(use the search_process or cli fixture; Ray: ray_instance)")
        elif isinstance(node, ast.ImportFrom) and node.module in PROCESS_IMPORTS:
            names = {a.name for a in node.names} & PROCESS_IMPORTS[node.module]
            if names:
                found.append(f"{filename}:{node.lineno}: from {node.module} import {', '.join(sorted(names))}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                node.func.attr == "getfixturevalue"):
            found.append(f"{filename}:{node.lineno}: request.getfixturevalue(...) hides a fixture from the "
                         "closure that decides `slow`: request it as a parameter")
        elif isinstance(node, ast.Attribute) and node.attr == "slow" and isinstance(
                node.value, ast.Attribute) and node.value.attr == "mark":
            found.append(f"{filename}:{node.lineno}: pytest.mark.slow by hand (tests/conftest.py sets it "
                         "from the fixtures)")
    return found


def test_test_modules_start_processes_and_ray_only_through_the_fixtures():
    modules = sorted(p for p in TESTS.rglob("test_*.py") if "helpers" not in p.relative_to(TESTS).parts)
    assert len(modules) > 30
    found = [v for path in modules for v in violations(path.read_text(), str(path.relative_to(TESTS)))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source", [
    "import subprocess\ndef test_x(tmp_path):\n    subprocess.run(['python', '-m', 'nas.search'])\n",
    "from subprocess import Popen\n",
    "from tests.helpers import searchrun\ndef test_x():\n    searchrun.run(['--budget', '1G'])\n",
    "from tests.helpers.searchrun import start\n",
    "import ray\ndef test_x():\n    ray.init()\n",
    "import pytest\n@pytest.mark.slow\ndef test_x():\n    pass\n",
    "import pytest\n@pytest.fixture\ndef where(request):\n    return request.getfixturevalue('s3_uri')\n",
])
def test_the_rule_catches_a_process_or_a_hand_written_marker(source):
    assert violations(source)


def test_the_rule_lets_fixture_calls_through():
    assert not violations("import subprocess\ndef test_x(search_process, cli):\n"
                          "    search_process.run(['--trials', '1'])\n    cli('-m', 'nas.inspect')\n"
                          "    search_process.popen(['x'], stdout=subprocess.DEVNULL)\n")


def test_the_slow_marker_follows_the_fixture_closure(pytester):
    pytester.makeconftest("from tests.conftest import *  # noqa: F403\n")
    pytester.makepyfile(test_tiers='''
import pytest

@pytest.fixture
def on_ray(ray_instance):
    return ray_instance

@pytest.fixture
def deeper(on_ray):
    return on_ray

def test_ray(ray_instance): pass
def test_through_two_fixtures(deeper): pass
def test_s3(s3_uri): pass
def test_cluster(ray_cluster): pass
def test_search(search_process): pass
def test_finished_search(finished_search): pass
def test_fashion_mnist(fashion_mnist): pass
def test_quick_command(cli): pass
def test_training_loop(synthetic, tmp_path): pass
def test_plain(): pass
''')
    items, _ = pytester.inline_genitems()
    slow = {item.name for item in items if item.get_closest_marker("slow")}
    assert slow == {"test_ray", "test_through_two_fixtures", "test_s3", "test_cluster", "test_search",
                    "test_finished_search", "test_fashion_mnist"}
    assert len(items) == 10
