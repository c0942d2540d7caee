"""Every suggestion the program can print names a flag the command accepts,
with a value it accepts: collected from the source, not listed by hand.

Every string in the package (messages, warnings, f-strings' literal parts)
is searched for flags (``--name``, ``--name=value``, ``--name value``). A
flag must exist in the command whose code prints it (runs/ → ``python -m
train``; export/ → ``python -m export``; catalog/ → ``python -m zoo`` and its
sub-commands; shared modules → any of the three); a literal value given
with it must be in that flag's domain or choices, parsed by the command's
own parser. Suggestions whose fitness depends on the model are then run in
their situation: the zero-padding warning of ``python -m train`` for every
zoo model suggests ``--pad_values 1`` only to a model whose builder accepts
it; a resume refused for a changed setting suggests flags that parse back to
the stored values (tests/test_resume_settings.py); a message that advises
changing a flag to resume names only flags a resume may change."""

import argparse
import ast
import os
import re

import pytest
from absl import flags

from ir2net_tf import flag_domains, zoo
from ir2net_tf.catalog import cli as zoo_cli
from ir2net_tf.catalog import import_pytorch
from ir2net_tf.export import cli as export_cli
from ir2net_tf.runs import cli as train_cli
from ir2net_tf.runs import at_resume, recipes, settings_check

PACKAGE = os.path.dirname(os.path.abspath(zoo.__file__))
# A flag, and the literal value after it when it has one: a number, or a
# lower-case word right after "=".
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9_-]*)(?:=([\w.+-]+)| (-?\d[\d.e+-]*)(?![\w.]))?")
# absl's own flags (python -m train --helpfull lists them) and argparse's.
BUILTIN = {"help", "helpfull", "helpshort", "helpxml", "flagfile", "undefok", "only_check_args", "pdb",
           "run_with_pdb", "verbosity", "logtostderr", "alsologtostderr", "log_dir"}


def _argparse_options(parser) -> dict:
    """option name (without --) → argparse action, over the parser and its sub-commands."""
    found = {}
    for action in parser._actions:  # noqa: SLF001 — argparse keeps its arguments here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for sub in action.choices.values():
                found.update(_argparse_options(sub))
        for option in action.option_strings:
            if option.startswith("--"):
                found[option[2:]] = action
    return found


def _train_options() -> dict:
    return {name: flag for name, flag in train_cli.FLAGS._flags().items()}  # noqa: SLF001 — absl's registry


COMMANDS = {
    "train": _train_options(),
    "export": _argparse_options(export_cli.build_parser()),
    "zoo": {**_argparse_options(zoo_cli.build_parser()), **_argparse_options(import_pytorch.build_parser())},
}


# Words that stand for any flag in usage lines ("[--flag=value ...]").
PLACEHOLDERS = {"flag", "flags", "name"}
# The commands' modules, whose docstrings are their --help text.
CLI_MODULES = {os.path.join("runs", "cli.py"), os.path.join("export", "cli.py"), os.path.join("catalog", "cli.py")}


def commands_of(path: str, text: str):
    """The commands whose parser must accept a flag that ``text`` in ``path`` names."""
    part = os.path.relpath(path, PACKAGE).split(os.sep)[0]
    commands = {"runs": ["train"], "export": ["export"], "catalog": ["zoo"]}.get(part, list(COMMANDS))
    if re.search(r"\btrain\b", text, re.I) and "train" not in commands:
        commands.append("train")  # advice to run `python -m train` again (e.g. "Train --stage 2")
    return commands


def _not_messages(tree, path: str) -> set:
    """ids of the string nodes that no user reads as advice: docstrings (but a
    command's module docstring, its --help), and argv lists of other programs
    (["valgrind", "--tool=cachegrind", ...])."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                    first.value.value, str) and not (isinstance(node, ast.Module) and path in CLI_MODULES):
                skip.add(id(first.value))
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts and isinstance(node.elts[0], ast.Constant) \
                and isinstance(node.elts[0].value, str) and node.elts[0].value.isidentifier():
            skip |= {id(n) for element in node.elts for n in ast.walk(element)}
    return skip


def _strings(tree, skip: set):
    """(line, text, whether a computed value follows it) of every string literal
    of a module, f-strings' literal parts included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and id(node) not in skip:
            for part, after in zip(node.values, node.values[1:] + [None]):
                if isinstance(part, ast.Constant):
                    skip.add(id(part))
                    yield part.lineno, part.value, isinstance(after, ast.FormattedValue)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value, False


