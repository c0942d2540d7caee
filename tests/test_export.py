"""python -m export: model directories and zoo models to verified .tflite
files, and clear errors (exit 2, no traceback, no partial file) otherwise."""

import json
import os

import numpy as np
import pytest

import tensorflow as tf

from ir2net_tf import deploy, zoo
from ir2net_tf.export.cli import main

FAST = ["--latency-runs", "2", "--threads", "1", "--random-samples", "16"]


def _model_dir(path, *, randomize=True, num_classes=10):
    """A model directory as `python -m train` writes it: config.json + weights."""
    model = zoo.build("IR2VGGSmall", num_classes=num_classes, classifier_activation=None)
    if randomize:
        deploy.randomize_batch_norm(model, seed=2)
    os.makedirs(path, exist_ok=True)
    model.save_weights(os.path.join(path, "best.weights.h5"))
    config = {"model": "IR2VGGSmall", "variant": None, "input_shape": [32, 32, 3], "num_classes": num_classes,
              "dataset": "cifar10", "pad_values": 0.0, "binary_weights": True, "recovery": True}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    return model


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.mark.slow
def test_export_from_model_dir(tmp_path, capsys):
    run = tmp_path / "run"
    _model_dir(str(run))
    rng = np.random.default_rng(0)
    images = tmp_path / "images.npz"
    np.savez(images, x=rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8), y=rng.integers(0, 10, 24))

    # Random weights: the threshold for them (the default would apply 0.99).
    code, out, err = _run(capsys, "--model-dir", str(run), "--images", str(images), "--min-agreement",
                          str(deploy.RANDOM_WEIGHTS_MIN_AGREEMENT), *FAST)

    assert code == 0, err + out
    tflite, report_file = run / "model.tflite", run / "model.json"
    report = json.loads(report_file.read_text())
    assert report["ok"] and report["tflite"] == str(tflite)
    assert report["size_bytes"] == tflite.stat().st_size > 0
    assert report["model"]["weights"].endswith("best.weights.h5")
    assert report["census"]["lce_bconv2d"] == 5 and report["census"]["ok"]
    assert set(report["parity"]) == {"random", "images"}
    assert report["parity"]["images"]["samples"] == 24
    assert report["parity"]["images"]["top1_agreement"] >= deploy.RANDOM_WEIGHTS_MIN_AGREEMENT
    assert report["min_agreement"] == deploy.RANDOM_WEIGHTS_MIN_AGREEMENT
    assert [(r["kernel"], r["threads"]) for r in report["latency"]] == [("default", 1), ("indirect_bgemm", 1)]
    assert "LceBconv2d 5 for 5 binary convolutions" in out and "OK" in out
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in run.iterdir()) == ["best.weights.h5", "config.json", "model.json", "model.tflite"]


@pytest.mark.slow
def test_failed_verification_writes_no_tflite(tmp_path, capsys):
    # Weights of a freshly initialized model: batch norm is the identity, so
    # bconv outputs that are exactly 0 reach the next binarization, where
    # Keras and LCE break the tie differently: a real discrepancy to catch.
    tf.keras.utils.set_random_seed(0)
    weights = str(tmp_path / "fresh.weights.h5")
    zoo.build("IR2VGGSmall").save_weights(weights)
    output = tmp_path / "vgg.tflite"

    code, out, _ = _run(capsys, "--model", "IR2VGGSmall", "--weights", weights, "-o", str(output),
                        "--latency-runs", "0", "--random-samples", "48")

    assert code == 1
    assert not output.exists()
    report = json.loads((tmp_path / "vgg.json").read_text())
    assert not report["ok"] and report["tflite"] is None
    # Judged by the outputs' difference against their spread (random inputs:
    # no labels, so top-1 is reported only).
    assert "of the outputs' spread" in report["failure"] and "random inputs" in report["failure"] and "FAILED" in out
    assert report["parity"]["random"]["relative_median_diff"] > deploy.MAX_RELATIVE_DIFFERENCE


def test_unknown_model(capsys):
    code, _, err = _run(capsys, "--model", "ResNet1000")
    assert code == 2 and "Unknown model 'ResNet1000'" in err and "IR2ResNet18" in err


def test_unwritable_output(tmp_path, capsys):
    code, _, err = _run(capsys, "--model", "IR2VGGSmall", "-o", str(tmp_path / "no" / "such" / "m.tflite"))
    assert code == 2 and "does not exist" in err
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root ignores permissions
        pytest.skip("running as root: cannot make an unwritable directory")
    code, _, err = _run(capsys, "--model", "IR2VGGSmall", "-o", str(locked / "m.tflite"))
    assert code == 2 and "Cannot write" in err


