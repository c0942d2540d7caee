"""The Keras 2 switch (ir2net_tf._keras2): TensorFlow imported before it is
named; after ``import ir2net_tf`` any first import (Larq, which imports
TensorFlow from inside its own import, larq-zoo, LCE, TensorFlow, one of our
modules) gives Keras 2 with our layers registered."""

import subprocess
import sys

import pytest
import tensorflow as tf

from tests_support import ENV, REPO

FIRST_IMPORTS = ("larq", "larq_zoo", "larq_compute_engine", "tensorflow", "ir2net_tf.nn.complexity", "ir2net_tf.zoo")
CHECK = """
import sys, ir2net_tf
import {first}
import larq, tensorflow as tf
assert "ir2net_tf.nn.layers" in sys.modules and "ir2net_tf.nn.restriction" in sys.modules, "layers not registered"
assert hasattr(larq, "quantizers") and tf.keras.layers.Layer.__module__.startswith("tf_keras")
assert tf.keras.utils.get_registered_object("ir2net_tf>PyTorchPadQuantConv2D") is not None
"""


@pytest.mark.slow
@pytest.mark.parametrize("first", FIRST_IMPORTS)
def test_any_first_import_after_ir2net_tf_gets_keras_2_and_our_layers(first):
    done = subprocess.run([sys.executable, "-c", CHECK.format(first=first)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_tensorflow_imported_before_the_legacy_keras_switch_is_named(monkeypatch):
    from ir2net_tf import _keras2

    assert tf._tf_uses_legacy_keras is True  # what TensorFlow recorded at its import
    monkeypatch.setattr(tf, "_tf_uses_legacy_keras", False)
    with pytest.raises(ImportError, match="TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set"):
        _keras2.ensure_legacy_keras()
