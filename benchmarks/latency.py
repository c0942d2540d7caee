"""Host latency of IR2ResNet18 on LCE's Python interpreter, in one run:
variants A–D against the bare backbone (no recovery head), larq-zoo's
BiRealNet, a float32 ResNet-18 of the same topology converted with the
standard TFLite converter, and pad_values 0 vs 1.

    python -m benchmarks.latency [--size 224] [--runs 20] [--rounds 3] [--json out.json]

Numbers, not a test: x86 hosts run LCE's portable kernels, so the ratios
(not the milliseconds) are what carries over to ARM; confirm on the device
with lce_benchmark_model (docs/deployment.md).
"""

import ir2net_tf  # noqa: F401  (must precede TensorFlow: selects Keras 2)

import argparse
import json
import os
import time

import tensorflow as tf

from ir2net_tf import deploy, zoo


def candidates(size: int):
    shape = (size, size, 3)
    for variant in "ABCD":
        yield f"IR2ResNet18-{variant}", lambda v=variant: zoo.build("IR2ResNet18", input_shape=shape, variant=v), None
    yield "IR2ResNet18-A pad 1", lambda: zoo.build("IR2ResNet18", input_shape=shape, variant="A", pad_values=1.0), None
    bare = lambda: zoo.build("IR2ResNet18", input_shape=shape, recovery=False)  # noqa: E731
    yield "bare backbone", bare, None
    import larq_zoo

    yield "larq-zoo BiRealNet", lambda: larq_zoo.literature.BiRealNet(input_shape=shape, weights=None), None
    yield "float ResNet-18 (TFLite)", lambda: deploy.float_twin(bare()), deploy.convert_float


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=3, help="Timing rounds over all models.")
    p.add_argument("--json", help="Also write the table here.")
    p.add_argument("--save-dir", help="Keep the flatbuffers here and reuse them on the next run.")
    args = p.parse_args(argv)

    rows, flatbuffers = [], []
    for name, build, converter in candidates(args.size):
        cached = os.path.join(args.save_dir, f"{name.replace(' ', '_')}_{args.size}.tflite") if args.save_dir else None
        start, reused = time.perf_counter(), bool(cached and os.path.exists(cached))
        if reused:  # time the latency again without converting again
            with open(cached, "rb") as f:
                flatbuffer = f.read()
        else:
            flatbuffer = (converter or deploy.convert)(build())
            if cached:
                deploy.atomic_write(cached, flatbuffer)
        seconds = time.perf_counter() - start
        census = deploy.op_census(flatbuffer)
        rows.append({"model": name, "convert_seconds": None if reused else seconds, "size_bytes": len(flatbuffer),
                     "lce_bconv2d": census.get(deploy.BCONV_OP, 0)})
        flatbuffers.append(flatbuffer)
        how = f"reused {cached}" if reused else f"converted in {seconds:5.1f} s"
        print(f"{name:26s} {how}, {len(flatbuffer):>10,} bytes, "
              f"{rows[-1]['lce_bconv2d']:2d} LceBconv2d", flush=True)
        tf.keras.backend.clear_session()

    # Timed in rounds over all models, keeping each setting's smallest median:
    # on a shared host, load that comes and goes then hits every model alike.
    for _ in range(args.rounds):
        for row, flatbuffer in zip(rows, flatbuffers):
            latency = deploy.measure_latency(flatbuffer, threads=args.threads, runs=args.runs)
            if "latency" in row:
                for kept, new in zip(row["latency"], latency):
                    kept["median_ms"] = min(kept["median_ms"], new["median_ms"])
                    kept["min_ms"] = min(kept["min_ms"], new["min_ms"])
            else:
                row["latency"] = latency
    for row in rows:
        print(f"{row['model']:26s} " + "  ".join(
            f"{r['kernel']}/{r['threads']}t {r['median_ms']:7.2f} ms" for r in row["latency"]))

    base = next(row for row in rows if row["model"] == "bare backbone")
    print("\nRatio to the bare backbone per kernel/threads setting, of medians (and of fastest runs):")
    for row in rows:
        per = [
            f"{r['kernel']}/{r['threads']}t {r['median_ms'] / b['median_ms']:.3f} ({r['min_ms'] / b['min_ms']:.3f})"
            for r, b in zip(row["latency"], base["latency"])
        ]
        print(f"  {row['model']:26s} " + "  ".join(per))
    if args.json:
        deploy.atomic_write(args.json, json.dumps(rows, indent=2).encode())


if __name__ == "__main__":
    main()
