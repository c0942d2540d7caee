"""Every path argument of the three commands refuses what it must not be,
generated from the definitions themselves (``path_args.PathArg`` attached to
absl's flags of ``python -m train`` and to the argparse parsers of ``python
-m export`` and ``python -m zoo``'s sub-commands), so a path flag added later
is covered without editing this file.

For each path flag and each way a path can be wrong for it (missing; a
folder for a file or a file for a folder; unreadable; the wrong format):
exit status 2, a last line naming the flag and the problem, no traceback,
nothing created. In-process: the commands' own parse step, which runs before
any other work."""

import argparse
import os

import pytest

from ir2net_tf import path_args
from ir2net_tf.catalog import cli as zoo_cli
from ir2net_tf.catalog import import_pytorch
from ir2net_tf.export import cli as export_cli
from ir2net_tf.path_args import DIR, FILE, FILE_OR_DIR
from ir2net_tf.runs import cli as train_cli


# ---------------------------------------------------------------- the path flags, from their definitions


def _argparse_paths(command, parser, prefix=()):
    """(command, argv prefix, option, PathArg) of every path argument of ``parser`` and its sub-commands."""
    found = []
    for action in parser._actions:  # noqa: SLF001 — argparse keeps its arguments here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                found += _argparse_paths(command, sub, (*prefix, name))
            continue
        path_arg = path_args.argparse_path_arg(action)
        if path_arg is not None:
            found.append((command, prefix, action.option_strings[0] if action.option_strings else action.dest,
                          path_arg))
    return found


def path_flags():
    found = [("train", (), f"--{flag.name}", path_args.absl_path_arg(flag))
             for flag in train_cli.FLAGS.get_flags_for_module(train_cli.__name__)
             if path_args.absl_path_arg(flag) is not None]
    found += _argparse_paths("export", export_cli.build_parser())
    found += _argparse_paths("zoo", zoo_cli.build_parser())
    found += _argparse_paths("zoo", import_pytorch.build_parser(), ("import-pytorch",))
    return found


PATH_FLAGS = path_flags()


def parse(command, prefix, option, value):
    """The command's own parse step on ``option value``."""
    given = [f"{option}={value}"] if option.startswith("-") else [value]
    if command == "train":
        try:
            train_cli.parse_flags(["train", *given])
        finally:
            train_cli.FLAGS.unparse_flags()
    elif command == "export":
        export_cli.parse_args(given)
    elif prefix == ("import-pytorch",):
        import_pytorch.build_parser().parse_args(given)
    else:
        zoo_cli.build_parser().parse_args([*prefix, *given])


def cases(path_arg) -> list:
    """The ways a path can be wrong for ``path_arg``."""
    found = ["missing"] if path_arg.must_exist else []
    found += {FILE: ["folder for a file"], DIR: ["file for a folder"]}.get(path_arg.kind, [])
    found += ["unreadable"] if path_arg.must_exist else []
    if path_arg.suffixes and path_arg.kind != DIR and not path_arg.checkpoint:
        found.append("wrong format")
    return found


def wrong_path(case, path_arg, folder):
    """(a path wrong for ``path_arg`` in the way ``case`` says, the words the message must hold)."""
    suffix = (path_arg.suffixes or ("",))[0] if path_arg.kind != DIR else ""  # the right name: only `case` is wrong
    if case == "missing":
        return str(folder / f"no_such{suffix}"), "does not exist"
    if case == "folder for a file":
        (folder / f"a_folder{suffix}").mkdir()
        return str(folder / f"a_folder{suffix}"), "is a folder, not a file"
    if case == "file for a folder":
        (folder / "a_file").write_text("x")
        return str(folder / "a_file"), "is a file, not a folder"
    if case == "unreadable":
        path = folder / f"locked{suffix}"
        path.mkdir() if path_arg.kind == DIR else path.write_text("x")
        return str(path), "cannot be read"
    (folder / "data.wrong").write_text("x")
    return str(folder / "data.wrong"), "must end in"


CASES = [(command, prefix, option, path_arg, case)
         for command, prefix, option, path_arg in PATH_FLAGS for case in cases(path_arg)]


def test_every_command_has_its_path_flags_declared():
    declared = {(command, option) for command, _, option, _ in PATH_FLAGS}
    assert {("train", "--model_dir"), ("train", "--weights"), ("train", "--init_weights"), ("export", "--model-dir"),
            ("export", "--weights"), ("export", "--output"), ("export", "--images"), ("zoo", "--images")} <= declared


@pytest.mark.parametrize("command,prefix,option,path_arg,case", CASES,
                         ids=[f"{c}{'-' + '-'.join(p) if p else ''}{o}-{k}" for c, p, o, _, k in CASES])
def test_a_wrong_path_is_one_line_naming_the_flag(command, prefix, option, path_arg, case, tmp_path, capsys,
                                                   monkeypatch):
    given = tmp_path / "given"
    given.mkdir()
    path, words = wrong_path(case, path_arg, given)
    if case == "unreadable":
        if os.geteuid() == 0:
            # root reads everything: chmod 000 cannot refuse it. The check is
            # os.access; give it the answer a user without the permission gets.
            real = os.access
            monkeypatch.setattr(path_args.os, "access", lambda p, mode: p != path and real(p, mode))
        else:
            os.chmod(path, 0)
    before = sorted(os.listdir(given))
    with pytest.raises(SystemExit) as exited:
        parse(command, prefix, option, path)
    if case == "unreadable":
        os.chmod(path, 0o700)
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    last = err.strip().splitlines()[-1]
    assert option.lstrip("-") in last and words in last and repr(path) in last, err
    assert "Traceback" not in err
    assert sorted(os.listdir(given)) == before


def test_the_reported_cases(tmp_path, capsys):
    """A mistyped run folder is named as missing (not as an output problem); a
    folder given as a weights file is named as a folder (not as missing)."""
    with pytest.raises(SystemExit):
        export_cli.parse_args(["--model-dir", "runs/dmeo"])
    assert "argument --model-dir/--model_dir: 'runs/dmeo' does not exist; give a run's folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("train", (), "--weights", str(tmp_path))
    assert f"--weights={tmp_path}: {str(tmp_path)!r} is a folder, not a file" in capsys.readouterr().err


def test_a_fitting_path_is_accepted(tmp_path):
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"")
    checkpoint = tmp_path / "ckpt-3"
    (tmp_path / "ckpt-3.index").write_bytes(b"")
    arg = path_args.PathArg(FILE, suffixes=path_args.WEIGHTS_SUFFIXES, checkpoint=True)
    assert arg.problem(str(weights)) is None and arg.problem(str(checkpoint)) is None
    assert path_args.PathArg(DIR, must_exist=False).problem(str(tmp_path / "new")) is None
    assert path_args.PathArg(FILE_OR_DIR, suffixes=(".npy",)).problem(str(tmp_path)) is None
