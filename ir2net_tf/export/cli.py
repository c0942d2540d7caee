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
import time

from ir2net_tf import data, deploy, evaluation, zoo
from ir2net_tf.command_name import command_name
from ir2net_tf.files import atomic_write_together
from ir2net_tf.flag_domains import FINITE, argparse_type, at_least, fraction, one_of
from ir2net_tf.layers import PAD_VALUES
from ir2net_tf import path_args
from ir2net_tf.path_args import DIR, FILE, FILE_OR_DIR, PathArg
from ir2net_tf.deploy import DeployError

from ir2net_tf.export import inputs, report
from ir2net_tf.runs import artifacts, loading

DEFAULT_VERIFY_IMAGES = 400  # all 360 held-out digits; a few seconds for an ImageNet model
# Where a zoo model's export goes by default: a folder that .gitignore keeps
# out of a checkout (the current directory may be one).
EXPORTS_DIR = "exports"
RANDOM_WEIGHTS_NOTE = ("random weights (no --weights): the file's size, ops and latency are real, its predictions "
                       "mean nothing; pass --weights FILE or --model-dir RUN to export a trained model")


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
    p.add_argument("--target", choices=deploy.TARGETS, default="arm", help="LCE target (default arm).")
    p.add_argument("--input-type", "--input_type", choices=sorted(deploy.IO_TYPES), default="float32")
    p.add_argument("--output-type", "--output_type", choices=sorted(deploy.IO_TYPES), default="float32")
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
                   f"{deploy.DEFAULT_MIN_AGREEMENT}; {deploy.RANDOM_WEIGHTS_MIN_AGREEMENT} for random weights). "
                   "Every float input set is judged by the outputs' difference against their spread (at most "
                   f"{deploy.MAX_RELATIVE_DIFFERENCE}).")
    p.add_argument("--latency-runs", "--latency_runs", type=argparse_type(at_least(0)), default=20,
                   help="Timed runs per setting; 0 = skip.")
    p.add_argument("--threads", type=argparse_type(at_least(1)), nargs="+", default=[1, 2],
                   help="Thread counts to time (default 1 2).")
    p.add_argument("--kernels", nargs="+", choices=sorted(deploy.KERNELS), default=["default", "indirect_bgemm"],
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
    if args.int8_range is not None:
        low, high = args.int8_range
        if not low < high:
            raise DeployError(f"--int8-range MIN MAX needs MIN < MAX; got {low:g} {high:g}.")


def _default_output(args) -> str:
    if args.model_dir:
        return os.path.join(args.model_dir, artifacts.TFLITE)
    spec = zoo.get_spec(args.model)
    variant = spec.parse_variant(args.variant)
    suffix = f"_{variant}" if args.variant is not None and variant != spec.default_variant else ""
    return os.path.join(EXPORTS_DIR, f"{args.model}{suffix}.tflite")


def load_model(args):
    """(model, its description, the LoadedRun or None for a zoo model)."""
    if args.model_dir:
        run = loading.load_run(args.model_dir, weights=args.weights, logits=args.logits)
        return run.model, {"model": run.config["model"], "weights": run.weights, **run.options,
                           "dataset": run.config.get("dataset")}, run
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
        deploy.randomize_batch_norm(model)
    return model, {"model": args.model, "weights": args.weights, **options}, None


def _held_out(args, run):
    """The run's held-out images and labels, preprocessed as training evaluated them."""
    try:
        dataset = run.dataset(args.data_dir)
    except ValueError as error:
        folder = data.is_folder(run.settings.get("dataset") or "digits") and run.settings.get("dataset") != "digits"
        hint = "Pass" if folder else "Pass --data-dir, or"  # --data-dir is for tensorflow-datasets only
        raise DeployError(
            f"Cannot load the run's held-out data: {error} {hint} --verify-images 0 to skip this check."
        ) from error
    images, labels = evaluation.held_out(dataset, args.verify_images)
    return dataset, images, labels


def verify(args, model, flatbuffer, run=None, given=None) -> dict:
    """The parity figures; ``given``: --images (images, labels), loaded before the conversion."""
    shape = tuple(model.input_shape[1:])
    figures = {}
    if run is not None and args.verify_images > 0 and run.settings:
        dataset, images, labels = _held_out(args, run)
        figures["held-out"] = {**deploy.parity(model, flatbuffer, images, labels), "dataset": dataset.name}
    if args.random_samples > 0:
        figures["random"] = deploy.parity(model, flatbuffer, deploy.random_inputs(shape, args.random_samples))
    if given is not None:
        figures["images"] = deploy.parity(model, flatbuffer, *given)
    return figures


def padding_advice(args, described: dict) -> str:
    """What avoids the zero-padding hazard, as this command or training
    accepts it: a run's padding is its own (train again), a zoo model's is
    --pad-values where the model takes 1."""
    name = described.get("model") or args.model
    takes_one = 1.0 in zoo.get_spec(name).option_values("pad_values")
    if args.model_dir:
        return ("train at a larger --image_size" + (" or with --pad_values 1" if takes_one else "")
                + " (a run's padding is its own)")
    return "export a larger --input-size" + (" or use --pad-values 1" if takes_one else "")


def judge(parity: dict, min_agreement: float, quantized: bool = False, top1: bool = False) -> list:
    """Why the parity figures fail, one reason per failed check. Every input
    set is judged by what a correct conversion guarantees whatever the model
    learned: outputs as close as float rounding and rare rounding-flipped
    binarizations leave them, against their spread (deploy.output_difference).
    Top-1 agreement is reported, not judged: among a briefly trained model's
    near-uniform probabilities it is luck, on held-out images as on noise,
    and a correct conversion can lose it. It is judged on labelled sets when
    asked for (``top1``: --min-agreement given), and on every set for int8
    input or output (``quantized``: LCE's dummy quantization, latency tests
    only, rounds every output on purpose and is meant to keep the top-1 of
    most inputs)."""
    failures = []
    # Real images judge the file where there are some (a run's held-out
    # data, --images): random normal noise drives a large trained network
    # far outside its data, where float rounding flips many binarizations
    # (the ImageNet smoke run at 224: 0.09 of the spread on noise, within
    # 1e-3 on its held-out images), so noise is then reported, not judged.
    real = [name for name in parity if name != "random"]
    for name, figures in parity.items():
        if name == "random" and real and not quantized:
            continue
        why = None if quantized else deploy.difference_failure(name, figures)
        if why is None and (quantized or (top1 and "keras_accuracy" in figures)):
            why = deploy.agreement_failure(name, figures, min_agreement)
        if why:
            failures.append(why)
    return failures


def export(args) -> dict:
    """Does the work; returns the report. Raises DeployError on bad input."""
    output = args.output or _default_output(args)
    if not args.output and not args.model_dir:
        os.makedirs(EXPORTS_DIR, exist_ok=True)
    deploy.check_writable(output)
    deploy.check_writable(report.report_path(output))
    try:
        model, described, run = load_model(args)
    except ValueError as error:  # unknown model or option, weights that do not fit
        raise DeployError(str(error)) from error
    # Bad --images are bad input (exit 2), found before the slow conversion;
    # never a failed check that would remove an earlier export.
    given = None
    if args.images and not args.no_verify:
        given = inputs.load_images(args.images, tuple(model.input_shape[1:]))
    start = time.perf_counter()
    flatbuffer = deploy.convert(
        model, target=args.target, input_type=args.input_type, output_type=args.output_type,
        int8_range=args.int8_range,
    )
    result = {
        "tflite": output,
        "model": {"name": model.name, **described, "input_shape": list(model.input_shape[1:])},
        "target": args.target,
        "input_type": args.input_type,
        "output_type": args.output_type,
        "int8_range": args.int8_range,
        "convert_seconds": time.perf_counter() - start,
        "size_bytes": len(flatbuffer),
        "census": deploy.check_census(deploy.op_census(flatbuffer), deploy.keras_conv_counts(model), args.target),
        "random_weights": run is None and args.weights is None,
    }
    if result["random_weights"]:
        result["weights_note"] = RANDOM_WEIGHTS_NOTE
    failures = list(result["census"]["problems"])
    quantized = "int8" in (args.input_type, args.output_type)
    threshold = args.min_agreement
    if threshold is None:
        random_weights = described.get("weights") is None
        threshold = deploy.RANDOM_WEIGHTS_MIN_AGREEMENT if random_weights else deploy.DEFAULT_MIN_AGREEMENT
    if not args.no_verify:
        result["parity"] = verify(args, model, flatbuffer, run, given)
        result["min_agreement"] = threshold
        result["max_relative_difference"] = deploy.MAX_RELATIVE_DIFFERENCE
        failures += judge(result["parity"], threshold, quantized=quantized, top1=args.min_agreement is not None)
        hazards = deploy.zero_padding_hazards(model)
        if failures and hazards:
            failures.append(
                "LCE computes zero-padded binary convolutions wrongly on maps smaller than the kernel: "
                f"{', '.join(hazards)}; {padding_advice(args, described)}"
            )
    if args.evaluate:
        result["evaluation"] = evaluate(args, model, flatbuffer, run)
        if (quantized or args.min_agreement is not None) and result["evaluation"]["agreement"] < threshold:
            failures.append(f"top-1 agreement on {args.evaluate} {100 * result['evaluation']['agreement']:.2f} % "
                            f"< {100 * threshold:.1f} % (--min-agreement)")
    if args.latency_runs > 0:
        result["latency"] = deploy.measure_latency(
            flatbuffer, kernels=args.kernels, threads=args.threads, runs=args.latency_runs
        )
    if described.get("binary_weights") is False:
        result["note"] = (
            "this is the stage-1 model of the two-stage recipe: binary activations, real-valued weights, so its "
            "convolutions are float convolutions for LCE and 0 LceBconv2d is expected. Train --stage 2 (same "
            "--model_dir) for the binary model."
        )
    result["ok"] = not failures
    result["failure"] = "; ".join(failures) or None
    write_out(output, flatbuffer, result)
    return result


def write_out(output: str, flatbuffer: bytes, result: dict) -> None:
    """The .tflite file (only when ``result`` is OK) and its report, written
    as one unit (files.atomic_write_together): the new pair, or on any write
    failure (a full disk) the old pair untouched. A failed export removes an
    earlier export's file at ``output``, which would otherwise pass for this
    export's verified result beside a report saying ``"tflite": null``."""
    stale = []
    if not result["ok"]:
        result["tflite"] = None  # nothing written: the file would not compute what Keras does
        if os.path.exists(output):
            stale = [output]
            result["failure"] += f"; the earlier {output} was removed"
    files = {output: flatbuffer} if result["ok"] else {}
    files[report.report_path(output)] = report.to_json(result)
    atomic_write_together(files, remove=stale)


def evaluate(args, model, flatbuffer, run) -> dict:
    """The --evaluate figures; the run's own preprocessing when it trained on that dataset."""
    same = run is not None and run.settings.get("dataset") == args.evaluate
    try:
        if same:
            dataset = run.dataset(args.data_dir)
        else:
            dataset = data.load(args.evaluate, image_size=model.input_shape[1], data_dir=args.data_dir)
        return evaluation.evaluate(model, dataset, flatbuffer=flatbuffer, batch_size=args.batch_size)
    except ValueError as error:
        raise DeployError(f"--evaluate {args.evaluate}: {error}") from error


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
    print(report.summary(result))
    if result.get("note"):
        print(f"  note: {result['note']}")
    return 0 if result["ok"] else 1


def run():
    """Console script ``ir2net-export`` and ``python -m export``."""
    sys.exit(main())


if __name__ == "__main__":
    run()
