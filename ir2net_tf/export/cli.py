"""Export a model to an LCE flatbuffer: ``python -m export --model-dir runs/demo``
or ``python -m export --model IR2ResNet18 --variant B --weights w.weights.h5``.

From a model directory the file is checked against Keras on the run's own
held-out images (``--verify-images``), with both accuracies; ``--evaluate
DATASET`` measures the file's top-1/top-5 on a whole validation split.
Writes ``<output>.tflite`` (only when the checks pass) and ``<output>.json``
(always), prints a summary. Exit status: 0 exported and verified, 1 a check
failed, 2 bad arguments or inputs.
"""

import os


import ir2net_tf  # noqa: E402,F401  (must precede TensorFlow: selects Keras 2)

import argparse
import sys

from ir2net_tf import zoo
from ir2net_tf._util.command_name import command_name
from ir2net_tf.flag_domains import FINITE, argparse_type, at_least, fraction, one_of
from ir2net_tf.nn.layers import PAD_VALUES
from ir2net_tf import path_args
from ir2net_tf.path_args import DIR, FILE, FILE_OR_DIR, PathArg

from ir2net_tf.export import convert, inputs, parity, report, writing
from ir2net_tf.export.api import DEFAULT_VERIFY_IMAGES, ExportReport, check_int8_range, export_model
from ir2net_tf.export.errors import DeployError
from ir2net_tf.export.interpreter import KERNELS
from ir2net_tf.export.writing import write_out  # noqa: F401  (cli.write_out: its name before export.writing)
from ir2net_tf.runs import artifacts, loading

# Where a zoo model's export goes by default: a folder that .gitignore keeps
# out of a checkout (the current directory may be one).
EXPORTS_DIR = "exports"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=command_name("export"), description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-dir", "--model_dir",
                       type=path_args.argparse_type(PathArg(DIR, what="a run's folder")),
                       help="A `python -m train` model directory (config.json + weights).")
    where.add_argument("--model", help="A zoo model name (see ir2net_tf.zoo.MODELS).")
    p.add_argument("--weights", type=path_args.argparse_type(PathArg(
        FILE, suffixes=path_args.WEIGHTS_SUFFIXES, checkpoint=True, what="a weights file")), help="Weights file (default with --model-dir: its best, else final weights; "
                   "with --model: none, random weights with randomized batch-norm statistics).")
    p.add_argument("--variant", help="Zoo model variant (`python -m zoo list` shows each model's; default: the paper's head).")
    p.add_argument("--input-size", "--input_size", type=argparse_type(at_least(1)),
                   help="Input height and width (zoo default otherwise).")
    p.add_argument("--num-classes", "--num_classes", type=argparse_type(at_least(1)),
                   help="Classifier outputs (zoo default otherwise).")
    p.add_argument("--pad-values", "--pad_values", type=argparse_type(one_of(*PAD_VALUES)),
                   help="Binary conv padding.")
    p.add_argument("--padding", choices=("same", "pytorch"),
                   help="ImageNet models: 'pytorch' for weights from `python -m zoo import-pytorch`.")
    p.add_argument("--no-recovery", "--no_recovery", action="store_true", help="Bare backbone, no recovery head.")
    p.add_argument("--binarizer", choices=("bireal", "irnet"), help="Binary convs' quantizers (default: the model's).")
    p.add_argument("--logits", action="store_true", help="Export logits instead of softmax probabilities.")
    p.add_argument("--output", "-o",
                   type=path_args.argparse_type(PathArg(FILE, must_exist=False, suffixes=(".tflite",))),
                   help="The .tflite path (default: <model-dir>/model.tflite, or "
                   f"{EXPORTS_DIR}/<model>.tflite for --model).")
    p.add_argument("--target", choices=convert.TARGETS, default="arm", help="LCE target (default arm).")
    p.add_argument("--input-type", "--input_type", choices=sorted(convert.IO_TYPES), default="float32")
    p.add_argument("--output-type", "--output_type", choices=sorted(convert.IO_TYPES), default="float32")
    p.add_argument("--int8-range", "--int8_range", type=argparse_type(FINITE), nargs=2, metavar=("MIN", "MAX"),
                   help="LCE's experimental default int8 range (dummy quantization, latency tests only).")
    p.add_argument("--no-verify", "--no_verify", action="store_true", help="Skip the Keras/LCE parity check.")
    p.add_argument("--images", type=path_args.argparse_type(PathArg(
        FILE_OR_DIR, suffixes=path_args.ARRAY_SUFFIXES + inputs.IMAGE_SUFFIXES)),
        help=".npy/.npz array (npz: x, y) or image file/folder for the parity check.")
    p.add_argument("--verify-images", "--verify_images", type=argparse_type(at_least(0)), default=DEFAULT_VERIFY_IMAGES,
                   metavar="N",
                   help="With --model-dir: the first N images of the run's held-out split for the parity check, "
                   f"with labels (default {DEFAULT_VERIFY_IMAGES}; 0 = none).")
    p.add_argument("--random-samples", "--random_samples", type=argparse_type(at_least(0)), default=64,
                   help="Random inputs, an extra parity check (default 64).")
    p.add_argument("--evaluate", metavar="DATASET",
                   help="Top-1/top-5 of the .tflite (LCE's interpreter) and of Keras on the whole validation split "
                   "of DATASET: digits, a tensorflow-datasets name or an image folder (as `python -m train`).")
    p.add_argument("--data-dir", "--data_dir", type=path_args.argparse_type(PathArg(DIR)), help="tensorflow-datasets data directory for --evaluate.")
    p.add_argument("--batch-size", "--batch_size", type=argparse_type(at_least(1)), default=64,
                   help="Batch size of --evaluate (64).")
    p.add_argument("--min-agreement", "--min_agreement", type=argparse_type(fraction()),
                   help="Also judge top-1 agreement on labelled inputs (held-out, --images with labels, "
                   "--evaluate): at least this fraction. Int8 files are always judged by it (default "
                   f"{parity.DEFAULT_MIN_AGREEMENT}; {parity.RANDOM_WEIGHTS_MIN_AGREEMENT} for random weights). "
                   "Every float input set is judged by the outputs' difference against their spread (at most "
                   f"{parity.MAX_RELATIVE_DIFFERENCE}).")
    p.add_argument("--latency-runs", "--latency_runs", type=argparse_type(at_least(0)), default=20,
                   help="Timed runs per setting; 0 = skip.")
    p.add_argument("--threads", type=argparse_type(at_least(1)), nargs="+", default=[1, 2],
                   help="Thread counts to time (default 1 2).")
    p.add_argument("--kernels", nargs="+", choices=sorted(KERNELS), default=["default", "indirect_bgemm"],
                   help="LCE host kernels to time (default: default indirect_bgemm).")
    return p


