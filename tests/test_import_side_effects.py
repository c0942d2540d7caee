"""Importing any module of the package changes nothing global: no warnings
filter, no logging filter, handler or level, no matplotlib backend chosen, no
environment variable (besides TF_USE_LEGACY_KERAS, which ``import
ir2net_tf`` sets on purpose: README, "Set up")."""

import subprocess
import sys

from tests_support import ENV, REPO

SCRIPT = r"""
import importlib, logging, os, pkgutil, sys, warnings
import ir2net_tf
import tensorflow, larq, larq_zoo, larq_compute_engine, absl.logging  # their own effects first

def loggers():
    found = {"": (list(logging.root.filters), list(logging.root.handlers), logging.root.level)}
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            found[name] = (list(logger.filters), list(logger.handlers), logger.level)
    return found

import matplotlib  # larq-zoo's and TensorFlow's imports already load pyplot
backend = matplotlib.rcParams._get_backend_or_none()
env, filters, before = dict(os.environ), list(warnings.filters), loggers()
names = sorted(m.name for m in pkgutil.walk_packages(ir2net_tf.__path__, "ir2net_tf.")
               if not m.name.endswith("__main__"))
for name in names:
    importlib.import_module(name)
after = loggers()
changed = [n for n in before if before[n] != after.get(n)]
assert warnings.filters == filters, [f for f in warnings.filters if f not in filters]
assert not changed, changed
assert dict(os.environ) == env, set(os.environ.items()) ^ set(env.items())
assert matplotlib.rcParams._get_backend_or_none() == backend, "a module chose a matplotlib backend"
print(len(names))
"""


def test_importing_every_module_changes_nothing_global():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 50  # every module was imported
