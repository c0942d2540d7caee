"""``--seed``: the same command with the same seed, in two fresh model
directories, gives the same metrics and the same weights (issue 15)."""

import pytest
import os

import numpy as np

from ir2net_tf import zoo
from ir2net_tf.runs import artifacts, recipes, run, seeding

from tests_support import weights_file_values as _weights


@pytest.mark.slow
def test_same_seed_same_run(tmp_path):
    settings = recipes.resolve("digits", dict(image_size=8, batch_size=32, epochs=1, seed=7))
    runs = []
    for name in ("a", "b"):
        folder = str(tmp_path / name)
        rows = run.Run(dict(settings), model_dir=folder, verbose=0).train()
        runs.append((folder, rows))
    (first, rows_a), (second, rows_b) = runs
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(rows_a) == strip(rows_b) and rows_a
    for name in (artifacts.FINAL_WEIGHTS, artifacts.BEST_WEIGHTS):
        a, b = _weights(os.path.join(first, name)), _weights(os.path.join(second, name))
        assert a.keys() == b.keys() and a
        assert all(np.array_equal(a[k], b[k]) for k in a), name


@pytest.mark.slow
def test_the_seed_decides_the_initial_weights():
    def initial(seed):
        seeding.make_repeatable(seed)
        return zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10).get_weights()

    first, again, other = initial(1), initial(1), initial(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
