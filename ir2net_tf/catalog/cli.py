"""python -m zoo: the IR²Net model catalog.

  python -m zoo list [--json]             every model and variant: parameters, BOPs,
                                          FLOPs, size, the paper's accuracy
  python -m zoo summary NAME [--variant X] the per-layer Larq summary of one model
  python -m zoo benchmark [...]            conversion, host latency, size and training
                                          throughput of the IR² models and anchors
  python -m zoo show-restriction ...      PNGs of the attention, mask and restricted
                                          input for real images
  python -m zoo import-pytorch CKPT ...   the authors' PyTorch checkpoint → Keras weights
"""

import os


import ir2net_tf  # noqa: E402,F401  (Keras 2 before TensorFlow)

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

from ir2net_tf import zoo
from ir2net_tf.deploy import DeployError
from ir2net_tf.catalog import benchmark, show_restriction


def _variant(text):
    return None if text in (None, "", "paper", "None") else text.upper()


def cmd_list(args) -> int:
    from ir2net_tf.catalog.table import catalog_rows, markdown_table

    rows = catalog_rows(progress=not args.json)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        print(markdown_table(rows))
        print(
            "\nFLOPs = BOPs / 64 + full-precision MACs. Sizes count binary weights at 1 bit. "
            "Accuracies are reported ImageNet / CIFAR-10 figures, not ours: the IR²Net paper's, "
            "and for the IRNet* rows those of IR-Net's own release."
        )
    return 0


def cmd_summary(args) -> int:
    import larq as lq

    info = zoo.get_model_info(args.name)
    variant = _variant(args.variant) if args.variant is not None else info.default_variant
    model = info.builder(variant=variant, recovery=not args.bare and info.name not in zoo.IRNET_MODELS)
    lq.models.summary(model)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m zoo", description="The IR²Net model catalog.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("list", help="one row per model and variant")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=cmd_list)
    p = commands.add_parser("summary", help="the per-layer Larq summary of a model")
    p.add_argument("name", help=f"one of {', '.join(zoo.MODELS)}")
    p.add_argument("--variant", help="A-D (ImageNet models), or 'paper' for a CIFAR model's own head")
    p.add_argument("--bare", action="store_true", help="the backbone without the recovery head")
    p.set_defaults(run=cmd_summary)
    p = commands.add_parser("benchmark", help="measure latency, size and throughput against the anchors")
    benchmark.add_arguments(p)
    p.set_defaults(run=benchmark.run)
    p = commands.add_parser("show-restriction", help="PNGs of what information restriction erases from images")
    show_restriction.add_arguments(p)
    p.set_defaults(run=show_restriction.run)
    # Listed for --help; main() hands its arguments to the import command as they are.
    commands.add_parser("import-pytorch", help="import an authors' PyTorch checkpoint (see its --help)")
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["import-pytorch"]:
        from ir2net_tf.catalog import import_pytorch

        return import_pytorch.main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, DeployError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def run():
    """Console script ``ir2net-zoo`` and ``python -m zoo``."""
    sys.exit(main())


if __name__ == "__main__":
    run()
