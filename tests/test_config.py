"""The typed training configuration (ir2net_tf/config.py) is the one list of
settings: the flags, the recipes, the resume rules and the documented table
are checked against its fields; a TrainConfig refuses a bad value when it is
made; training runs from Python in a folder outside the checkout."""

import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest

from tests_support import ENV, REPO
from ir2net_tf import config
from ir2net_tf.runs import at_resume, recipes

FIELDS = [f.name for f in dataclasses.fields(config.TrainConfig)]


def test_every_field_is_a_flag_with_its_domain_and_default():
    from absl import flags

    from ir2net_tf.runs import cli

    defined = {f.name: f for f in flags.FLAGS.get_flags_for_module(cli.__name__)}
    assert set(defined) == set(FIELDS) | {"mode", "weights", "padding"}
    for name in FIELDS:
        setting, flag = config.SETTINGS[name], defined[name]
        assert flag.default == (None if setting.from_recipe else setting.fallback), name
        assert getattr(flag.parser, "domain", None) == setting.domain, name
        if setting.choices:
            assert tuple(flag.parser.enum_values) == tuple(setting.choices), name
        assert setting.help in flag.help and setting.reason in flag.help, name
        assert at_resume.RULES[name].may_change == setting.may_change, name


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_every_recipe_is_a_partial_configuration(name):
    values = recipes.RECIPES[name]
    assert set(values) <= set(config.RECIPE_SETTINGS)
    config.TrainConfig(**values)  # types and domains
    resolved = recipes.resolve(name, {})
    assert set(resolved) == set(config.RECIPE_SETTINGS), "every recipe setting filled in"
    config.check(resolved)


def test_model_training_defaults_are_settings():
    from ir2net_tf.zoo import MODELS

    for spec in MODELS.values():
        assert set(spec.training_defaults) <= set(config.RECIPE_SETTINGS), spec.name


def test_the_documented_table_is_the_fields():
    documented = open(os.path.join(REPO, "docs", "training-settings.md"), encoding="utf-8").read()
    table = config.markdown_table()
    assert table in documented, "regenerate: python -m ir2net_tf.config (docs/training-settings.md's table)"
    assert re.findall(r"^\| `--(\w+)`", documented, flags=re.M) == FIELDS
    printed = subprocess.run([sys.executable, "-m", "ir2net_tf.config"], cwd=REPO, env=ENV, capture_output=True,
                             text=True, timeout=120)
    assert printed.returncode == 0 and printed.stdout == table


@pytest.mark.parametrize("kwargs, fault", [
    (dict(epochs=0), "--epochs must be an integer ≥ 1; got 0"),
    (dict(epochs=1.5), "--epochs must be an integer"),
    (dict(learning_rate=float("nan")), "--learning_rate must be a finite number > 0"),
    (dict(optimizer="rmsprop"), "--optimizer must be one of sgd, sgd_nesterov, adam; got 'rmsprop'"),
    (dict(recovery="yes"), "--recovery must be True or False"),
    (dict(model=3), "--model must be a string"),
    (dict(pad_values=0.5), "--pad_values must be one of 0, 1"),
    (dict(verbose=2), "--verbose must be one of 0, 1"),
])
def test_a_bad_value_is_refused_when_the_config_is_made(kwargs, fault):
    with pytest.raises(ValueError) as refused:
        config.TrainConfig(**kwargs)
    assert fault in str(refused.value)


def test_unset_fields_come_from_the_recipe():
    demo = config.TrainConfig().resolved()
    assert (demo.recipe, demo.model, demo.image_size, demo.learning_rate) == ("digits", "IR2ResNet20", 16, 0.1)
    imagenet = config.TrainConfig(dataset="imagenet2012", epochs=3).resolved()
    assert (imagenet.recipe, imagenet.optimizer, imagenet.epochs, imagenet.teacher) == ("imagenet", "adam", 3,
                                                                                       "ResNet50")
    assert config.TrainConfig(learning_rate=1).learning_rate == 1.0  # a float setting holds a float
    assert config.TrainConfig(steps_per_epoch=0).settings()["steps_per_epoch"] is None  # 0: the whole epoch


def test_a_setting_added_later_resumes_older_runs():
    """What 'adding a setting is one field' promises for stored runs: a
    config.json without a field's key counts as the field's ``missing``
    value (tests/test_resume_settings.py tries every fixed setting)."""
    for name, setting in config.SETTINGS.items():
        assert at_resume.RULES[name].default == setting.missing, name
    settings = config.TrainConfig(image_size=8).settings()
    old = {k: v for k, v in settings.items() if k not in ("lr_schedule", "warmup_epochs", "teacher")}
    assert at_resume.changed_fixed(old, settings) == []


@pytest.mark.slow
def test_training_from_python_outside_the_checkout(tmp_path):
    """The README's "From Python" block, run as it is shown from a folder
    outside the checkout, then again (it resumes: nothing left to train)."""
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "TrainConfig(" in b)
    env = {k: v for k, v in ENV.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = REPO  # the package as installed (editable), not the checkout's entry points

    def run():
        done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    first = run()
    accuracy, weights = first.stdout.split()[-2:]
    assert 0.0 <= float(accuracy) <= 1.0
    assert weights == str(tmp_path / "runs" / "python" / "best.weights.h5") and os.path.isfile(weights)
    stored = json.load(open(tmp_path / "runs" / "python" / "config.json"))["training"]
    assert stored["steps_per_epoch"] == 4 and stored["image_size"] == 16
    again = run()
    assert again.stdout.split()[-2:] == [accuracy, weights]
