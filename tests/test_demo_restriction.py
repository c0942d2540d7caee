"""The digits demo shows restriction acting (its own λ), while the paper's
recipes keep the paper's λ = 0.15."""

import pytest
import os

from ir2net_tf.nn import restriction
from ir2net_tf.runs import artifacts, recipes


def test_paper_recipes_keep_the_papers_lambda_and_the_demo_has_its_own():
    for name in ("cifar10_resnet20", "cifar10_resnet18", "cifar10_vggsmall", "imagenet"):
        assert recipes.resolve(name, {})["restriction_lambda"] == restriction.DEFAULT_LAMBDA == 0.15
    assert recipes.resolve("digits", {})["restriction_lambda"] == recipes.DIGITS_LAMBDA != 0.15


@pytest.mark.slow
def test_the_demo_erases_pixels_in_every_epoch(digits_run_16):
    rows = artifacts.read_metrics(os.path.join(digits_run_16, artifacts.METRICS))
    kept = [float(r["kept"]) for r in rows]
    assert len(kept) == 2 and all(0.3 < k < 1.0 for k in kept), kept
