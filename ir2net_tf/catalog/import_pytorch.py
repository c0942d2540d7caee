"""Import an authors' PyTorch IR²Net checkpoint into our Keras model.

  python -m zoo import-pytorch checkpoint.pth.tar --model IR2ResNet18 --variant B \\
      --output ir2_resnet18_b.weights.h5

Reads the reference's ``checkpoint.pth.tar`` (a ``state_dict`` saved through
``nn.DataParallel``), checks that every tensor has a place in the model and
every model weight a tensor, and saves Keras HDF5 weights (atomically). The
weights are meant for the model built with ``padding="pytorch"``, which
reproduces the reference's outputs. Needs PyTorch (``pip install torch==2.13.0``, the ``torch``
extra). Exit status: 0 imported, 2 bad arguments or a
checkpoint that does not fit.
"""

import ir2net_tf  # noqa: F401  (must precede TensorFlow: selects Keras 2)

import argparse
import sys
from typing import List, Optional

from ir2net_tf._util.command_name import command_name
from ir2net_tf.flag_domains import argparse_type, at_least
from ir2net_tf import path_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{command_name('zoo')} import-pytorch",
        description="Import an authors' PyTorch IR²Net ImageNet checkpoint into Keras weights.",
    )
    p.add_argument("checkpoint", type=path_args.argparse_type(path_args.PathArg(path_args.FILE)), help="The reference's checkpoint.pth.tar (or a saved state dict).")
    from ir2net_tf.interop.pytorch import importable_models

    p.add_argument("--model", choices=[s.name for s in importable_models()],
                   help="Expected model (default: detected from the checkpoint).")
    p.add_argument("--variant", help="Expected variant (default: detected from the checkpoint).")
    p.add_argument("--output", "-o", required=True, type=path_args.argparse_type(path_args.PathArg(
        path_args.FILE, must_exist=False, suffixes=(".weights.h5", ".h5"))),
                   help="Keras weights file to write: NAME.weights.h5 (Keras' weights format, loads into the "
                        "padding='pytorch' model) or NAME.h5 (legacy HDF5, loads into either padding).")
    p.add_argument("--step1", action="store_true",
                   help="A step-1 checkpoint (real weights, binary activations): build with "
                        "binary_weights=False. Default: step 2, binary weights (the released models).")
    p.add_argument("--input-size", "--input_size", type=argparse_type(at_least(32)), default=224,
                   help="Input height and width of the model (default 224; a multiple of 32).")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the import; returns the exit status (0 done, 2 failure)."""
    args = build_parser().parse_args(argv)
    from ir2net_tf.interop import pytorch as pytorch_import

    try:
        pytorch_import.check_output_path(args.output)
        state = pytorch_import.load_state_dict(args.checkpoint)
        name, variant, num_classes = pytorch_import.detect_architecture(state)
        model = pytorch_import.build_for_checkpoint(
            state, model=args.model, variant=args.variant, binary_weights=not args.step1,
            input_size=args.input_size,
        )
        counts = pytorch_import.assign_state_dict(model, state)
        pytorch_import.save_weights_atomic(model, args.output)
    except (ValueError, ImportError) as error:  # CheckpointError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    size = args.input_size
    if counts["zero_binary_weights"] and not args.step1:
        print(
            f"warning: {counts['zero_binary_weights']} binary weights are exactly 0; PyTorch's sign makes "
            "them 0, Larq's and LCE's +1, so outputs may differ slightly from the reference's.",
            file=sys.stderr,
        )
    print(
        f"Imported {args.checkpoint}: {name} variant {variant}, {num_classes} classes, "
        f"{counts['keys']} tensors into {counts['layers']} layers -> {args.output}\n"
        "Load it with:\n"
        "  from ir2net_tf import zoo\n"
        f"  model = zoo.{name}(input_shape=({size}, {size}, 3), variant={variant!r}, num_classes={num_classes}, "
        f"binary_weights={not args.step1}, padding=\"pytorch\", weights={args.output!r})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
