"""Settings at resume, by rule (runs/at_resume.py): generated from the flags
``python -m train`` defines, so a flag added later is covered unedited.

For every flag: a run directory whose config.json holds a digits run, and
the same run with that one setting changed, judged by the real
``model_dir.check_run``: refused in one line naming the setting (old → new)
with flags that resume it, when the rule fixes it; accepted when it is free.
For every fixed setting also: a config.json written before the setting
existed (the key missing) resumes when the new value is the setting's
default, and is refused otherwise. Then two real resumes (subprocesses) of
the shared killed-and-resumed run, its config.json stripped of the newer
keys: one flag added that the run did not have (--mixed_precision, which
used to end in TensorFlow's AssertionError about unmatched checkpoint
objects) is refused, free flags changed are accepted."""

import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest
from absl import flags

from ir2net_tf import flag_domains
from ir2net_tf.runs import artifacts, at_resume, model_dir, recipes, run
from ir2net_tf.runs import cli as train_cli
from tests_support import ENV, REPO, SMALL

FLAGS = train_cli.FLAGS
TRAIN_FLAGS = sorted(f.name for f in FLAGS.get_flags_for_module(train_cli.__name__))


def stored_settings() -> dict:
    """What a digits run's config.json holds under "training" (as run.Run stores it)."""
    settings = recipes.resolve("digits", {"image_size": 8, "batch_size": 32, "epochs": 2})
    return dict(settings, data_dir=None, manual_dir=None, **at_resume.RUN_OPTIONS)


def other_value(name: str, value):
    """A value of flag ``name`` other than ``value`` that the flag accepts."""
    flag = FLAGS[name]
    if isinstance(flag.parser, flags.BooleanParser):
        return not (value if value is not None else flag.default)
    if isinstance(flag.parser, flags.EnumParser):
        return next(v for v in flag.parser.enum_values if v != value)
    domain = flag_domains.absl_domain(flag)
    if domain is not None:
        candidates = list(domain.values or ()) + [1, 2, 3, 0.5, 0.25]
        return next(v for v in candidates if domain.contains(v) and v != value)
    return "other" if value != "other" else "another"


def a_run_dir(tmp_path, training: dict) -> str:
    """A model directory holding a started run with these stored settings."""
    folder = tmp_path / "run"
    folder.mkdir()
    config = model_dir.model_config(stored_settings(), 10, True, [])
    config["training"] = training
    (folder / artifacts.CONFIG).write_text(json.dumps(config))
    (folder / artifacts.METRICS).write_text("stage,epoch\n2,0\n")  # it has started: has_started
    return str(folder)


def parsed(flag_text: str, name: str):
    """The value ``python -m train``'s own parser gives ``name`` from ``flag_text``."""
    try:
        FLAGS(["train", *shlex.split(flag_text)])  # as the shell passes it
        return FLAGS[name].value
    finally:
        FLAGS.unparse_flags()


def test_every_flag_has_a_rule_and_every_rule_a_flag():
    assert TRAIN_FLAGS and set(TRAIN_FLAGS) == set(at_resume.RULES)
    for name, rule in at_resume.RULES.items():
        assert rule.reason.strip(), name
        assert ("fixed for a run" if not rule.may_change else "may change when resuming") in FLAGS[name].help


@pytest.mark.parametrize("name", TRAIN_FLAGS)
def test_changing_a_setting_at_resume(name, tmp_path):
    old = stored_settings()
    rule = at_resume.RULES[name]
    current = old.get(name, FLAGS[name].default if rule.may_change else rule.default)
    new = dict(old, **{name: other_value(name, current)})
    folder = a_run_dir(tmp_path, old)
    if rule.may_change:
        saved, reset = model_dir.check_run(folder, new, overwrite=False)
        assert saved["training"] == old and not reset
        return
    with pytest.raises(ValueError) as refused:
        model_dir.check_run(folder, new, overwrite=False)
    message = str(refused.value)
    assert "\n" not in message
    assert f"({name}: {current!r} → {new[name]!r})" in message
    assert "--overwrite" in message and "--model_dir" in message
    # The fix it names resumes the run: the flag, parsed by the command's own
    # parser, gives back the stored value (or, unset, leaving it out does).
    fix = at_resume.as_flag(name, current)
    if fix is None:
        assert f"without --{name}" in message and FLAGS[name].default is None
    else:
        assert f"Resume it with {fix} " in message
        assert parsed(fix, name) == current
    # With --overwrite the run is another one, to be replaced.
    assert model_dir.check_run(folder, new, overwrite=True) == ({}, True)


@pytest.mark.parametrize("name", at_resume.FIXED)
def test_a_setting_older_runs_lack_counts_as_its_default(name, tmp_path):
    old = stored_settings()
    default = at_resume.RULES[name].default
    old.pop(name, None)  # config.json written before the setting existed
    folder = a_run_dir(tmp_path, old)
    assert model_dir.check_run(folder, dict(old, **{name: default}), overwrite=False)[1] is False
    with pytest.raises(ValueError, match=f"\\({name}: {default!r} → "):
        model_dir.check_run(folder, dict(old, **{name: other_value(name, default)}), overwrite=False)


def test_the_declared_defaults_are_the_flags_and_runs():
    signature = inspect.signature(run.Run.__init__).parameters
    for name, default in at_resume.RUN_OPTIONS.items():
        assert FLAGS[name].default == default == signature[name].default == at_resume.RULES[name].default, name


# ---------------------------------------------------------------- end to end


def train(*args):
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=REPO, env=ENV, text=True,
                          capture_output=True, timeout=600)


@pytest.mark.slow
def test_resume_with_an_added_fixed_flag_is_refused_and_free_flags_change(killed_and_resumed, tmp_path):
    folder = str(tmp_path / "run")
    shutil.copytree(killed_and_resumed[0], folder)
    config_path = os.path.join(folder, artifacts.CONFIG)
    config = json.loads(open(config_path).read())
    for name in at_resume.RUN_OPTIONS:  # as a run written before these were stored
        config["training"].pop(name, None)
    open(config_path, "w").write(json.dumps(config))
    before = {name: open(os.path.join(folder, name), "rb").read() for name in (artifacts.CONFIG, artifacts.METRICS)}
    command = [*SMALL, f"--model_dir={folder}", "--checkpoint_every=4"]

    refused = train(*command, "--mixed_precision")
    assert refused.returncode == 1, refused.stderr[-3000:]
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "(mixed_precision: False → True)" in errors[0], refused.stderr[-3000:]
    assert "Resume it with --nomixed_precision" in errors[0]
    assert "Traceback" not in refused.stderr and "AssertionError" not in refused.stderr
    assert before == {name: open(os.path.join(folder, name), "rb").read() for name in before}

    accepted = train(*command[:-1], "--checkpoint_every=7", "--verbose=1", "--cluster_timeout=30")
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    assert "Held-out accuracy" in accepted.stdout
    stored = json.loads(open(config_path).read())["training"]
    assert {n: stored[n] for n in at_resume.RUN_OPTIONS} == at_resume.RUN_OPTIONS
