"""Every numeric flag of the three commands refuses what is outside its
domain: generated from the flag definitions themselves (absl's registry for
``python -m train``, the argparse parsers of ``python -m export`` and
``python -m zoo``), so a flag added later is covered without editing this
file, and a numeric flag defined without a domain fails here.

For each flag and each out-of-domain value (below or above its bounds, NaN,
±inf, text, a fraction for an integer): exit status 2, the flag named, no
traceback, nothing created. In-process (the commands' own parse step, what a
subprocess runs first); three subprocesses show the same end to end."""

import argparse
import os
import subprocess
import sys

import pytest
from absl import flags

from ir2net_tf import flag_domains
from ir2net_tf.catalog import cli as zoo_cli
from ir2net_tf.catalog import import_pytorch
from ir2net_tf.export import cli as export_cli
from ir2net_tf.runs import cli as train_cli

NUMERIC_ABSL = (flags.IntegerParser, flags.FloatParser)


def outside(domain: flag_domains.Domain) -> list:
    """Texts of values the domain must refuse."""
    values = ["nan", "inf", "-inf", "abc", ""]
    if domain.integer:
        values.append("1.5")
    if domain.values is not None:
        values += [str(min(domain.values) - 1), str(max(domain.values) + 0.5)]
    for bound, step in ((domain.low, -1), (domain.high, +1)):
        if bound is not None:
            values.append(str(bound + step))
    for bound in (domain.above, domain.below):
        if bound is not None:
            values.append(str(bound))
    return values


def inside(domain: flag_domains.Domain) -> str:
    """A text of a value the domain accepts."""
    for value in (domain.values or ()) + (domain.low, domain.high):
        if value is not None:
            return str(value)
    return "0.5" if domain.above is not None or domain.below is not None else "3"


# ---------------------------------------------------------------- the flags, from their definitions


def train_flags():
    """(name, domain) of every numeric flag ``python -m train`` defines."""
    found = []
    for flag in flags.FLAGS.flags_by_module_dict()[train_cli.__name__]:
        domain = flag_domains.absl_domain(flag)
        assert domain is not None or not isinstance(flag.parser, NUMERIC_ABSL), (
            f"--{flag.name} is numeric without a domain: define it with flag_domains.DEFINE_integer/DEFINE_float")
        if domain is not None:
            found.append((flag.name, domain))
    return found


def argparse_flags(parser, prefix=()):
    """(argv prefix, action, domain) of every numeric argument of ``parser``
    and its sub-commands."""
    found = []
    for action in parser._actions:  # noqa: SLF001 — argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                if name == "import-pytorch":  # listed for --help; its own parser parses
                    sub = import_pytorch.build_parser()
                found += argparse_flags(sub, (*prefix, name))
            continue
        domain = getattr(action.type, "domain", None)
        assert domain is not None or action.type not in (int, float), (
            f"{' '.join(prefix)} {action.option_strings[0]} is numeric without a domain: give it "
            "type=flag_domains.argparse_type(DOMAIN)")
        if domain is not None:
            found.append((prefix, action, domain))
    return found


TRAIN = train_flags()
ARGPARSE = [("export", *f) for f in argparse_flags(export_cli.build_parser())]
ARGPARSE += [("zoo", *f) for f in argparse_flags(zoo_cli.build_parser())]


def test_every_command_has_numeric_flags_with_domains():
    values = sum(len(outside(d)) for _, d in TRAIN) + sum(len(outside(d)) for *_, d in ARGPARSE)
    print(f"\n{len(TRAIN)} train flags, {len(ARGPARSE)} export/zoo arguments, {values} out-of-domain values")
    assert len(TRAIN) >= 15 and {c for c, *_ in ARGPARSE} == {"export", "zoo"}
    assert len([1 for c, *_ in ARGPARSE if c == "export"]) >= 9


# ---------------------------------------------------------------- running them


def _call(function, argv, capsys):
    """(exit status, stderr) of ``function(argv)``, which must exit."""
    with pytest.raises(SystemExit) as exit_:
        function(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return exit_.value.code, err


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert os.listdir(tmp_path) == [], "a refused flag created files"


@pytest.mark.parametrize("name, domain", TRAIN, ids=[n for n, _ in TRAIN])
def test_train_flag_refuses_values_outside_its_domain(name, domain, empty_cwd, capsys):
    try:
        for value in outside(domain):
            code, err = _call(train_cli.parse_flags, ["train", f"--{name}={value}", "--model_dir=run"], capsys)
            assert code == 2 and f"--{name}" in err and len(err.strip().splitlines()) == 1, (value, err)
            flags.FLAGS.unparse_flags()
        flags.FLAGS(["train", f"--{name}={inside(domain)}"])  # and accepts one that is inside
    finally:
        flags.FLAGS.unparse_flags()


def _argv(prefix, action, value):
    count = action.nargs if isinstance(action.nargs, int) else 1
    return [*prefix, action.option_strings[0], *[value] * count]


def _main(command):
    def main(argv):
        sys.exit((export_cli.main if command == "export" else zoo_cli.main)(argv))

    return main


@pytest.mark.parametrize("command, prefix, action, domain", ARGPARSE,
                         ids=[f"{c}{'-' + '-'.join(p) if p else ''}{a.option_strings[0]}" for c, p, a, _ in ARGPARSE])
def test_argparse_flag_refuses_values_outside_its_domain(command, prefix, action, domain, empty_cwd, capsys):
    for value in outside(domain):
        code, err = _call(_main(command), _argv(prefix, action, value), capsys)
        named = any(option in err for option in action.option_strings)
        assert code == 2 and named and "error:" in err, (value, err)


# ---------------------------------------------------------------- --help and usage lines


def test_usage_lines_name_the_command_typed(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/ir2net-zoo"])
    assert _call(zoo_cli.main, ["benchmark", "--rounds", "0"], capsys)[1].startswith("usage: ir2net-zoo benchmark")
    monkeypatch.setattr(sys, "argv", ["/venv/bin/ir2net-export"])
    assert _call(export_cli.main, ["--threads", "0"], capsys)[1].startswith("usage: ir2net-export")
    monkeypatch.setattr(sys, "argv", ["/checkout/export/__main__.py"])
    assert _call(export_cli.main, ["--threads", "0"], capsys)[1].startswith("usage: python -m export")


def _script(name):
    return os.path.join(os.path.dirname(sys.executable), name)


@pytest.mark.slow
def test_help_and_a_bad_flag_end_to_end(tmp_path):
    """Real processes: the console script and ``python -m train`` list the
    command's own flags and exit 0; an out-of-domain flag exits 2 with one line."""
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(train_cli.__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([checkout, os.environ.get("PYTHONPATH", "")]))
    runs = {
        "script help": [_script("ir2net-train"), "--help"],
        "module help": [sys.executable, "-m", "train", "--help"],
        "bad flag": [sys.executable, "-m", "train", "--cluster_timeout=-5", "--model_dir=run"],
    }
    processes = {k: subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True) for k, argv in runs.items()}
    results = {k: (p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for k, p in processes.items()}
    for key, usage in (("script help", "usage: ir2net-train"), ("module help", "usage: python -m train")):
        code, out, err = results[key]
        assert code == 0 and out.startswith(usage), (key, out[:300], err[-2000:])
        assert all(f"--{n}:" in out for n in ("model", "dataset", "model_dir"))
        assert "--tpu:" in out and "--alsologtostderr" not in out  # its own flags, not absl's
    code, out, err = results["bad flag"]
    assert code == 2 and "Traceback" not in err and "--cluster_timeout" in err and "≥ 1" in err, err
    assert os.listdir(tmp_path) == []