def test_weights_that_do_not_fit_name_the_layer(tmp_path, capsys):
    run = tmp_path / "run"
    _model_dir(str(run), randomize=False, num_classes=10)
    code, _, err = _run(capsys, "--model", "IR2VGGSmall", "--num-classes", "5",
                        "--weights", str(run / "best.weights.h5"), "-o", str(tmp_path / "m.tflite"))
    assert code == 2
    assert "predictions model (8192, 5) vs file (8192, 10)" in err and "Nothing was loaded" in err
    assert list(tmp_path.glob("*.tflite")) == []


def test_model_dir_problems(tmp_path, capsys):
    code, _, err = _run(capsys, "--model-dir", str(tmp_path))
    assert code == 2 and "no config.json" in err
    (tmp_path / "config.json").write_text(json.dumps({"model": "IR2VGGSmall", "input_shape": [32, 32, 3]}))
    code, _, err = _run(capsys, "--model-dir", str(tmp_path))
    assert code == 2 and "holds no weights" in err


def test_int8_without_range_is_refused(tmp_path, capsys):
    code, _, err = _run(capsys, "--model", "IR2VGGSmall", "--input-type", "int8", "-o", str(tmp_path / "m.tflite"))
    assert code == 2 and "--int8-range" in err


@pytest.mark.slow
def test_every_model_takes_the_padding_option(tmp_path, capsys):
    """--padding same on a CIFAR model (once a TypeError traceback)."""
    output = tmp_path / "r20.tflite"
    code, out, err = _run(capsys, "--model", "IR2ResNet20", "--padding", "same", "--no-verify",
                          "--latency-runs", "0", "-o", str(output))
    assert code == 0 and output.is_file(), err + out


def test_bad_variant(capsys):
    code, _, err = _run(capsys, "--model", "IR2ResNet18", "--variant", "Z")
    assert code == 2 and "Z" in err


def _negated_middle_kernel(model):
    """A copy of ``model`` whose middle binary convolution has its kernel's
    sign flipped: what a conversion that got one layer wrong computes."""
    import larq as lq

    twin = tf.keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    convs = [layer for layer in deploy.all_layers(twin)
             if deploy.is_binary_conv(layer) and isinstance(layer, lq.layers.QuantConv2D)]
    layer = convs[len(convs) // 2]
    kernel, *rest = layer.get_weights()
    layer.set_weights([-kernel, *rest])
    return twin


@pytest.mark.slow  # one conversion each: about 25 s of CPU
@pytest.mark.parametrize("wrong", [False, True], ids=["correct", "kernel_sign_flipped"])
def test_random_inputs_refuse_a_wrong_conversion_and_pass_a_correct_one(wrong, tmp_path, capsys, monkeypatch):
    """Verification on random inputs: the outputs' difference against their
    spread. A negated kernel keeps most top-1 classes of a random model (top-1
    would pass it) but moves every output by about a spread. Also: a zoo
    model's export says its weights are random, and goes to exports/, which
    .gitignore keeps out of a checkout."""
    from ir2net_tf.export import cli
    from ir2net_tf.export import convert as conversion
    from tests_support import REPO

    if wrong:
        convert = deploy.convert
        monkeypatch.setattr(conversion, "convert", lambda model, **kw: convert(_negated_middle_kernel(model), **kw))
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, "--model", "IR2ResNet20", "--input-size", "16", "--latency-runs", "0",
                          "--random-samples", "32")
    output = tmp_path / cli.EXPORTS_DIR / "IR2ResNet20.tflite"
    report = json.loads(output.with_suffix(".json").read_text())
    figures = report["parity"]["random"]
    print(f"relative median difference {figures['relative_median_diff']:.3g}, top-1 {figures['top1_agreement']:.3f}")
    if wrong:
        assert code == 1 and not output.exists(), out
        assert figures["relative_median_diff"] > 10 * deploy.MAX_RELATIVE_DIFFERENCE
        assert "of the outputs' spread" in report["failure"] and "FAILED" in out
    else:
        assert code == 0 and output.is_file(), err + out
        assert figures["relative_median_diff"] < deploy.MAX_RELATIVE_DIFFERENCE / 10
        assert sorted(p.name for p in tmp_path.rglob("*")) == ["IR2ResNet20.json", "IR2ResNet20.tflite", "exports"]
        assert f"/{cli.EXPORTS_DIR}/" in open(os.path.join(REPO, ".gitignore")).read().split()
    assert report["random_weights"] and "random weights" in report["weights_note"]
    assert "weights: random weights (no --weights)" in out
