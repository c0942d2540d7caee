"""Pictures of what information restriction does (like the paper's Figure 1).

``restriction_views`` computes, for a batch, exactly what the IR² training
step computes: F from a forward pass in training mode on the batch, the
attention map, the mask and the restricted input. ``restriction_grid``
draws one image's views as an RGB array (for PNG files and TensorBoard).
"""

from typing import Dict, Optional

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ir2net_tf._util import plotting  # noqa: E402
from ir2net_tf.data import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from ir2net_tf.models.any_backbone import auto_tap_layers  # noqa: E402
from ir2net_tf.models.common import FEATURES_LAYER  # noqa: E402
from ir2net_tf.nn.restriction import (  # noqa: E402
    DEFAULT_LAMBDA,
    restrict,
    restriction_mask,
    upsampled_attention,
)


def restriction_views(
    model: tf.keras.Model,
    images,
    *,
    lam: float = DEFAULT_LAMBDA,
    normalization: str = "height",
    training: bool = True,
    stages: bool = False,
) -> Dict[str, np.ndarray]:
    """The restriction of a batch of normalized ``images``.

    ``training=True`` (default) reproduces the training step: batch-norm uses
    the batch's own statistics, so the mask is the one training applies to
    this batch. ``training=False`` uses the moving statistics, as deployed.
    ``stages=True`` adds the attention map of every stage output (the taps).

    Returns numpy arrays: ``images`` (N, H, W, 3), ``attention`` (N, H, W),
    ``mask`` (N, H, W), ``restricted`` (N, H, W, 3), ``kept`` (N,) the
    fraction of pixels kept, ``erasing_lambdas`` (``erasing_lambdas`` of
    the batch), and with ``stages`` a dict ``stage_attention`` of layer
    name → (N, H, W).
    """
    images = tf.convert_to_tensor(images, tf.float32)
    names = [FEATURES_LAYER]
    if stages:
        names = auto_tap_layers(model, FEATURES_LAYER) + names
    probe = tf.keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    # Calling the sub-model in training mode would update the moving
    # statistics; work on copies so showing never changes the model.
    saved = [v.numpy() for v in model.non_trainable_weights]
    try:
        maps = probe(images, training=training)
    finally:
        for variable, value in zip(model.non_trainable_weights, saved):
            variable.assign(value)
    maps = maps if isinstance(maps, (list, tuple)) else [maps]
    features = maps[-1]
    mask = restriction_mask(features, images, lam, normalization)
    views = {
        "images": images.numpy(),
        "attention": upsampled_attention(features, images, normalization).numpy(),
        "mask": mask.numpy()[..., 0],
        "restricted": restrict(images, mask).numpy(),
    }
    views["kept"] = views["mask"].mean(axis=(1, 2))
    views["erasing_lambdas"] = erasing_lambdas(views["attention"])
    if stages:
        views["stage_attention"] = {
            name: upsampled_attention(m, images, normalization).numpy() for name, m in zip(names, maps)
        }
    return views


# The erased fractions whose λ the tools report.
ERASED_FRACTIONS = (0.10, 0.25, 0.50)


def erasing_lambdas(attention: np.ndarray, fractions=ERASED_FRACTIONS) -> Dict[float, float]:
    """The λ that would erase each fraction of a batch's pixels.

    A pixel is erased when its upsampled attention is at most λ times its
    image's mean (arXiv:2210.02637, information restriction), so the λ that
    erases a fraction q of the batch is the q-quantile, over all its pixels,
    of A_up / mean(A_up).

    Args:
        attention: upsampled attention maps A_up, (N, H, W).
        fractions: erased fractions in [0, 1].

    Returns:
        ``{fraction: λ}``.
    """
    attention = np.asarray(attention, np.float64)
    means = attention.mean(axis=(1, 2), keepdims=True)
    ratio = attention / np.maximum(means, np.finfo(np.float64).tiny)
    return {q: float(np.quantile(ratio, q)) for q in fractions}


def describe_lambdas(lambdas: Dict[float, float]) -> str:
    """"λ for 10 % / 25 % / 50 % erased: 0.41 / 0.62 / 0.95"."""
    percents = " / ".join(f"{100 * q:g} %" for q in lambdas)
    values = " / ".join(f"{lam:.3g}" for lam in lambdas.values())
    return f"λ for {percents} erased: {values}"


def to_display(normalized: np.ndarray) -> np.ndarray:
    """Undo the mean/std normalization for display, clipped to 0–1."""
    return np.clip(normalized * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN), 0.0, 1.0)


