"""Training throughput (images/s) of IR2ResNet18 at 224×224: the IR² step
(two forward and backward passes) vs the plain step of the same model vs
larq-zoo's BiRealNet (the bare backbone) under a standard Keras step.

    python benchmarks/train_throughput.py [--batch_size 16 --steps 5 --jit_compile]

Prints numbers; it asserts nothing. Synthetic data, so only the step is timed.
"""

import ir2net_tf  # noqa: F401  (must precede TensorFlow: selects Keras 2)

import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from ir2net_tf import zoo
from ir2net_tf.training import IR2Trainer

flags.DEFINE_integer("batch_size", 16, "Images per step.")
flags.DEFINE_integer("steps", 5, "Timed steps (after 2 warm-up steps, the first of which traces).")
flags.DEFINE_integer("image_size", 224, "Input height and width.")
flags.DEFINE_boolean("jit_compile", False, "XLA-compile the steps.")
FLAGS = flags.FLAGS


def ir2resnet18(restriction_lambda):
    model = zoo.build("IR2ResNet18", input_shape=(FLAGS.image_size, FLAGS.image_size, 3), classifier_activation=None)
    trainer = IR2Trainer(model, restriction_lambda=restriction_lambda)
    trainer.compile(optimizer=tf.keras.optimizers.Adam(1e-3), jit_compile=FLAGS.jit_compile)
    return trainer


def birealnet():
    import larq_zoo

    model = larq_zoo.literature.BiRealNet(weights=None, input_shape=(FLAGS.image_size, FLAGS.image_size, 3))
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=FLAGS.jit_compile)
    return model


def images_per_second(model, x, y):
    for _ in range(2):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        model.train_on_batch(x, y)
    return FLAGS.steps * len(x) / (time.perf_counter() - start)


def main(_):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(FLAGS.batch_size, FLAGS.image_size, FLAGS.image_size, 3)).astype(np.float32)
    y = rng.integers(0, 1000, FLAGS.batch_size).astype(np.int32)
    results = {}
    for name, make in (("IR2ResNet18, IR² step", lambda: ir2resnet18(0.15)),
                       ("IR2ResNet18, plain step", lambda: ir2resnet18(0.0)),
                       ("larq-zoo BiRealNet, Keras step", birealnet)):
        results[name] = images_per_second(make(), x, y)
        print(f"{name:34s} {results[name]:8.2f} images/s", flush=True)
    ratio = results["IR2ResNet18, plain step"] / results["IR2ResNet18, IR² step"]
    print(f"IR² step time / plain step time: {ratio:.2f}× (goal ≤ 2.1×); batch {FLAGS.batch_size}, "
          f"{FLAGS.image_size}×{FLAGS.image_size}, jit_compile={FLAGS.jit_compile}, "
          f"devices: {[d.device_type for d in tf.config.list_logical_devices()]}")


if __name__ == "__main__":
    app.run(main)
