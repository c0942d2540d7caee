"""Accuracy on a dataset's validation split: of a Keras model, and of its
deployed ``.tflite`` file run in LCE's interpreter, side by side.

The number that matters for a deployed model is the file's own accuracy:
the binary convolutions are exact in LCE, but the float parts are computed
in another order, so an activation near zero can binarize to the other sign
(docs/deployment.md, "What the export checks"). ``measure_accuracy`` measures both
on the same preprocessed images and counts where their top-1 classes agree.
"""

import os
from typing import Optional

import numpy as np

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from ir2net_tf import data
from ir2net_tf.export.interpreter import FlatbufferRunner
from ir2net_tf.flag_domains import at_least

TOP_K = 5
TFLITE_IDENTIFIER = b"TFL3"  # bytes 4–8 of every .tflite flatbuffer


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _hits(outputs: np.ndarray, labels: np.ndarray):
    """(top-1 hits, top-k hits) of a batch; k is at most the class count."""
    k = min(TOP_K, outputs.shape[-1])
    top = np.argsort(-outputs, axis=-1, kind="stable")[:, :k]
    return int(np.sum(top[:, 0] == labels)), int(np.sum(np.any(top == labels[:, None], axis=-1)))


def _figures(top1: int, top5: int, count: int) -> dict:
    return {"top1": int(top1) / count, "top5": int(top5) / count, "correct": int(top1)}


def measure_accuracy(
    model,
    dataset: data.Dataset,
    *,
    flatbuffer: Optional[bytes] = None,
    batch_size: int = 64,
    num_threads: Optional[int] = None,
    progress: bool = True,
) -> dict:
    """Top-1/top-5 of ``model`` (and of ``flatbuffer``) on the validation split.

    Args:
        model: the Keras model (logits or probabilities).
        dataset: an ``ir2net_tf.data.Dataset``; its evaluation pipeline (the
            preprocessing ``python -m train`` evaluates with) feeds both.
        flatbuffer: the model's ``.tflite`` bytes, or None for Keras only.
        batch_size: images per Keras call and per interpreter call.
        num_threads: interpreter threads (default: all cores).
        progress: show a progress bar.

    Returns:
        ``{"dataset", "examples", "keras": {"top1", "top5", "correct"}}``
        plus, with a flatbuffer, ``"tflite"`` (the same figures) and
        ``"agreement"`` (fraction of images whose top-1 classes agree).

    Raises:
        ValueError: the dataset's class count does not match the model's.
    """
    from tqdm import tqdm

    at_least(1).check(batch_size, "batch_size")
    if num_threads is not None:
        at_least(1).check(num_threads, "num_threads")
    if not at_least(1).contains(dataset.image_size):
        raise ValueError(f"The dataset is prepared at image_size {dataset.image_size!r}; give a size ≥ 1.")
    classes = int(model.output_shape[-1])
    if dataset.num_classes != classes:  # fewer too: its labels would index other classes' outputs
        raise ValueError(
            f"{dataset.name} has {dataset.num_classes} classes; the model outputs {classes}. Evaluate the "
            "model on the dataset it was trained for (or one with the same classes)."
        )
    if tuple(model.input_shape[1:3]) != (dataset.image_size, dataset.image_size):
        raise ValueError(f"The dataset is prepared at {dataset.image_size}px; the model takes {model.input_shape[1:3]}.")
    runner = None
    if flatbuffer is not None:
        runner = flatbuffer_for(model, flatbuffer, batch_size=batch_size, num_threads=num_threads or _cores())
    pipeline = dataset.evaluation(batch_size)
    keras_hits, lce_hits, agree, count = np.zeros(2, int), np.zeros(2, int), 0, 0
    with tqdm(total=dataset.eval_examples, unit="img", desc=f"evaluating on {dataset.name}", disable=not progress) as bar:
        for images, labels in pipeline:
            images, labels = images.numpy(), labels.numpy()
            keras_out = model.predict_on_batch(images)
            keras_hits += _hits(keras_out, labels)
            if runner is not None:
                lce_out = runner(images)
                lce_hits += _hits(lce_out, labels)
                agree += int(np.sum(lce_out.argmax(-1) == keras_out.argmax(-1)))
            count += len(labels)
            bar.update(len(labels))
    if count == 0:
        raise ValueError(f"The {dataset.name} validation split is empty.")
    result = {"dataset": dataset.name, "examples": count, "keras": _figures(*keras_hits, count)}
    if runner is not None:
        result["tflite"] = _figures(*lce_hits, count)
        result["agreement"] = agree / count
        result["batch_size"] = runner.batch_size
    return result


def flatbuffer_for(model, flatbuffer, **runner_options) -> FlatbufferRunner:
    """LCE's runner of ``flatbuffer``, refused (ValueError) when it is not a
    ``.tflite`` file, or is the file of a model with other inputs or outputs
    than ``model``: its agreement with Keras would measure nothing."""
    if not isinstance(flatbuffer, (bytes, bytearray)) or bytes(flatbuffer[4:8]) != TFLITE_IDENTIFIER:
        raise ValueError("The flatbuffer is not a .tflite file (no TFL3 identifier); pass the bytes that "
                         "deploy.convert or `python -m export` wrote.")
    try:
        runner = FlatbufferRunner(bytes(flatbuffer), **runner_options)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"LCE's interpreter cannot load the flatbuffer: {str(error).strip()[:200]}") from None
    interpreter = runner.single
    theirs = (tuple(interpreter.input_shapes[0][1:]), int(interpreter.output_shapes[0][-1]))
    ours = (tuple(model.input_shape[1:]), int(model.output_shape[-1]))
    if theirs != ours:
        raise ValueError(
            f"The flatbuffer is another model's: it takes inputs {theirs[0]} and gives {theirs[1]} outputs; "
            f"{model.name} takes {ours[0]} and gives {ours[1]}. Pass this model's own .tflite file."
        )
    return runner


def held_out(dataset: data.Dataset, count: int):
    """The first ``count`` preprocessed images of the validation split and
    their labels, as arrays."""
    images, labels = [], []
    for x, y in dataset.evaluation(min(count, 256)):
        images.append(x.numpy())
        labels.append(y.numpy())
        if sum(map(len, labels)) >= count:
            break
    return np.concatenate(images)[:count], np.concatenate(labels)[:count]


def summary(result: dict) -> str:
    """One line per model: top-1/top-5 and, with a flatbuffer, the agreement."""
    def line(name, f):
        return f"{name} top-1 {100 * f['top1']:.2f} %, top-5 {100 * f['top5']:.2f} %"

    text = f"{result['dataset']} ({result['examples']} validation images): " + line("Keras", result["keras"])
    if "tflite" in result:
        text += f"; {line('.tflite', result['tflite'])}; top-1 agreement {100 * result['agreement']:.2f} %"
    return text
