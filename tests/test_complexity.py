"""Complexity accounting: hand-computed figures and agreement with Larq."""

import larq as lq
import pytest

from ir2net_tf.nn.complexity import complexity


def test_hand_computed_ir2resnet18_a(zoo_model):
    c = complexity(zoo_model("IR2ResNet18", variant="A"))
    # Binary 3×3 convs: stage s has 4 convs at width w on a (56/2^(s-1))² map;
    # the first of stages 2-4 reads w/2 channels.
    bops = 0
    for stage, width in enumerate((64, 128, 256, 512)):
        pixels = (56 // 2**stage) ** 2
        first_in = width if stage == 0 else width // 2
        bops += 9 * pixels * width * (first_in + 3 * width)
    assert c.bops == bops
    fp = (
        7 * 7 * 3 * 64 * 112 * 112  # stem
        + sum(cin * cout * p * p for cin, cout, p in ((64, 128, 28), (128, 256, 14), (256, 512, 7)))  # shortcuts
        + 1024 * 512 * 7 * 7  # full fusion
        + 512 * 1000  # classifier
    )
    assert c.fp_macs == fp
    assert c.flops == bops / 64 + fp
    assert c.binary_params == 10_985_472
    assert c.params == 12_220_264
    # Folded batch norm keeps two vectors per layer, as many as gamma and beta.
    assert c.deployed_bytes == 10_985_472 // 8 + 4 * (12_220_264 - 10_985_472)


@pytest.mark.slow
def test_cheap_grouped_and_depthwise_macs(zoo_model):
    def head_macs(variant):
        layers = {l.name: l.macs for l in complexity(zoo_model("IR2ResNet18", variant=variant)).layers}
        return layers["recovery_fusion_cheap_conv"]

    assert head_macs("B") == 9 * 256 * 49  # depthwise 256 → 256
    assert head_macs("C") == 9 * (128 // 8) * 384 * 49  # 8 groups, 128 → 384
    assert head_macs("D") == 9 * 26 * 19 * 49  # depthwise ×19


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("IR2ResNet18", {"variant": "C"}),
        ("IR2ResNet18", {"variant": "B", "binary_weights": False}),
        ("IR2ResNet20", {}),
        ("IR2VGGSmall", {}),
    ],
)
@pytest.mark.slow
def test_agrees_with_larq_summary(name, kwargs, zoo_model):
    model = zoo_model(name, **kwargs)
    ours = complexity(model)
    profile = lq.models.ModelProfile(model)
    assert ours.bops == profile.op_count("mac", 1)
    assert ours.fp_macs == profile.op_count("mac", 32)
    assert ours.binary_params == profile.weight_count(bitwidth=1)
    assert ours.deployed_bytes == profile.memory / 8
    if not kwargs.get("binary_weights", True):
        assert ours.bops == 0 and ours.binary_params == 0


@pytest.mark.slow
def test_recovery_costs_more_than_the_bare_backbone_and_compact_less_than_full(zoo_model):
    flops = {v: complexity(zoo_model("IR2ResNet18", variant=v)).flops for v in "ABCD"}
    bare = complexity(zoo_model("IR2ResNet18", recovery=False)).flops
    assert bare < flops["D"] < flops["C"] < flops["B"] < flops["A"]
