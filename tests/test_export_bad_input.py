"""python -m export off the happy path (issues 15 and 20): bad arguments
and inputs are one clear error (exit 2, no traceback) that writes nothing
and keeps an earlier export; a failed re-export removes the stale .tflite;
Ctrl-C writes nothing; evaluating a .tflite that is not the model's is
refused.

The command is called in-process (its ``main``), which is what a subprocess
would run, minus TensorFlow's start-up per case."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import data, zoo
from ir2net_tf.models import weights

from tests_support import digits_settings, export_cli, fake_run, snapshot


def test_export_refuses_partial_weights(recovery_weights, tmp_path, capsys):
    """The issue's command: --no-recovery with a recovery run's weights."""
    before = snapshot(tmp_path)
    code, _, err = export_cli(capsys, "--model", "IR2ResNet20", "--input-size", "8", "--no-recovery",
                              "--weights", recovery_weights[".weights.h5"], "-o", str(tmp_path / "m.tflite"))
    assert code == 2 and recovery_weights[".weights.h5"] in err and "does not have" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("args, flag", [
    (["--input-size", "16"], "--input-size"),
    (["--pad-values", "1"], "--pad-values"),
    (["--num-classes", "5"], "--num-classes"),
    (["--no-recovery"], "--no-recovery"),
])
def test_export_model_dir_refuses_flags_it_would_ignore(tmp_path, capsys, args, flag):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    before = snapshot(folder)
    code, _, err = export_cli(capsys, "--model-dir", str(folder), *args)
    assert code == 2 and flag in err and "ignored" in err
    assert snapshot(folder) == before


def test_reversed_int8_range_is_refused(tmp_path, capsys):
    code, _, err = export_cli(capsys, "--model", "IR2ResNet20", "--int8-range", "5", "-5",
                              "-o", str(tmp_path / "m.tflite"))
    assert code == 2 and "--int8-range" in err and "MIN < MAX" in err
    assert os.listdir(tmp_path) == []


def test_failed_reexport_removes_the_stale_tflite(tmp_path):
    """The write-out of an export whose checks failed, after an earlier
    export to the same path: report and files agree."""
    from ir2net_tf.export import cli

    output = tmp_path / "model.tflite"
    output.write_bytes(b"an earlier export")
    result = {"ok": False, "failure": "top-1 agreement 10 % < 99 %", "tflite": str(output)}
    cli.write_out(str(output), b"new flatbuffer", result)
    report = json.loads((tmp_path / "model.json").read_text())
    assert report["tflite"] is None and "removed" in report["failure"] and not output.exists()
    cli.write_out(str(output), b"new flatbuffer", {"ok": True, "failure": None, "tflite": str(output)})
    assert output.read_bytes() == b"new flatbuffer"
    assert json.loads((tmp_path / "model.json").read_text())["tflite"] == str(output)


def test_nan_images_are_bad_input_and_keep_the_earlier_export(tmp_path, capsys):
    output = tmp_path / "model.tflite"
    output.write_bytes(b"a verified earlier export")
    (tmp_path / "model.json").write_text('{"tflite": "model.tflite"}')
    before = snapshot(tmp_path)
    from ir2net_tf.export import inputs

    images = np.zeros((4, 16, 16, 3), np.float32)
    images[1, 2, 3, 0] = np.nan
    path = str(tmp_path / "bad.npy")
    np.save(path, images)
    code, _, err = export_cli(capsys, "--model", "IR2ResNet20", "--input-size", "16", "--images", path,
                              "-o", str(output), "--latency-runs", "0")
    assert code == 2 and path in err and "1 NaN or infinite" in err, err
    os.remove(path)
    assert snapshot(tmp_path) == before
    images[1, 2, 3, 0] = -np.inf  # not "pixels beyond ±3": not numbers
    with pytest.raises(inputs.DeployError, match="1 NaN or infinite"):
        inputs.check_array(path, images, None)


def test_ctrl_c_during_export_writes_nothing(tmp_path, capsys, monkeypatch):
    from ir2net_tf.export import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_model", interrupted)  # Ctrl-C wherever export's work is
    code, _, err = export_cli(capsys, "--model", "IR2ResNet20", "--input-size", "16", "--evaluate", "digits",
                              "-o", str(tmp_path / "m.tflite"))
    assert code == 130 and err.strip() == "Interrupted (Ctrl-C); nothing was written." and os.listdir(tmp_path) == []


def test_evaluate_refuses_what_is_not_this_models_tflite():
    from ir2net_tf import deploy
    from ir2net_tf.export import evaluation

    def dense(size):
        inputs = tf.keras.Input((size, size, 3))
        return tf.keras.Model(inputs, tf.keras.layers.Dense(10)(tf.keras.layers.Flatten()(inputs)))

    model, other = dense(8), deploy.convert(dense(16))
    digits = data.load("digits", image_size=8)
    for flatbuffer, message in ((b"garbage" * 20, "not a .tflite file"), (other, "another model's.*16, 16, 3")):
        with pytest.raises(ValueError, match=message):
            evaluation.measure_accuracy(model, digits, flatbuffer=flatbuffer, progress=False)
    with pytest.raises(ValueError, match="--image_size must be an integer ≥ 1; got 0"):
        data.load("digits", image_size=0)
    with pytest.raises(ValueError, match="--batch_size must be an integer ≥ 1"):
        evaluation.measure_accuracy(model, digits, batch_size=0, progress=False)


def test_stage_1_only_run_and_hdf5_named_bin_are_explained(tmp_path, capsys, recovery_weights):
    import shutil

    folder = tmp_path / "run"
    fake_run(folder, digits_settings(stage="both"), stages=())
    (folder / "stage1_best.weights.h5").write_bytes(b"x")
    code, _, err = export_cli(capsys, "--model-dir", str(folder), "--no-verify", "--latency-runs", "0")
    assert code == 2 and "stopped during stage 1" in err and "stage1_best.weights.h5" in err, err
    misnamed = str(tmp_path / "weights.bin")
    shutil.copy(recovery_weights[".weights.h5"], misnamed)
    model = zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10)
    with pytest.raises(ValueError, match=r"is an HDF5 weights file.*Rename it to end in \.weights\.h5"):
        weights.load_weights(model, misnamed)
