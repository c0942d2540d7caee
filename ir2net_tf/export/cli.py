"""Export a model to an LCE flatbuffer: ``python -m export --model-dir runs/demo``
or ``python -m export --model IR2ResNet18 --variant B --weights w.weights.h5``.

Writes ``<output>.tflite`` (only when the checks pass) and ``<output>.json``
(always), prints a summary. Exit status: 0 exported and verified, 1 a check
failed, 2 bad arguments or inputs.
"""

import os


import ir2net_tf  # noqa: E402,F401  (must precede TensorFlow: selects Keras 2)

import argparse
import sys
import time

from ir2net_tf import deploy
from ir2net_tf.deploy import DeployError

from ir2net_tf.export import inputs, report, source


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-dir", "--model_dir", help="A `python -m train` model directory (config.json + weights).")
    where.add_argument("--model", help="A zoo model name (see ir2net_tf.zoo.MODELS).")
    p.add_argument("--weights", help="Weights file (default with --model-dir: its best, else final weights; "
                   "with --model: none, random weights with randomized batch-norm statistics).")
    p.add_argument("--variant", help="Zoo model variant (A-D, or 'none' for a CIFAR model's paper head).")
    p.add_argument("--input-size", "--input_size", type=int, help="Input height and width (zoo default otherwise).")
    p.add_argument("--num-classes", "--num_classes", type=int, help="Classifier outputs (zoo default otherwise).")
    p.add_argument("--pad-values", "--pad_values", type=float, choices=(0.0, 1.0), help="Binary conv padding.")
    p.add_argument("--padding", choices=("same", "pytorch"),
                   help="ImageNet models: 'pytorch' for weights from `python -m zoo import-pytorch`.")
    p.add_argument("--no-recovery", "--no_recovery", action="store_true", help="Bare backbone, no recovery head.")
    p.add_argument("--binarizer", choices=("bireal", "irnet"), help="Binary convs' quantizers (default: the model's).")
    p.add_argument("--logits", action="store_true", help="Export logits instead of softmax probabilities.")
    p.add_argument("--output", "-o", help="The .tflite path (default: <model-dir>/model.tflite or ./<model>.tflite).")
    p.add_argument("--target", choices=deploy.TARGETS, default="arm", help="LCE target (default arm).")
    p.add_argument("--input-type", "--input_type", choices=sorted(deploy.IO_TYPES), default="float32")
    p.add_argument("--output-type", "--output_type", choices=sorted(deploy.IO_TYPES), default="float32")
    p.add_argument("--int8-range", "--int8_range", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help="LCE's experimental default int8 range (dummy quantization, latency tests only).")
    p.add_argument("--no-verify", "--no_verify", action="store_true", help="Skip the Keras/LCE parity check.")
    p.add_argument("--images", help=".npy/.npz array (npz: x, y) or image file/folder for the parity check.")
    p.add_argument("--random-samples", "--random_samples", type=int, default=64, help="Random inputs (default 64).")
    p.add_argument("--min-agreement", "--min_agreement", type=float,
                   help=f"Smallest acceptable top-1 agreement (default {deploy.DEFAULT_MIN_AGREEMENT}; "
                   f"{deploy.RANDOM_WEIGHTS_MIN_AGREEMENT} for random weights).")
    p.add_argument("--latency-runs", "--latency_runs", type=int, default=20, help="Timed runs per setting; 0 = skip.")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="Thread counts to time (default 1 2).")
    p.add_argument("--kernels", nargs="+", choices=sorted(deploy.KERNELS), default=["default", "indirect_bgemm"],
                   help="LCE host kernels to time (default: default indirect_bgemm).")
    return p.parse_args(argv)


def _default_output(args) -> str:
    if args.model_dir:
        return os.path.join(args.model_dir, "model.tflite")
    suffix = f"_{args.variant}" if args.variant and args.variant.lower() != "none" else ""
    return f"{args.model}{suffix}.tflite"


def load_model(args):
    if args.model_dir:
        return source.from_model_dir(args.model_dir, weights=args.weights, logits=args.logits)
    options = {
        "num_classes": args.num_classes,
        "pad_values": args.pad_values,
        "recovery": False if args.no_recovery else None,
        "padding": args.padding,
        "binarizer": args.binarizer,
    }
    if args.variant is not None:
        options["variant"] = None if args.variant.lower() == "none" else args.variant
    model = source.build_model(args.model, weights=args.weights, input_size=args.input_size, logits=args.logits,
                               **options)
    if args.weights is None:
        deploy.randomize_batch_norm(model)
    return model, {"model": args.model, "weights": args.weights, **options}


def verify(args, model, flatbuffer) -> dict:
    shape = tuple(model.input_shape[1:])
    figures = {}
    if args.random_samples > 0:
        figures["random"] = deploy.parity(model, flatbuffer, deploy.random_inputs(shape, args.random_samples))
    if args.images:
        images, labels = inputs.load_images(args.images, shape)
        figures["images"] = deploy.parity(model, flatbuffer, images, labels)
    return figures


def export(args) -> dict:
    """Does the work; returns the report. Raises DeployError on bad input."""
    output = args.output or _default_output(args)
    deploy.check_writable(output)
    deploy.check_writable(report.report_path(output))
    model, described = load_model(args)
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
    }
    failures = list(result["census"]["problems"])
    if not args.no_verify:
        random_weights = described.get("weights") is None
        threshold = args.min_agreement
        if threshold is None:
            threshold = deploy.RANDOM_WEIGHTS_MIN_AGREEMENT if random_weights else deploy.DEFAULT_MIN_AGREEMENT
        result["parity"] = verify(args, model, flatbuffer)
        result["min_agreement"] = threshold
        failures += [
            f"top-1 agreement on {name} inputs {100 * f['top1_agreement']:.1f} % < {100 * threshold:.1f} %"
            for name, f in result["parity"].items()
            if f["top1_agreement"] < threshold
        ]
        hazards = deploy.zero_padding_hazards(model)
        if failures and hazards:
            failures.append(
                "LCE computes zero-padded binary convolutions wrongly on maps smaller than the kernel: "
                f"{', '.join(hazards)}; export a larger --input-size or use --pad-values 1"
            )
    if args.latency_runs > 0:
        result["latency"] = deploy.measure_latency(
            flatbuffer, kernels=args.kernels, threads=args.threads, runs=args.latency_runs
        )
    result["ok"] = not failures
    result["failure"] = "; ".join(failures) or None
    if result["ok"]:
        deploy.atomic_write(output, flatbuffer)
    else:
        result["tflite"] = None  # nothing written: the file would not compute what Keras does
    deploy.atomic_write(report.report_path(output), report.to_json(result))
    return result


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = export(args)
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary(result))
    return 0 if result["ok"] else 1


def run():
    """Console script ``ir2net-export`` and ``python -m export``."""
    sys.exit(main())


if __name__ == "__main__":
    run()
