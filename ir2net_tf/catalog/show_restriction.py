"""``python -m zoo show-restriction``: what information restriction erases
from real images, as one PNG grid per image."""

import io
import os
from typing import List, Tuple

import numpy as np

from ir2net_tf._util.files import atomic_write
from ir2net_tf.flag_domains import argparse_type, at_least
from ir2net_tf import path_args
from ir2net_tf.path_args import DIR, FILE, FILE_OR_DIR, PathArg
from ir2net_tf.export.inputs import IMAGE_SUFFIXES  # what --images reads (export.inputs.load_images)
from ir2net_tf.nn.restriction import DEFAULT_LAMBDA, NORMALIZATIONS


def add_arguments(parser) -> None:
    source = parser.add_argument_group("model (one of)")
    source.add_argument("--model_dir", type=path_args.argparse_type(PathArg(DIR, what="a run's folder")), help="a run of `python -m train` (its config.json and best weights)")
    source.add_argument("--model", help="a zoo model name, with --variant/--weights/--input_size")
    source.add_argument("--variant", help="zoo model variant (default: the paper's head)")
    source.add_argument("--weights", type=path_args.argparse_type(PathArg(
        FILE, suffixes=path_args.WEIGHTS_SUFFIXES, checkpoint=True, what="a weights file")), help="weights file for --model (default: random initialization)")
    source.add_argument("--input_size", type=argparse_type(at_least(1)), help="input height and width for --model")
    images = parser.add_argument_group("images (one of)")
    images.add_argument("--images", type=path_args.argparse_type(PathArg(
        FILE_OR_DIR, suffixes=path_args.ARRAY_SUFFIXES + IMAGE_SUFFIXES)),
        help="an image file, a folder of images, or a .npy/.npz array")
    images.add_argument("--digits", type=argparse_type(at_least(1)), metavar="N",
                        help="the first N held-out digits (the demo data)")
    parser.add_argument("--lambda", dest="lam", type=argparse_type(at_least(0, integer=False)), default=DEFAULT_LAMBDA,
                        help="the mask's λ (0.15)")
    parser.add_argument("--normalization", choices=NORMALIZATIONS, default="height")
    parser.add_argument(
        "--inference",
        action="store_true",
        help="use batch-norm moving statistics (deployed behaviour) instead of the training step's batch statistics",
    )
    parser.add_argument("--stages", action="store_true", help="also show each stage's attention map")
    parser.add_argument("--output_dir", default=None, type=path_args.argparse_type(PathArg(DIR, must_exist=False)),
                        help="where the PNGs go (default: MODEL_DIR/restriction or ./restriction)")


def _load_model(args):
    from ir2net_tf.runs.loading import build_model, load_run

    if bool(args.model_dir) == bool(args.model):
        raise ValueError("Give exactly one of --model_dir DIR or --model NAME.")
    if args.model_dir:
        run = load_run(args.model_dir, logits=True)
        return run.model, run.config["model"]
    from ir2net_tf import zoo

    variant = zoo.get_spec(args.model).parse_variant(args.variant)
    model = build_model(args.model, weights=args.weights, input_size=args.input_size, logits=True, variant=variant)
    return model, args.model


def _load_images(args, input_shape) -> Tuple[np.ndarray, List[str]]:
    if bool(args.images) == bool(args.digits):
        raise ValueError("Give exactly one of --images PATH or --digits N.")
    if args.digits:
        from ir2net_tf.data import digits_arrays, normalize

        _, held_out, _, labels = digits_arrays(input_shape[0])
        count = min(args.digits, len(held_out))
        images = normalize(held_out[:count] / 255.0).numpy()
        return images, [f"digit{i:03d}_label{labels[i]}" for i in range(count)]
    from ir2net_tf.export.inputs import image_files, load_images

    images, _ = load_images(args.images, input_shape)
    if os.path.isdir(args.images) or not args.images.endswith((".npy", ".npz")):
        names = [os.path.splitext(os.path.basename(p))[0] for p in image_files(args.images)]
    else:
        names = [f"image{i:03d}" for i in range(len(images))]
    return images, names[: len(images)]


def run(args) -> int:
    from ir2net_tf.training.visualize import describe_lambdas, png_bytes, restriction_grid, restriction_views

    model, model_name = _load_model(args)
    images, names = _load_images(args, tuple(model.input_shape[1:]))
    views = restriction_views(
        model, images, lam=args.lam, normalization=args.normalization, training=not args.inference, stages=args.stages
    )
    output_dir = args.output_dir or os.path.join(args.model_dir or ".", "restriction")
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"Cannot create --output_dir {output_dir!r} ({error.strerror}); choose another.") from error
    mode = "moving statistics" if args.inference else "training-step batch statistics"
    for index, name in enumerate(names):
        path = os.path.join(output_dir, f"{name}.png")
        title = f"{model_name}: λ={args.lam}, {mode}"
        atomic_write(path, png_bytes(restriction_grid(views, index, title)))
        print(f"{path}: kept {views['kept'][index]:.4f} of the pixels")
    print(f"These {len(names)} images at λ={args.lam} keep {views['kept'].mean():.1%} of the pixels; "
          f"{describe_lambdas(views['erasing_lambdas'])}")
    # The exact masks, for anyone who wants numbers rather than pictures.
    buffer = io.BytesIO()
    np.savez_compressed(buffer, names=np.array(names), mask=views["mask"], kept=views["kept"])
    atomic_write(os.path.join(output_dir, "masks.npz"), buffer.getvalue())
    return 0