def parse_args(argv):
    return build_parser().parse_args(argv)


# What --model-dir takes from the run's config.json; given with it, they would be ignored.
MODEL_OPTIONS = {"input_size": "--input-size", "num_classes": "--num-classes", "pad_values": "--pad-values",
                 "no_recovery": "--no-recovery", "variant": "--variant", "padding": "--padding"}


def check_arguments(args) -> None:
    """Refuses, before any work, arguments that would be ignored or cannot
    work together (DeployError: exit 2); each argument's own range is its
    ``type`` (flag_domains), checked while parsing."""
    if args.model_dir:
        ignored = [flag for name, flag in MODEL_OPTIONS.items() if getattr(args, name) not in (None, False)]
        if ignored:
            raise DeployError(
                f"--model-dir rebuilds the model from the run's config.json, so {', '.join(ignored)} would be "
                "ignored; drop them, or export with --model NAME --weights FILE and those options instead."
            )
    check_int8_range(args.int8_range)


def _default_output(args) -> str:
    if args.model_dir:
        return os.path.join(args.model_dir, artifacts.TFLITE)
    spec = zoo.get_spec(args.model)
    variant = spec.parse_variant(args.variant)
    suffix = f"_{variant}" if args.variant is not None and variant != spec.default_variant else ""
    return os.path.join(EXPORTS_DIR, f"{args.model}{suffix}.tflite")


def load_model(args):
    """(the --model zoo model with --weights or random weights, its description for the report)."""
    options = {
        "num_classes": args.num_classes,
        "pad_values": args.pad_values,
        "recovery": False if args.no_recovery else None,
        "padding": args.padding,
        "binarizer": args.binarizer,
    }
    if args.variant is not None:
        options["variant"] = args.variant
    model = loading.build_model(args.model, weights=args.weights, input_size=args.input_size, logits=args.logits,
                                **options)
    if args.weights is None:
        convert.randomize_batch_norm(model)
    return model, {"model": args.model, "weights": args.weights, **options}


def export(args) -> ExportReport:
    """The export ``args`` ask for (``export_model``). Raises ExportError
    (or DeployError, ValueError) on bad input."""
    output = args.output or _default_output(args)
    if not args.output and not args.model_dir:
        os.makedirs(EXPORTS_DIR, exist_ok=True)
    options = dict(
        target=args.target, input_type=args.input_type, output_type=args.output_type, int8_range=args.int8_range,
        verify=not args.no_verify, images=args.images, verify_images=args.verify_images,
        random_samples=args.random_samples, min_agreement=args.min_agreement, evaluate=args.evaluate,
        data_dir=args.data_dir, batch_size=args.batch_size, latency_runs=args.latency_runs, threads=args.threads,
        kernels=args.kernels,
    )
    if args.model_dir:
        return export_model(args.model_dir, output, weights=args.weights, logits=args.logits, **options)
    # Before the model is built, as for a run: an unwritable output fails at once.
    writing.check_writable(output)
    writing.check_writable(report.report_path(output))
    model, described = load_model(args)
    return export_model(model, output, random_weights=args.weights is None, model_info=described, **options)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # LCE's converter reloads the model it saved, and tf-keras then warns that
    # the reloaded model's metrics are not built: nothing about the export.
    import logging

    logging.getLogger("tensorflow").addFilter(
        lambda record: "compiled metrics have yet to be built" not in record.getMessage())
    try:
        check_arguments(args)
        result = export(args)
    except (DeployError, ValueError) as error:  # ValueError: an unknown model or variant, an unwritable output
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # files are written last, as one unit: an earlier export is intact
        print("Interrupted (Ctrl-C); nothing was written.", file=sys.stderr)
        return 130
    print(result.summary())
    if result.details.get("note"):
        print(f"  note: {result.details['note']}")
    return 0 if result.ok else 1


def run():
    """Console script ``ir2net-export`` and ``python -m export``."""
    sys.exit(main())


if __name__ == "__main__":
    run()