# Colours an erased pixel may take: the one farthest from every pixel of the
# image is used, so it is never mistaken for the input (digits are grey, a
# photo rarely holds pure magenta and pure cyan and pure lime at once).
ERASED_COLOURS = {
    "magenta": (1.0, 0.0, 1.0), "cyan": (0.0, 1.0, 1.0), "lime": (0.0, 1.0, 0.0),
    "red": (1.0, 0.0, 0.0), "blue": (0.0, 0.0, 1.0), "yellow": (1.0, 1.0, 0.0),
}


# An L1 distance (0–3 over RGB) from every pixel at which a colour cannot be
# confused with the image: magenta, the first, for almost every image.
DISTINCT = 0.6


def erased_colour(image: np.ndarray):
    """(name, RGB) for erased pixels of ``image`` (H, W, 3 on the 0–1 scale):
    the first ``ERASED_COLOURS`` entry at least ``DISTINCT`` from every
    pixel, else the farthest one."""
    pixels = image.reshape(-1, 3)
    distance = {name: float(np.min(np.abs(pixels - np.array(rgb)).sum(axis=1)))
                for name, rgb in ERASED_COLOURS.items()}
    name = next((n for n, d in distance.items() if d >= DISTINCT), max(distance, key=distance.get))
    return name, np.array(ERASED_COLOURS[name])


def _frame(ax) -> None:
    """A thin frame and no ticks: each panel stands out from the page."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("0.3")
        spine.set_linewidth(1.0)


def restriction_grid(views: Dict[str, np.ndarray], index: int, title: Optional[str] = None) -> np.ndarray:
    """One image's input, attention, mask and restricted input (and, if
    present, each stage's attention) as an RGB uint8 array. Erased pixels
    are drawn in a colour the input does not have (``erased_colour``), in
    the mask and in the restricted input."""
    image = to_display(views["images"][index])
    kept = views["mask"][index][..., None] > 0.5
    colour_name, colour = erased_colour(image)
    mask = np.where(kept, 1.0, colour)  # kept: white
    restricted = np.where(kept, to_display(views["restricted"][index]), colour)
    panels = [
        ("input", image, None),
        ("attention (F)", views["attention"][index], "inferno"),
        (f"mask: {views['kept'][index]:.1%} kept\n(erased: {colour_name})", mask, None),
        ("restricted input", restricted, None),
    ]
    stage_maps = views.get("stage_attention") or {}
    rows = 2 if stage_maps else 1
    cols = max(len(panels), len(stage_maps))
    figure = plotting.figure(figsize=(2.6 * cols, 3.0 * rows + (0.4 if title else 0)), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, picture, cmap) in zip(axes[0], panels):
        ax.axis("on")
        ax.imshow(picture, cmap=cmap, interpolation="nearest")
        _frame(ax)
        ax.set_title(label, fontsize=9)
    for ax, (name, attention) in zip(axes[1] if rows > 1 else [], stage_maps.items()):
        ax.axis("on")
        ax.imshow(attention[index], cmap="inferno")
        _frame(ax)
        ax.set_title(f"attention: {name}" if len(name) < 24 else f"attention:\n{name}", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.canvas.draw()
    return np.array(figure.canvas.buffer_rgba())[..., :3]


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encodes an RGB uint8 array as PNG."""
    return tf.io.encode_png(tf.convert_to_tensor(rgb, tf.uint8)).numpy()


class RestrictionGridLogger(tf.keras.callbacks.Callback):
    """Logs the restriction grid of a fixed batch to TensorBoard.

    Every ``every`` epochs (and after the first), each image of ``images``
    gets an image summary ``restriction/<i>`` in ``log_dir``: how what the
    network erases changes as it learns. The scalars
    ``restriction/lambda_erasing_<p>pct`` are the λ that would erase p % of
    the batch (``erasing_lambdas``), also in each grid's title.
    """

    def __init__(self, student: tf.keras.Model, images, log_dir: str, *, every: int = 5, lam: float = DEFAULT_LAMBDA,
                 normalization: str = "height", initial_epoch: int = 0):
        super().__init__()
        self.student = student
        self.images = np.asarray(images, np.float32)
        self.every = max(1, int(every))
        self.lam = lam
        self.normalization = normalization
        self.writer = tf.summary.create_file_writer(log_dir)
        self.initial_epoch = initial_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch != self.initial_epoch and (epoch + 1) % self.every:
            return
        views = restriction_views(self.student, self.images, lam=self.lam, normalization=self.normalization)
        lambdas = views["erasing_lambdas"]
        with self.writer.as_default():
            for index in range(len(self.images)):
                title = f"epoch {epoch + 1}, λ={self.lam}; this batch: {describe_lambdas(lambdas)}"
                grid = restriction_grid(views, index, title)
                tf.summary.image(f"restriction/{index}", grid[np.newaxis], step=epoch + 1)
            for fraction, lam in lambdas.items():
                tf.summary.scalar(f"restriction/lambda_erasing_{100 * fraction:g}pct", lam, step=epoch + 1)
        self.writer.flush()
