"""``python -m train`` runs: the ImageNet recipe on mocked data, a run killed
mid-epoch and resumed, NaN handling, refusing a different run, evaluation and
the errors a user sees."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import data, zoo
from ir2net_tf.runs import api, artifacts, callbacks, recipes, run

from tests_support import STEPS, checkpoint_state, cli


def digits_settings(**overrides):
    given = dict(image_size=8, batch_size=32, epochs=1)
    given.update(overrides)
    return recipes.resolve("digits", given)


def test_killed_run_resumes_at_same_epoch_step_and_optimizer_state(killed_and_resumed):
    model_dir, (epoch, step, iterations), log = killed_and_resumed
    assert 0 < step < STEPS and iterations == epoch * STEPS + step
    match = re.search(r"Resuming stage 2 from \S+: epoch (\d+), step (\d+) \(optimizer step (\d+)\)", log)
    assert match, log[-3000:]
    assert tuple(int(g) for g in match.groups()) == (epoch + 1, step, iterations)
    # The resumed run did exactly the remaining steps and finished the run.
    assert checkpoint_state(os.path.join(model_dir, artifacts.CHECKPOINTS, "stage2")) == (2, 0, 2 * STEPS)
    rows = artifacts.read_metrics(os.path.join(model_dir, artifacts.METRICS))
    assert [(r["stage"], r["epoch"]) for r in rows] == [("2", "1"), ("2", "2")]
    config = json.load(open(os.path.join(model_dir, artifacts.CONFIG)))
    assert config["stages_completed"] == ["2"] and config["binary_weights"] is True
    for name in (artifacts.BEST_WEIGHTS, artifacts.FINAL_WEIGHTS, artifacts.CURVES):
        assert os.path.getsize(os.path.join(model_dir, name)) > 0
    assert os.listdir(os.path.join(model_dir, artifacts.LOGS, "stage2"))
    # The restriction grid of a fixed batch, logged to TensorBoard each epoch.
    restriction_logs = os.path.join(model_dir, artifacts.LOGS, "stage2", "restriction")
    tags = {
        value.tag
        for name in os.listdir(restriction_logs)
        for event in tf.compat.v1.train.summary_iterator(os.path.join(restriction_logs, name))
        for value in event.summary.value
    }
    assert {"restriction/0", "restriction/3"} <= tags


@pytest.mark.slow
def test_evaluate_reports_the_best_epochs_accuracy(killed_and_resumed):
    model_dir = killed_and_resumed[0]
    rows = artifacts.read_metrics(os.path.join(model_dir, artifacts.METRICS))
    result = api.evaluate(model_dir, verbose=0)
    assert result["top1"] == pytest.approx(max(float(r["val_accuracy"]) for r in rows), abs=1e-6)
    assert result["top1"] <= result["top5"] <= 1.0


def test_a_different_run_is_refused_unless_overwrite(killed_and_resumed, tmp_path):
    model_dir = str(tmp_path / "copy")
    import shutil

    shutil.copytree(killed_and_resumed[0], model_dir)
    with pytest.raises(ValueError, match=r"holds a different run \(epochs: 2 → 3\).*--overwrite"):
        run.Run(digits_settings(epochs=3), model_dir=model_dir)
    run.Run(digits_settings(epochs=3), model_dir=model_dir, overwrite=True)
    assert not os.path.exists(os.path.join(model_dir, artifacts.CONFIG))
    assert not os.path.exists(os.path.join(model_dir, artifacts.CHECKPOINTS))


@pytest.mark.slow
def test_nan_loss_stops_with_last_good_checkpoint(tmp_path, monkeypatch):
    poisoned = 7  # the 8th batch of the epoch is all NaN
    original = data.Dataset.train

    def train(self, epoch, batch_size, skip_batches=0):
        ds = original(self, epoch, batch_size, skip_batches)
        return ds.enumerate().map(
            lambda i, b: (tf.where(i == poisoned, np.nan, b[0]), b[1]))

    monkeypatch.setattr(data.Dataset, "train", train)
    runner = run.Run(digits_settings(), model_dir=str(tmp_path), checkpoint_every=2, verbose=0)
    with pytest.raises(callbacks.NaNLoss, match="stage 2, epoch 1, step 8.*last good checkpoint is kept"):
        runner.train()
    ckpt_dir = os.path.join(str(tmp_path), artifacts.CHECKPOINTS, "stage2")
    assert checkpoint_state(ckpt_dir)[1] == 6
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(ckpt_dir))
    for name in reader.get_variable_to_shape_map():
        if name.startswith("last_row/"):  # the last finished epoch's metrics: NaN before the first
            continue
        value = reader.get_tensor(name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.isfinite(value).all(), name
    assert not artifacts.read_metrics(os.path.join(str(tmp_path), artifacts.METRICS))


@pytest.mark.slow
def test_imagenet_recipe_end_to_end_on_mock_data(tmp_path):
    """Both stages of the ImageNet recipe (real then binary weights,
    distillation, conv-only weight decay) through the code a real run uses."""
    import tensorflow_datasets as tfds

    inputs = tf.keras.Input((32, 32, 3))
    teacher = tf.keras.Model(inputs, tf.keras.layers.Dense(1000, activation="softmax")(
        tf.keras.layers.GlobalAveragePooling2D()(inputs)))
    teacher_path = str(tmp_path / "teacher.h5")
    teacher.save(teacher_path)
    settings = recipes.resolve("imagenet", dict(
        image_size=32, epochs=1, batch_size=4, teacher=teacher_path, data_dir=str(tmp_path),
    ))
    assert (settings["stage"], settings["optimizer"], settings["weight_decay_scope"]) == ("both", "adam", "conv")
    model_dir = str(tmp_path / "run")
    with tfds.testing.mock_data(num_examples=8):
        runner = run.Run(settings, model_dir=model_dir, verbose=0)
        assert runner.dataset.augment == "imagenet" or settings["image_size"] < 64
        rows = runner.train()
    assert [(r["stage"], r["epoch"]) for r in rows] == [("1", "1"), ("2", "1")]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    config = json.load(open(os.path.join(model_dir, artifacts.CONFIG)))
    assert {k: config[k] for k in ("model", "variant", "input_shape", "num_classes", "dataset", "pad_values",
                                   "binary_weights", "recovery", "stages_completed")} == {
        "model": "IR2ResNet18", "variant": "A", "input_shape": [32, 32, 3], "num_classes": 1000,
        "dataset": "imagenet2012", "pad_values": 0.0, "binary_weights": True, "recovery": True,
        "stages_completed": ["1", "2"]}
    stage1 = zoo.build("IR2ResNet18", input_shape=(32, 32, 3), binary_weights=False,
                       weights=os.path.join(model_dir, artifacts.stage_weights("1", "final")))
    final = zoo.build("IR2ResNet18", input_shape=(32, 32, 3), weights=os.path.join(model_dir, config["weights"]["final"]))
    changed = [not np.array_equal(a, b) for a, b in zip(stage1.get_weights(), final.get_weights())]
    assert any(changed)  # stage 2 trained on from stage 1's weights


@pytest.mark.slow
def test_cli_errors_name_the_problem_without_a_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [
        (["--model=NoSuchNet"], "Unknown model 'NoSuchNet'; choose one of ['IR2BiRealNet', 'IR2BinaryAlexNet'"),
        (["--variant=Z"], "Unknown variant 'Z' for IR2ResNet20; choose one of ['paper', 'A'"),
        ([f"--model_dir={blocker}/run"], "is not writable"),
        ([f"--dataset={tmp_path}/missing_folder/"], "does not exist"),
    ]
    processes = [(cli(*args, f"--model_dir={tmp_path}/m{i}") if "--model_dir" not in args[0] else cli(*args), m)
                 for i, (args, m) in enumerate(cases)]
    for process, message in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 1, err[-2000:]
        assert message in err and "Traceback" not in err, err[-2000:]


def test_imagenet_not_downloaded_says_where_the_tar_files_go(tmp_path):
    with pytest.raises(ValueError, match=r"ILSVRC2012_img_train.tar must be at \S*manual/ILSVRC2012_img_train.tar \(it is not there\); "
                       r"ILSVRC2012_img_val.tar must be at \S*manual/ILSVRC2012_img_val.tar"):
        data.load("imagenet2012", image_size=32, data_dir=str(tmp_path))
