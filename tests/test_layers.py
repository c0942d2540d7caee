"""The package's layers (docs/architecture.md): each folder imports only the
layers below it. Read from the source (every ``import`` and ``from … import``
of ``ir2net_tf``, lazy ones inside functions included), so a new upward
import fails here, naming the module and what it imports."""

import ast
import os

from tests_support import REPO

# What every layer may use: the settings' declarations and small helpers.
BASE = {"__init__", "_keras2", "_moved", "_util", "addresses", "config", "flag_domains", "path_args"}
BELOW = {
    "nn": set(),
    "data": set(),
    "models": {"nn"},
    "zoo": {"models", "nn"},
    "training": {"nn", "models", "zoo", "data"},
    "interop": {"nn", "models", "zoo"},
    # What a user runs: a run and its export read each other's files (export
    # reads a run directory through runs.loading; --mode evaluate uses
    # export.evaluation), the catalog sits on everything.
    "export": {"nn", "models", "zoo", "data", "training", "runs"},
    "deploy": {"nn", "export"},
    "runs": {"nn", "models", "zoo", "data", "training", "export"},
    "catalog": {"nn", "models", "zoo", "data", "training", "export", "runs", "interop", "deploy"},
    # TrainConfig.resolved() asks the recipes (runs/recipes.py) at call time:
    # unset settings come from a recipe, which depends on the model.
    "config": {"runs"},
}


def layer(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def imports(path: str, module: str):
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ir2net_tf"):
            if node.module == "ir2net_tf":
                yield from (f"ir2net_tf.{a.name}" for a in node.names)
            else:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("ir2net_tf"))


def test_every_module_imports_only_the_layers_below_it():
    package = os.path.join(REPO, "ir2net_tf")
    wrong, seen = [], set()
    for folder, _, names in os.walk(package):
        for name in (n for n in names if n.endswith(".py")):
            path = os.path.join(folder, name)
            module = os.path.relpath(path[:-3], REPO).replace(os.sep, ".").replace(".__init__", "")
            source = layer(module)
            seen.add(source)
            for target in imports(path, module):
                allowed = BASE | BELOW.get(source, set()) | {source}
                if layer(target) not in allowed:
                    wrong.append(f"{module} imports {target}")
    assert seen <= set(BELOW) | BASE, f"layers the map does not know: {sorted(seen - set(BELOW) - BASE)}"
    assert not wrong, "upward imports (docs/architecture.md):\n" + "\n".join(wrong)
