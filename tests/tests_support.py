"""Shared test helpers."""

import os
import subprocess
import sys

import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The reference's trainable parameter counts (docs/architectures.md).
REFERENCE_PARAMS = {
    ("IR2ResNet18", "A"): 12_220_264,
    ("IR2ResNet18", "B"): 11_960_424,
    ("IR2ResNet18", "C"): 11_882_344,
    ("IR2ResNet18", "D"): 11_727_070,
    ("IR2ResNet34", "A"): 22_332_136,
    ("IR2ResNet34", "B"): 22_072_296,
    ("IR2ResNet34", "C"): 21_994_216,
    ("IR2ResNet34", "D"): 21_838_942,
    ("IR2ResNet20", None): 272_458,
    ("IR2ResNet18CIFAR", None): 11_207_096,
    ("IR2VGGSmall", None): 4_675_834,
}

# python -m train runs in tests.
ENV = dict(os.environ)
# Digits at 8×8 (IR2ResNet20's smallest input), batch 32: 44 steps an epoch.
SMALL = ["--image_size=8", "--batch_size=32", "--epochs=2", "--verbose=0"]
STEPS = 1437 // 32


def cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "train", *args], cwd=REPO, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def checkpoint_state(directory):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(directory))
    iterations = "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
    return int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")), int(
        reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")), int(reader.get_tensor(iterations))
