"""TensorFlow imported before the Keras 2 switch (ir2net_tf._keras2) is named."""


import pytest
import tensorflow as tf




def test_tensorflow_imported_before_the_legacy_keras_switch_is_named(monkeypatch):
    from ir2net_tf import _keras2

    assert tf._tf_uses_legacy_keras is True  # what TensorFlow recorded at its import
    monkeypatch.setattr(tf, "_tf_uses_legacy_keras", False)
    with pytest.raises(ImportError, match="TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set"):
        _keras2.ensure_legacy_keras()
