"""Measured accuracy for the catalog: where a weights file is given
(``--weights NAME[:VARIANT]=FILE``), the model is converted to its
``.tflite`` file and both the file (in LCE's interpreter) and the Keras
model are evaluated on a dataset's validation split, beside the paper's
reported figures."""

from typing import Dict, Iterable, Optional, Tuple

from ir2net_tf.flag_domains import argparse_type, at_least
from ir2net_tf import path_args

Key = Tuple[str, Optional[str]]


def add_arguments(parser) -> None:
    """The measured-accuracy options shared by ``list`` and ``benchmark``."""
    group = parser.add_argument_group("measured accuracy (optional)")
    group.add_argument("--weights", action="append", default=[], metavar="NAME[:VARIANT]=FILE",
                       help="weights of a zoo model to evaluate, e.g. IR2ResNet18:B=ir2resnet18_b.weights.h5 "
                            "or IR2ResNet20=runs/demo/best.weights.h5 (repeatable); needs --dataset")
    group.add_argument("--dataset", help="digits, a tensorflow-datasets name or an image folder, as `python -m train`")
    group.add_argument("--data_dir", type=path_args.argparse_type(path_args.PathArg(path_args.DIR)), help="tensorflow-datasets data directory")
    group.add_argument("--image_size", type=argparse_type(at_least(1)),
                       help="input size for the measured models (the zoo default)")
    group.add_argument("--padding", choices=("same", "pytorch"),
                       help="'pytorch' for weights from `python -m zoo import-pytorch`")


def parse_weights(specs: Iterable[str], dataset: Optional[str]) -> Dict[Key, str]:
    """``NAME[:VARIANT]=FILE`` strings → {(name, variant): file}; the variant
    defaults to the model's default one (``ModelSpec.parse_variant``).

    Raises:
        ValueError: a malformed spec, an unknown model, or no dataset.
    """
    chosen = {}
    for spec in specs:
        from ir2net_tf import zoo  # (imports TensorFlow: only where weights are given)

        target, sep, path = spec.partition("=")
        if not sep or not target or not path:
            raise ValueError(f"--weights {spec!r}: write NAME[:VARIANT]=FILE, e.g. IR2ResNet18:B=w.weights.h5.")
        name, _, variant = target.partition(":")
        chosen[(name, zoo.get_spec(name).parse_variant(variant or None))] = path
    if chosen and not dataset:
        raise ValueError("--weights needs --dataset: the data to measure the accuracy on.")
    return chosen


def measure_accuracy(name: str, variant: Optional[str], weights: str, *, dataset: str, data_dir=None,
                     image_size: Optional[int] = None, padding: Optional[str] = None, progress: bool = True) -> dict:
    """Top-1/top-5 of the model's ``.tflite`` file and of Keras on ``dataset``.

    Args:
        name, variant: the zoo model.
        weights: its weights file (checked against the model's options).
        dataset: the dataset whose validation split is evaluated.
        data_dir: the tensorflow-datasets data directory.
        image_size: input size (the zoo default when None).
        padding: zoo.build's padding option ('pytorch' for imported weights).
        progress: show a progress bar.

    Returns:
        ``measured_top1`` (.tflite), ``measured_keras_top1``, their top-5,
        agreement, dataset and image count; accuracies in percent.
    """
    from ir2net_tf import data, zoo
    from ir2net_tf.export import evaluation
    from ir2net_tf.export.convert import convert
    from ir2net_tf.runs.loading import build_model

    size = image_size or zoo.get_spec(name).input_size
    ds = data.load(dataset, image_size=size, data_dir=data_dir)
    model = build_model(name, weights=weights, input_size=size, logits=True, variant=variant, padding=padding,
                        num_classes=ds.num_classes)
    result = evaluation.measure_accuracy(model, ds, flatbuffer=convert(model), progress=progress)
    return {
        "measured_top1": 100 * result["tflite"]["top1"],
        "measured_top5": 100 * result["tflite"]["top5"],
        "measured_keras_top1": 100 * result["keras"]["top1"],
        "measured_agreement": 100 * result["agreement"],
        "measured_dataset": ds.name,
        "measured_examples": result["examples"],
        "measured_weights": weights,
    }


COLUMNS = (("measured_top1", "top-1 (.tflite, measured)"), ("measured_keras_top1", "top-1 (Keras, measured)"))


def note(rows) -> str:
    """The sentence under a table that says what the measured columns are."""
    measured = [r for r in rows if r.get("measured_top1") is not None]
    if not measured:
        return ""
    where = ", ".join(sorted({f"{r['measured_dataset']} ({r['measured_examples']} images)" for r in measured}))
    return (f" Measured columns: the weights given, converted to .tflite and run in LCE's interpreter (and the Keras "
            f"model) on the validation split of {where}.")
