"""python -m zoo show-restriction on a digits model trained by python -m train."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf.training import trainer as training
from ir2net_tf.data import digits_arrays, normalize
from tests_support import REPO


def run(*args):
    result = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def digits_run(killed_and_resumed):
    """A digits model trained by ``python -m train`` (8×8, two epochs)."""
    return killed_and_resumed[0]


def training_step_masks(model_dir, images):
    """The mask the IR² training step applies to this batch, captured from
    the training step itself."""
    from ir2net_tf.runs.loading import load_run

    model = load_run(model_dir, logits=True).model
    trainer = training.IR2Trainer(model)
    captured = []
    original = training.restrict

    def capture(x, mask):
        captured.append(mask.numpy())
        return original(x, mask)

    training.restrict = capture
    try:
        trainer.ir2_loss(tf.constant(images), tf.zeros(len(images), tf.int32), None)
    finally:
        training.restrict = original
    return captured[0][..., 0]


@pytest.mark.slow
def test_png_mask_is_the_training_steps_mask(digits_run, tmp_path):
    out = str(tmp_path / "pictures")
    stdout = run("zoo", "show-restriction", "--model_dir", digits_run, "--digits", "6", "--stages", "--output_dir", out)
    pngs = sorted(f for f in os.listdir(out) if f.endswith(".png"))
    assert len(pngs) == 6
    for name in pngs:
        png = tf.io.decode_png(open(os.path.join(out, name), "rb").read()).numpy()
        assert png.shape[0] > 200 and png.shape[1] > 400 and png.std() > 10  # a real picture
    assert "label" in pngs[0]
    saved = np.load(os.path.join(out, "masks.npz"))
    _, held_out, _, _ = digits_arrays(8)
    expected = training_step_masks(digits_run, normalize(held_out[:6] / 255.0).numpy())
    np.testing.assert_array_equal(saved["mask"], expected)
    printed = [float(x) for x in re.findall(r"kept (\d\.\d+) of the pixels", stdout)]
    np.testing.assert_allclose(printed, expected.mean(axis=(1, 2)), atol=5e-5)
    assert 0.0 < expected.mean() <= 1.0
    lambdas = [float(x) for x in re.search(r"λ for 10 % / 25 % / 50 % erased: (\S+) / (\S+) / (\S+)", stdout).groups()]
    assert 0.0 < lambdas[0] <= lambdas[1] <= lambdas[2]


@pytest.mark.slow
def test_errors_are_clear(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "show-restriction", "--model_dir", str(tmp_path), "--digits", "2"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 2 and "no config.json" in result.stderr and "Traceback" not in result.stderr
