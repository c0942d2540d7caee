"""Run directories written by main before the redesign of issue 26 (commit
b3bfbaf, tests/fixtures/main_b3bfbaf, made by
tests/fixtures/make_main_fixtures.py) still work with this code, through
the commands a user types:

- killed/ (a two-stage run SIGKILLed right after a mid-epoch checkpoint of
  stage 2) resumes to its end with the same flags, ends where main's own
  uninterrupted run with those flags ended, and exports;
- finished_two_stage/ exports, and ``--mode evaluate`` reports the top-1 its
  metrics.csv recorded.
"""

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests_support import ENV, REPO, weights_file_values

FIXTURES = os.path.join(REPO, "tests", "fixtures", "main_b3bfbaf")
EXPORT = ["--latency-runs", "0", "--random-samples", "16"]
# The files main wrote, by their names there (only the commands are used
# here, no module of the package: these tests must hold across refactors).
BEST, FINAL, STAGE2_FINAL = "best.weights.h5", "final.weights.h5", "stage2_final.weights.h5"


def _json(path):
    with open(path) as f:
        return json.load(f)


def _metrics(model_dir):
    with open(os.path.join(model_dir, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def _copy(name, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp(name) / "run")
    shutil.copytree(os.path.join(FIXTURES, name), model_dir)
    return model_dir


def _flags(model_dir):
    """The fixture's python -m train flags (command.json), without --model_dir."""
    argv = _json(os.path.join(model_dir, "command.json"))["argv"]
    assert argv[:3] == ["python", "-m", "train"] and not any(a.startswith("--model_dir") for a in argv), argv
    return argv[3:]


def _python(*argv, timeout=600):
    process = subprocess.run([sys.executable, "-m", *argv], cwd=REPO, env=ENV, text=True, capture_output=True,
                             timeout=timeout)
    assert process.returncode == 0 and "Traceback" not in process.stderr, (argv, process.stderr[-3000:])
    return process.stdout


def _export(model_dir):
    _python("export", "--model-dir", model_dir, *EXPORT)
    report = _json(os.path.join(model_dir, "model.json"))
    assert report["ok"], report
    assert report["census"]["ok"] and report["census"]["lce_bconv2d"] > 0, report["census"]
    assert os.path.getsize(os.path.join(model_dir, "model.tflite")) == report["size_bytes"] > 0
    return report


def _validation(model_dir):
    return [(r["stage"], r["epoch"], r["val_loss"], r["val_accuracy"], r["val_top5"], r["learning_rate"])
            for r in _metrics(model_dir)]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """killed/, copied, resumed to its end by ``python -m train`` with the
    flags it was started with."""
    model_dir = _copy("killed", tmp_path_factory)
    # The kill left main's lock naming the host and process that made the
    # fixture; here that is this host (as if the run had been killed here),
    # so the lock is seen to be stale and taken over, as after any SIGKILL.
    lock = os.path.join(model_dir, "run.lock")
    holder = _json(lock)
    holder["host"] = socket.gethostname()
    with open(lock, "w") as f:
        json.dump(holder, f)
    assert not os.path.exists(os.path.join(model_dir, STAGE2_FINAL))
    _python("train", *_flags(model_dir), f"--model_dir={model_dir}")
    return model_dir


@pytest.mark.slow
def test_a_killed_run_of_main_resumes_to_where_main_ends_it(resumed):
    finished = os.path.join(FIXTURES, "finished_two_stage")
    rows = _metrics(resumed)
    assert [(r["stage"], r["epoch"]) for r in rows] == [("1", "1"), ("2", "1")], rows
    # Training is deterministic (docs/troubleshooting.md): resumed by this
    # code, the run ends with the weights and validation figures main's own
    # uninterrupted run with the same flags ended with. (Were this to fail
    # only after a TensorFlow upgrade, regenerate the fixtures at b3bfbaf.)
    assert _validation(resumed) == _validation(finished)
    for name in (BEST, FINAL, STAGE2_FINAL):
        mine, main = weights_file_values(os.path.join(resumed, name)), weights_file_values(os.path.join(finished, name))
        assert mine.keys() == main.keys(), name
        for key, value in main.items():
            np.testing.assert_array_equal(mine[key], value, err_msg=f"{name}: {key}")


@pytest.mark.slow
def test_a_killed_run_of_main_exports_once_resumed(resumed):
    report = _export(resumed)
    assert report["model"]["weights"].endswith(BEST), report["model"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    return _copy("finished_two_stage", tmp_path_factory)


@pytest.mark.slow
def test_a_finished_two_stage_run_of_main_exports(finished):
    report = _export(finished)
    assert report["model"]["weights"].endswith(BEST), report["model"]


@pytest.mark.slow
def test_a_finished_two_stage_run_of_main_evaluates_to_its_recorded_top1(finished):
    out = _python("train", "--mode=evaluate", f"--model_dir={finished}", "--verbose=0")
    top1 = re.search(r"top-1 (\d+\.\d+) %", out)
    assert top1, out
    # best.weights.h5 is stage 2's one epoch: the top-1 its row recorded,
    # to the 0.01 % the command prints.
    row = [r for r in _metrics(finished) if r["stage"] == "2"][-1]
    assert abs(float(top1.group(1)) - 100 * float(row["val_accuracy"])) <= 0.005 + 1e-9, (out, row)
