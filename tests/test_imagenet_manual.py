"""``--dataset imagenet2012`` as users start it: fake ILSVRC2012 tars in tfds'
exact layout, prepared by tfds' real imagenet2012 builder (not mock_data).

Misplaced tars get a one-line message naming the file and the path it must
have; a validation-only preparation (the train tar was still downloading) is
redone by the same command once the tar is in place; the smoke test of
docs/distributed.md (sliced splits, one epoch) trains both stages of the
``imagenet`` recipe at 224 and exports with a passing verification.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from fake_imagenet import TRAIN_TAR, VAL_TAR, write_tars
from tests_support import ENV, REPO, check_metrics_match_evaluate, cli
from ir2net_tf import data
from ir2net_tf.runs import artifacts

SMOKE = ["--dataset=imagenet2012", "--teacher=", "--epochs=1", "--batch_size=4", "--train_split=train[:4]",
         "--validation_split=validation[:4]", "--verbose=0"]


@pytest.fixture(scope="module")
def tars(tmp_path_factory):
    """The two tars, written once."""
    return write_tars(str(tmp_path_factory.mktemp("ilsvrc2012")))


def _manual(data_dir):
    path = os.path.join(data_dir, "downloads", "manual")
    os.makedirs(path, exist_ok=True)
    return path


@pytest.mark.parametrize("layout, named", [
    ("train only", VAL_TAR),
    ("val renamed", "ILSVRC2012_img_val (1).tar"),
    ("train one folder too deep", os.path.join("imagenet", TRAIN_TAR)),
    ("train still downloading", TRAIN_TAR + ".crdownload"),
])
def test_misplaced_tars_are_named_before_tfds_runs(tars, tmp_path, layout, named):
    manual = _manual(str(tmp_path))
    placed = {
        "train only": {TRAIN_TAR: TRAIN_TAR},
        "val renamed": {TRAIN_TAR: TRAIN_TAR, VAL_TAR: named},
        "train one folder too deep": {TRAIN_TAR: named, VAL_TAR: VAL_TAR},
        "train still downloading": {TRAIN_TAR: named, VAL_TAR: VAL_TAR},
    }[layout]
    for source, target in placed.items():
        os.makedirs(os.path.dirname(os.path.join(manual, target)), exist_ok=True)
        shutil.copy(tars[source], os.path.join(manual, target))
    with pytest.raises(ValueError) as error:
        data.load("imagenet2012", image_size=224, data_dir=str(tmp_path))
    message = str(error.value)
    wanted = TRAIN_TAR if "train" in named.lower() else VAL_TAR
    assert "\n" not in message and "internet" not in message, message
    assert f"must be at {os.path.join(manual, wanted)}" in message, message
    if named != wanted:  # the misplaced file is pointed at
        assert os.path.join(manual, named) in message, message
    assert not os.path.exists(os.path.join(str(tmp_path), "imagenet2012")), "tfds prepared something"


@pytest.fixture(scope="module")
def smoke(tars, tmp_path_factory):
    """A validation-only preparation (what tfds alone leaves while the train
    tar downloads), the smoke command failing on it, then the same command
    after the train tar arrives."""
    import tensorflow_datasets as tfds

    root = tmp_path_factory.mktemp("imagenet_smoke")
    data_dir, model_dir = str(root / "tfds"), str(root / "run")
    manual = _manual(data_dir)
    shutil.copy(tars[VAL_TAR], manual)
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    assert [str(s) for s in builder.info.splits] == ["validation"]
    command = [*SMOKE, f"--data_dir={data_dir}", f"--model_dir={model_dir}"]
    first = cli(*command)
    first_out, first_err = first.communicate(timeout=600)
    wrote = os.path.exists(model_dir)
    shutil.copy(tars[TRAIN_TAR], manual)
    second = cli(*command)
    out, err = second.communicate(timeout=1200)
    return {"manual": manual, "model_dir": model_dir, "first": (first.returncode, first_out, first_err), "wrote": wrote,
            "second": (second.returncode, out, err)}


@pytest.mark.slow
def test_missing_train_tar_then_the_same_command_works(smoke):
    code, _, err = smoke["first"]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code != 0 and len(errors) == 1 and "Traceback" not in err, err[-3000:]
    assert f"{TRAIN_TAR} must be at {os.path.join(smoke['manual'], TRAIN_TAR)}" in errors[0]
    assert "prepared again" in errors[0]
    assert not smoke["wrote"], "the failed command created the model directory"
    code, out, err = smoke["second"]
    assert code == 0, err[-3000:]
    assert "Removing the incomplete dataset" in err


@pytest.mark.slow
def test_smoke_run_trains_both_stages_with_banners(smoke):
    _, out, _ = smoke["second"]
    rows = artifacts.read_metrics(os.path.join(smoke["model_dir"], artifacts.METRICS))
    assert [(r["stage"], r["epoch"]) for r in rows] == [("1", "1"), ("2", "1")]
    config = json.load(open(os.path.join(smoke["model_dir"], artifacts.CONFIG)))
    assert config["training"]["train_split"] == "train[:4]" and config["input_shape"] == [224, 224, 3]
    lines = out.splitlines()
    start1 = next(i for i, line in enumerate(lines) if line.startswith("=== Stage 1 (1st of 2)"))
    end1 = next(i for i, line in enumerate(lines) if line.startswith("=== Stage 1 done: 1 epoch"))
    start2 = next(i for i, line in enumerate(lines) if line.startswith("=== Stage 2 (2nd of 2)"))
    assert start1 < end1 < start2, out
    assert "real-valued weights, binary activations" in lines[start1] and "1 epoch of 1 step" in lines[start1]
    assert "binary weights and binary activations, from stage1_final.weights.h5" in lines[start2]
    # Evaluating the run scores the slice it validated on (--validation_split), not the whole split.
    check_metrics_match_evaluate(smoke["model_dir"], "2")


@pytest.mark.slow
def test_smoke_run_exports_with_a_passing_verification_at_224(smoke):
    process = subprocess.run(
        [sys.executable, "-m", "export", "--model-dir", smoke["model_dir"], "--latency-runs", "0",
         "--random-samples", "16", "--verify-images", "4"],
        cwd=REPO, env=ENV, text=True, capture_output=True, timeout=900,
    )
    assert process.returncode == 0, process.stdout + process.stderr[-3000:]
    report = json.load(open(os.path.join(smoke["model_dir"], "model.json")))
    assert report["ok"] and report["model"]["input_shape"] == [224, 224, 3]
    assert process.stdout.splitlines()[0].endswith(os.path.join(smoke["model_dir"], "model.tflite"))
    assert "compiled metrics have yet to be built" not in process.stderr
