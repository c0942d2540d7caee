"""python -m zoo: the IR²Net model catalog.

  python -m zoo list [--json]             every model and variant: parameters, BOPs,
                                          FLOPs, size, the paper's accuracy
      [--weights NAME[:V]=FILE --dataset D] and the measured .tflite accuracy
  python -m zoo summary NAME [--variant X] the per-layer Larq summary of one model
  python -m zoo benchmark [...]            conversion, host latency, size and training
                                          throughput of the IR² models and anchors
  python -m zoo benchmark-input [...]      the input pipelines in images/s per core,
                                          beside a Model-Garden-style reference
  python -m zoo step-benchmark [...]       IR² training step time over the plain step,
                                          with the mask keeping everything and erasing
  python -m zoo verify [--models P] [--image_size N]  every model and head: one IR² step, export,
                                          census, agreement, .keras reload (docs/verification.md)
  python -m zoo show-restriction ...      PNGs of the attention, mask and restricted
                                          input for real images
  python -m zoo import-pytorch CKPT ...   the authors' PyTorch checkpoint → Keras weights
  python -m zoo data-service [--port P]   a tf.data service dispatcher and its one worker,
                                          making the batches of `python -m train --data_service`
"""

import argparse
import json
import sys

# Nothing here imports TensorFlow: `list` reads its generated table and
# answers at once; the commands that build models import what they need.
import ir2net_tf  # noqa: F401  (Keras 2 before TensorFlow, when a command loads it)
from ir2net_tf.catalog import measured
from ir2net_tf._util.command_name import command_name
from ir2net_tf.export.errors import DeployError  # light: no TensorFlow
from ir2net_tf.flag_domains import Domain, argparse_type, at_least


def cmd_list(args) -> int:
    from ir2net_tf.catalog import table

    if args.regenerate:
        if args.models or args.weights:
            raise ValueError("--regenerate rewrites the whole table: give it no model names or --weights.")
        rows = table.regenerate(progress=True)
        print(f"wrote {len(rows)} rows to {table.TABLE_PATH}")
        return 0
    chosen = measured.parse_weights(args.weights, args.dataset)
    rows = table.catalog_rows(progress=not args.json, models=args.models)
    table.add_measured(rows, chosen, args, progress=not args.json)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        print(table.markdown_table(rows, table.COLUMNS + measured.COLUMNS if chosen else table.COLUMNS))
        print(
            "\nFLOPs = BOPs / 64 + full-precision MACs. Sizes count binary weights at 1 bit. "
            "Accuracies are reported figures, not ours: the IR²Net paper's and, for the IRNet* rows, those "
            "of IR-Net's own release." + measured.note(rows)
        )
        notes = table.deploy_notes(rows)
        if notes:
            print("\nNot fully binary when exported (docs/verification.md):\n" + "\n".join(f"- {n}" for n in notes))
    return 0


def cmd_summary(args) -> int:
    import larq as lq

    from ir2net_tf import zoo

    variant = zoo.get_spec(args.name).parse_variant(args.variant)
    model = zoo.build(args.name, variant=variant, recovery=not args.bare)
    lq.models.summary(model)
    return 0


def cmd_step_benchmark(args) -> int:
    from ir2net_tf import zoo
    from ir2net_tf.catalog.throughput import step_ratios

    size = args.image_size or zoo.get_spec(args.model).input_size
    model = zoo.build(args.model, input_shape=(size, size, 3), classifier_activation=None)
    result = step_ratios(model, batch_size=args.batch_size, erased=args.erased, rounds=args.rounds,
                         steps=args.steps, jit_compile=args.jit_compile)
    result.update(model=args.model, image_size=size, jit_compile=args.jit_compile)
    print(f"{args.model} {size}×{size}, batch {args.batch_size}: plain step {result['plain_seconds']:.3f} s "
          f"(median of {args.rounds} rounds × {args.steps} steps)")
    for regime in ("kept", "erasing"):
        r = result[regime]
        ratio = r["ratio"]
        print(f"  IR² step, λ={r['lambda']:.3g}, kept {r['kept']:.1%}: {r['seconds']:.3f} s, "
              f"ratio {ratio['median']:.2f} (IQR {ratio['q1']:.2f}–{ratio['q3']:.2f})")
    print(json.dumps(result))
    return 0


