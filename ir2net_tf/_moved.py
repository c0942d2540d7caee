"""Import paths of modules that moved into the layer folders (issue 26),
kept working: ``import ir2net_tf.restriction`` gives the module
``ir2net_tf.nn.restriction`` itself (one module object under both names,
so a patch or an ``isinstance`` through either holds for both).

New code imports the new paths; docs/architecture.md lists the layers.
"""

import importlib
import importlib.abc
import importlib.util

from ir2net_tf._keras2 import _LoadedModule

MOVED = {
    "ir2net_tf.layers": "ir2net_tf.nn.layers",
    "ir2net_tf.binarization": "ir2net_tf.nn.binarization",
    "ir2net_tf.restriction": "ir2net_tf.nn.restriction",
    "ir2net_tf.recovery": "ir2net_tf.nn.recovery",
    "ir2net_tf.complexity": "ir2net_tf.nn.complexity",
    "ir2net_tf.weights": "ir2net_tf.models.weights",
    "ir2net_tf.schedules": "ir2net_tf.training.schedules",
    "ir2net_tf.visualize": "ir2net_tf.training.visualize",
    "ir2net_tf.throughput": "ir2net_tf.catalog.throughput",
    "ir2net_tf.instructions": "ir2net_tf.catalog.instructions",
    "ir2net_tf.evaluation": "ir2net_tf.export.evaluation",
    "ir2net_tf.pytorch_import": "ir2net_tf.interop.pytorch",
    "ir2net_tf.files": "ir2net_tf._util.files",
    "ir2net_tf.command_name": "ir2net_tf._util.command_name",
    "ir2net_tf.plotting": "ir2net_tf._util.plotting",
}


class MovedModules(importlib.abc.MetaPathFinder):
    """Finds a former path's module at its new path."""

    def find_spec(self, name, path=None, target=None):
        new = MOVED.get(name)
        if new is None:
            return None
        module = importlib.import_module(new)
        return importlib.util.spec_from_loader(name, _LoadedModule(module), origin=getattr(module, "__file__", None))
