"""The larq-zoo sweep (docs/architectures.md, "larq-zoo backbones"): for every
larq-zoo network, its bare backbone and heads A–D at 224×224 with random
weights: one IR² training step, then the LCE export's census (every binary
convolution an LceBconv2d) and verification (Keras vs LCE on random inputs).

Slow (70 conversions at 224): run it by hand, in the background::

    PYTHONPATH=. nice python docs/benchmark/larq_zoo_sweep.py --log sweep.jsonl [NAME ...]

One JSON line per (network, head) goes to ``--log`` as it finishes;
``--table`` turns a log into the Markdown table of docs/architectures.md.
"""

import argparse
import json
import sys
import time
import traceback

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import numpy as np
import tensorflow as tf

from ir2net_tf import deploy, zoo
from ir2net_tf.training.trainer import IR2Trainer

HEADS = (None, "A", "B", "C", "D")  # None: the larq-zoo network, no recovery head


def one(name: str, head, size: int) -> dict:
    row = {"model": name, "head": head or "bare", "size": size}
    start = time.perf_counter()
    try:
        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(1)
        model = zoo.build(name, input_shape=(size, size, 3), variant=head or "A", recovery=head is not None,
                          num_classes=10, classifier_activation=None)
        trainer = IR2Trainer(model, restriction_lambda=0.15)
        trainer.compile(optimizer=tf.keras.optimizers.SGD(0.01))
        x = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype(np.float32)
        logs = trainer.train_on_batch(x, np.array([0, 1]), return_dict=True)
        row["step_loss"] = float(logs["loss"])
        row["step_ok"] = bool(np.isfinite(row["step_loss"]))
        deploy.randomize_batch_norm(model, seed=1)
        flatbuffer = deploy.convert(model)
        counts = deploy.keras_conv_counts(model)
        census = deploy.check_census(deploy.op_census(flatbuffer), counts)
        row.update(binary_convs=counts["binary_convs"], lce_bconv2d=census["lce_bconv2d"],
                   census_ok=census["ok"], problems=census["problems"])
        figures = deploy.parity(model, flatbuffer, deploy.random_inputs((size, size, 3), 8))
        row.update(agreement=figures["top1_agreement"], close=figures["close_fraction"],
                   verify_ok=figures["top1_agreement"] >= deploy.RANDOM_WEIGHTS_MIN_AGREEMENT)
    except Exception as error:  # a failure is a result: named with its cause
        row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        row["trace"] = traceback.format_exc()[-800:]
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def table(log: str) -> str:
    rows = [json.loads(line) for line in open(log)]
    lines = ["| network | head | IR² step | binary convs | LceBconv2d | census | verification (top-1 agreement) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['head']} | {'ok' if r.get('step_ok') else '–'} | – | – | "
                         f"**failed**: {r['error']} | – |")
            continue
        census = "ok" if r["census_ok"] else "; ".join(r["problems"])
        lines.append(f"| {r['model']} | {r['head']} | {'ok' if r['step_ok'] else 'not finite'} | "
                     f"{r['binary_convs']} | {r['lce_bconv2d']} | {census} | "
                     f"{'ok' if r['verify_ok'] else 'low'} ({r['agreement']:.2f}) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="zoo names (default: every larq-zoo model)")
    parser.add_argument("--log", default="larq_zoo_sweep.jsonl")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--table", action="store_true", help="print the table of --log and stop")
    args = parser.parse_args(argv)
    if args.table:
        print(table(args.log))
        return 0
    for name in args.names or zoo.LARQ_ZOO_MODELS:
        for head in HEADS:
            row = one(name, head, args.size)
            with open(args.log, "a") as log:
                log.write(json.dumps(row) + "\n")
            print(name, row["head"], row.get("error") or f"census {row['census_ok']} verify {row['verify_ok']}",
                  f"{row['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
