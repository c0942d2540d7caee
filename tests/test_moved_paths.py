"""Modules that moved into the layer folders keep their former import paths
(ir2net_tf/_moved.py): the same module object under both names."""

import importlib

import pytest

from ir2net_tf._moved import MOVED


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_a_former_path_is_the_moved_module(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_the_former_training_module_names_still_import():
    from ir2net_tf.training import IR2Trainer, make_optimizer
    from ir2net_tf.training.trainer import IR2Trainer as moved

    assert IR2Trainer is moved and callable(make_optimizer)
