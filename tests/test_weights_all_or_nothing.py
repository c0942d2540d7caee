"""Weights load all or nothing (issue 15): another model's weights load
nothing and say which layers do not fit, matching ones load completely, a
damaged file is named."""


import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import zoo
from ir2net_tf.models import weights



@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".weights.h5", ".h5", ".keras"])
def test_weights_of_another_model_load_nothing(recovery_weights, suffix):
    """The silent partial load under the issue's shipped-wrong-model case:
    recovery-head weights into a model without the head."""
    bare = zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10, recovery=False)
    before = [w.copy() for w in bare.get_weights()]
    path = recovery_weights[suffix]
    with pytest.raises(ValueError, match="does not fit model") as error:
        weights.load_weights(bare, path)
    assert path in str(error.value) and "Nothing was loaded" in str(error.value)
    if suffix != ".h5":  # named by layer for the formats that name their layers
        assert "layers the model does not have" in str(error.value)
    assert all(np.array_equal(a, b) for a, b in zip(before, bare.get_weights()))
    if suffix == ".weights.h5":  # the zoo builders' weights= too
        with pytest.raises(ValueError, match="does not fit model"):
            zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10, recovery=False, weights=path)


@pytest.mark.slow
def test_matching_weights_load_completely(recovery_weights):
    source = zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10)
    source.load_weights(recovery_weights[".weights.h5"])
    twin = zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10,
                     weights=recovery_weights[".weights.h5"])
    assert all(np.array_equal(a, b) for a, b in zip(source.get_weights(), twin.get_weights()))


def test_a_compiled_models_training_state_is_not_a_mismatch(tmp_path):
    """Optimizer and metric variables in the file are not model weights."""
    def dense():
        inputs = tf.keras.Input((4,))
        return tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs))

    trained = dense()
    trained.compile("adam", "mse")
    trained.optimizer.build(trained.trainable_variables)  # its state, without a (slow) fit
    path = str(tmp_path / "compiled.weights.h5")
    trained.save_weights(path)
    import h5py

    with h5py.File(path, "r") as f:
        assert "optimizer" in f
    fresh = dense()
    weights.load_weights(fresh, path)
    assert all(np.array_equal(a, b) for a, b in zip(trained.get_weights(), fresh.get_weights()))


@pytest.mark.parametrize("content", [b"", b"not hdf5 at all"])
def test_damaged_weights_file_is_named(tmp_path, content):
    path = tmp_path / "broken.weights.h5"
    path.write_bytes(content)
    model = zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10)
    with pytest.raises(ValueError, match="cannot be read") as error:
        weights.load_weights(model, str(path))
    assert str(path) in str(error.value)