def cmd_data_service(args) -> int:
    from ir2net_tf.data import service

    try:
        service.serve(args.port, args.worker_port, args.host)
    except Exception as error:  # noqa: BLE001 — TensorFlow raises bare RuntimeErrors for a port in use
        raise ValueError(f"The tf.data service could not start on port {args.port} (worker port "
                         f"{args.worker_port or 'any'}): {str(error).splitlines()[0]}. Choose free ports "
                         "(--port, --worker_port).") from None
    return 0


def add_list_parser(commands) -> None:
    p = commands.add_parser("list", help="one row per model and variant")
    p.add_argument("models", nargs="*", help="only these models (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--regenerate", action="store_true",
                   help="build every model and rewrite the table the list reads (minutes; after a model changes)")
    measured.add_arguments(p)
    p.set_defaults(run=cmd_list)


def list_parser() -> argparse.ArgumentParser:
    """A parser of `list` alone: it needs none of the modules the other
    commands' options come from (they import TensorFlow)."""
    parser = argparse.ArgumentParser(prog=command_name("zoo"), description="The IR²Net model catalog.")
    add_list_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def build_parser() -> argparse.ArgumentParser:
    from ir2net_tf import zoo
    from ir2net_tf.catalog import benchmark, input_benchmark, show_restriction, verify
    from ir2net_tf.data import service

    parser = argparse.ArgumentParser(prog=command_name("zoo"), description="The IR²Net model catalog.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_list_parser(commands)
    p = commands.add_parser("summary", help="the per-layer Larq summary of a model")
    p.add_argument("name", help=f"one of {', '.join(zoo.MODELS)}")
    p.add_argument("--variant", help="the model's variant (see `list`; default: the paper's head)")
    p.add_argument("--bare", action="store_true", help="the backbone without the recovery head")
    p.set_defaults(run=cmd_summary)
    p = commands.add_parser("benchmark", help="measure latency, size and throughput against the anchors")
    benchmark.add_arguments(p)
    p.set_defaults(run=benchmark.run)
    p = commands.add_parser("benchmark-input", help="the input pipelines in images/s per core, beside a reference")
    input_benchmark.add_arguments(p)
    p.set_defaults(run=input_benchmark.run)
    p = commands.add_parser("step-benchmark", help="IR² step time over the plain step, in both regimes")
    p.add_argument("--model", default="IR2ResNet18", help=f"one of {', '.join(zoo.MODELS)}")
    p.add_argument("--image_size", type=argparse_type(at_least(1)),
                   help="input height and width (default: the model's)")
    p.add_argument("--batch_size", type=argparse_type(at_least(1)), default=8)
    p.add_argument("--erased", type=argparse_type(Domain(integer=False, above=0, below=1)), default=0.25,
                   help="fraction of pixels the erasing regime erases")
    p.add_argument("--rounds", type=argparse_type(at_least(1)), default=7,
                   help="timing rounds (the ratio's spread is over them)")
    p.add_argument("--steps", type=argparse_type(at_least(1)), default=3, help="timed steps per trainer and round")
    p.add_argument("--jit_compile", action="store_true", help="compile the steps with XLA")
    p.set_defaults(run=cmd_step_benchmark)
    p = commands.add_parser("verify", help="every model and head: step, export, census, agreement, .keras reload")
    verify.add_arguments(p)
    p.set_defaults(run=verify.run)
    p = commands.add_parser("show-restriction", help="PNGs of what information restriction erases from images")
    show_restriction.add_arguments(p)
    p.set_defaults(run=show_restriction.run)
    p = commands.add_parser("data-service", help="a tf.data service dispatcher and its worker (python -m train --data_service)")
    p.add_argument("--port", type=argparse_type(at_least(1, high=65535)), default=service.DEFAULT_PORT,
                   help=f"the dispatcher's port, which `python -m train --data_service` names (default "
                        f"{service.DEFAULT_PORT})")
    p.add_argument("--worker_port", type=argparse_type(at_least(0, high=65535)), default=0,
                   help="the worker's port; trainers connect to it too (default 0: any free one)")
    p.add_argument("--host", default="",
                   help="the name trainers reach this machine by (default: its host name)")
    p.set_defaults(run=cmd_data_service)
    # Listed for --help; main() hands its arguments to the import command as they are.
    commands.add_parser("import-pytorch", help="import an authors' PyTorch checkpoint (see its --help)")
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["import-pytorch"]:
        from ir2net_tf.catalog import import_pytorch

        return import_pytorch.main(argv[1:])
    args = (list_parser() if argv[:1] == ["list"] else build_parser()).parse_args(argv)
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
