"""IR² recovery added to larq-zoo's own binary networks."""

import numpy as np
import pytest
import tensorflow as tf
from larq_zoo.literature import BiRealNet
from larq_zoo.sota import QuickNet

from ir2net_tf import zoo
from ir2net_tf.models.any_backbone import auto_tap_layers, last_feature_map_layer


def count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.slow
def test_bireal_net_gets_ir2resnet18s_taps_and_head():
    tf.keras.backend.clear_session()  # larq-zoo's layer names depend on it
    bireal = BiRealNet(weights=None, input_shape=(64, 64, 3))
    final = last_feature_map_layer(bireal)
    assert final == "add_15"
    assert auto_tap_layers(bireal, final) == ["batch_normalization", "add_3", "add_7", "add_11"]
    ir2 = zoo.add_recovery_head(bireal, head="B", num_classes=10)
    assert ir2.output_shape == (None, 10)
    assert ir2.get_layer("final_features").output.shape[1:] == (2, 2, 512)
    # The head added is exactly IR2ResNet18-B's (fusion + BatchNorm); the
    # classifier is rebuilt with the same shape as the one dropped.
    head = count(zoo.IR2ResNet18(variant="B")) - count(zoo.IR2ResNet18(recovery=False))
    assert count(ir2) == count(BiRealNet(weights=None, num_classes=10, input_shape=(64, 64, 3))) + head
    # The backbone's layers (and weights) are shared, not copied.
    assert ir2.get_layer("add_15") is bireal.get_layer("add_15")
    x = tf.random.normal((2, 64, 64, 3))
    np.testing.assert_allclose(ir2(x).numpy().sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_quicknet_with_explicit_taps_backpropagates():
    quicknet = QuickNet(weights=None, input_shape=(64, 64, 3))
    taps = auto_tap_layers(quicknet, last_feature_map_layer(quicknet))
    assert len(taps) == 4
    ir2 = zoo.add_recovery_head(quicknet, taps[1:], head="D", num_classes=5, classifier_activation=None)
    assert [l.name for l in ir2.layers if l.name.startswith("recovery_pool")] == [
        "recovery_pool_f0",
        "recovery_pool_f1",
        "recovery_pool_f2",
    ]
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(np.arange(4), ir2(tf.random.normal((4, 64, 64, 3)), training=True))
    grads = dict(zip([w.name for w in ir2.trainable_weights], tape.gradient(loss, ir2.trainable_weights)))
    # Gradients reach the new head and, through the taps, the backbone.
    assert np.abs(grads["recovery_fusion_primary_conv/kernel:0"].numpy()).sum() > 0
    stem_kernel = quicknet.layers[1].trainable_weights[0].name
    assert np.abs(grads[stem_kernel].numpy()).sum() > 0


def test_bad_tap_names_list_candidates():
    bireal = BiRealNet(weights=None, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="has no layer named 'stage9'.*could tap"):
        zoo.add_recovery_head(bireal, ["stage9"])
    with pytest.raises(ValueError, match="must be 4-D"):
        zoo.add_recovery_head(bireal, [bireal.layers[-2].name])
