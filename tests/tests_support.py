"""Shared test helpers."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# SPEC's "trainable parameter counts of the reference".
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