def mentions():
    """(file:line, commands, flag, value or None) of every flag the package's strings name."""
    found = []
    for folder, _, names in os.walk(PACKAGE):
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            relative = os.path.relpath(path, PACKAGE)
            for line, text, computed_after in _strings(tree, _not_messages(tree, relative)):
                for match in FLAG.finditer(text):
                    flag, value = match.group(1), (match.group(2) or match.group(3) or "").rstrip(".") or None
                    if flag in PLACEHOLDERS or (computed_after and match.end() == len(text)):
                        continue  # a stand-in, or a name completed at run time ("--no{name}")
                    found.append((f"{relative}:{line}", commands_of(path, text), flag, value, text))
    return found


_FOUND = mentions()
MENTIONS = [m[:4] for m in _FOUND]
MENTION_TEXTS = [m[4] for m in _FOUND]


def accepts(command: str, flag: str, value) -> bool:
    """Whether ``command``'s own parser takes ``--flag`` (with ``value``)."""
    option = COMMANDS[command].get(flag)
    if option is None and command == "train" and flag.startswith("no"):
        boolean = COMMANDS[command].get(flag[2:])  # absl's --noNAME of a boolean
        return isinstance(getattr(boolean, "parser", None), flags.BooleanParser) and value is None
    if option is None:
        return flag in BUILTIN
    if value is None:
        return True
    if command == "train":
        try:
            option.parser.parse(value) if not isinstance(option.parser, flags.BooleanParser) else None
        except ValueError:
            return False
        return not isinstance(option.parser, flags.BooleanParser)  # --flag=value of a boolean: absl's true/false
    if option.choices is not None:
        return value in option.choices or (option.type is not None and _parses(option.type, value))
    return option.type is None or _parses(option.type, value)


def _parses(kind, value) -> bool:
    try:
        kind(value)
        return True
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        return False


def test_the_collection_finds_the_suggestions_it_must():
    flags_named = {(flag, value) for _, _, flag, value in MENTIONS}
    assert {("overwrite", None), ("pad_values", "1"), ("pad-values", "1"), ("min-agreement", None)} <= flags_named
    assert len(MENTIONS) > 100


@pytest.mark.parametrize("where,commands,flag,value", MENTIONS,
                         ids=[f"{w}--{f}{'=' + v if v else ''}" for w, _, f, v in MENTIONS])
def test_every_flag_a_message_names_is_accepted(where, commands, flag, value):
    assert any(accepts(c, flag, value) for c in commands), (
        f"{where} names --{flag}{' ' + value if value else ''}, which {' / '.join(commands)} does not accept")


@pytest.mark.parametrize("model", sorted(zoo.MODELS))
def test_the_zero_padding_warning_suggests_one_padding_only_where_the_model_takes_it(model, monkeypatch, caplog):
    """The situation: the model at a size where LCE's zero padding is wrong.
    The warning is what check_model prints then; building the model is
    replaced by a stand-in so that every model is covered in a second (the
    hazard list is what export.convert.zero_padding_hazards reports of a real one)."""
    import tensorflow as tf

    from ir2net_tf.export import convert

    spec = zoo.get_spec(model)
    if 0.0 not in spec.option_values("pad_values"):
        pytest.skip(f"{model} pads with 1: no zero-padding warning")
    monkeypatch.setattr(zoo, "build", lambda *a, **k: tf.keras.Sequential())
    monkeypatch.setattr(convert, "zero_padding_hazards", lambda m: ["conv (2x2 input)"])
    settings = recipes.resolve("digits", {"model": model, "pad_values": 0.0})
    caplog.set_level("WARNING")
    settings_check.check_model(settings)
    warning = " ".join(r.getMessage() for r in caplog.records if "will not export correctly" in r.getMessage())
    assert warning
    suggested = [v for f, v in ((m.group(1), m.group(2) or m.group(3)) for m in FLAG.finditer(warning))
                 if f == "pad_values" and v and float(v) == 1.0]
    accepted = 1.0 in spec.option_values("pad_values")
    assert bool(suggested) == accepted, warning
    for value in suggested:
        assert accepts("train", "pad_values", value)
        spec.check_arguments({"pad_values": flag_domains.Domain(integer=False).parse(value)})  # the builder's own check


# Advice to change a flag and resume is advice the resume must accept: only
# flags runs/at_resume.py lets a resume change (or --overwrite, a fresh start).
RESUME_ADVICE = [(where, flag) for where, commands, flag, _, text in
                 [(*m, t) for m, t in zip(MENTIONS, MENTION_TEXTS)]
                 if "train" in commands and re.search(r"\bresum", text) and flag in at_resume.RULES]


@pytest.mark.parametrize("where,flag", RESUME_ADVICE, ids=[f"{w}--{f}" for w, f in RESUME_ADVICE])
def test_advice_to_resume_names_only_flags_a_resume_may_change(where, flag):
    assert at_resume.RULES[flag].may_change, f"{where} advises changing --{flag} to resume, which a resume refuses"
