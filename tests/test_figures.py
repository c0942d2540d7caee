"""The pictures show what they claim: erased pixels in a colour the input
lacks, and curves.png draws a one-epoch run."""

import csv

import numpy as np
import tensorflow as tf

from ir2net_tf.training import visualize
from ir2net_tf.data import normalize
from ir2net_tf.runs import artifacts


def _views(image01, mask):
    images = normalize(image01[None]).numpy()
    return {"images": images, "attention": np.random.default_rng(0).random((1, 16, 16)), "mask": mask[None],
            "restricted": images * mask[None, ..., None], "kept": mask[None].mean(axis=(1, 2))}


def _count(rgb, colour):
    return int(np.all(np.abs(rgb.astype(int) - np.array(colour)) < 30, axis=-1).sum())


def test_erased_pixels_get_a_colour_the_input_lacks():
    grey = np.full((16, 16, 3), 0.5, np.float32)
    mask = np.ones((16, 16), np.float32)
    mask[:, :4] = 0
    assert visualize.erased_colour(grey)[0] == "magenta"
    rgb = visualize.restriction_grid(_views(grey, mask), 0, "title")
    assert _count(rgb, (255, 0, 255)) > 100  # the mask and the restricted input show the erased quarter
    assert _count(visualize.restriction_grid(_views(grey, np.ones((16, 16), np.float32)), 0), (255, 0, 255)) == 0
    magenta_image = grey.copy()
    magenta_image[0, 0] = (1.0, 0.0, 1.0)
    name, colour = visualize.erased_colour(magenta_image)
    assert name != "magenta" and np.abs(magenta_image.reshape(-1, 3) - colour).sum(axis=1).min() >= visualize.DISTINCT


def test_curves_of_a_one_epoch_run_show_the_epoch(tmp_path):
    metrics = tmp_path / "metrics.csv"
    with open(metrics, "w", newline="") as f:
        writer = csv.DictWriter(f, artifacts.METRIC_COLUMNS)
        writer.writeheader()
        writer.writerow({c: "0.5" for c in artifacts.METRIC_COLUMNS} | {"stage": "2", "epoch": "1"})
    artifacts.plot_curves(str(metrics), str(tmp_path / "curves.png"))
    rgb = tf.io.decode_png(open(tmp_path / "curves.png", "rb").read()).numpy()[..., :3]
    # The accuracy panel's middle (the legend sits in its corner): the single
    # epoch at 0.5 is a marker (matplotlib's blue train, orange validation on
    # top); a bare line of one point draws nothing there.
    height, width, _ = rgb.shape
    middle = rgb[int(0.35 * height): int(0.65 * height), int(0.7 * width): int(0.82 * width)]
    assert _count(middle, (255, 127, 14)) + _count(middle, (31, 119, 180)) > 10
