"""The suite's own machinery: with -n 2 (README, .ci/run), the tests that
share an expensive fixture run in one process, which computes it once
(tests/conftest.py groups them for ``--dist loadgroup``). A pytest or
pytest-xdist upgrade that splits the groups silently doubles the suite's
longest fixtures (pytest 9 did: pyproject.toml pins pytest below 9)."""

import os
import subprocess
import sys

import pytest

from tests_support import REPO

CONFTEST = '''
import importlib.util, sys
sys.path.insert(0, {tests!r})
spec = importlib.util.spec_from_file_location("suite_conftest", {conftest!r})
suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)
suite.SLOW_FIXTURES.add("shared")
pytest_collection_modifyitems = suite.pytest_collection_modifyitems
'''

TESTS = '''
import os, time, pytest

@pytest.fixture(scope="module")
def shared():
    with open({setups!r}, "a") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    return 1

def test_one(shared): time.sleep(0.5)
def test_two(shared): time.sleep(0.5)
def test_three(shared): time.sleep(0.5)

@pytest.mark.parametrize("i", range(6))
def test_other(i): time.sleep(0.2)
'''


@pytest.mark.slow
def test_tests_sharing_an_expensive_fixture_run_in_one_process(tmp_path):
    setups = tmp_path / "setups"
    (tmp_path / "conftest.py").write_text(CONFTEST.format(tests=os.path.join(REPO, "tests"),
                                                          conftest=os.path.join(REPO, "tests", "conftest.py")))
    (tmp_path / "test_shared.py").write_text(TESTS.format(setups=str(setups)))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p",
                           "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "9 passed" in done.stdout, done.stdout[-2000:]
    assert len(setups.read_text().split()) == 1, f"the fixture was computed in {setups.read_text().split()}"
