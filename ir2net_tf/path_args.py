"""What a path argument must be, declared where the flag is defined, checked
by one rule for all three commands (as ``flag_domains`` does for numbers).

A ``PathArg`` says whether the path is a file or a folder, whether it must
exist already (an input) or will be written (an output: if it exists it
must be of the right kind), and which name endings (formats) a file may
have. The same object

- parses an absl flag's text (``DEFINE_path``: ``python -m train``),
- parses an argparse argument's text (``argparse_type``: ``python -m
  export`` and ``python -m zoo``),

and refuses, in one line naming the flag, a path that does not exist, is a
folder where a file is wanted (or the reverse), cannot be read, or has the
wrong format. ``tests/test_path_args.py`` tries each of these on every path
flag of the three commands, read from their definitions.
"""

import argparse
import dataclasses
import os
import sys
from typing import Optional, Tuple

FILE, DIR, FILE_OR_DIR = "file", "folder", "file or folder"

# Keras' weights formats, as ir2net_tf.models.weights reads them (any other name
# is read as a TensorFlow checkpoint: PathArg.checkpoint).
WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".keras")
ARRAY_SUFFIXES = (".npy", ".npz")


@dataclasses.dataclass(frozen=True)
class PathArg:
    """The paths an argument accepts.

    Attributes:
        kind: FILE, DIR or FILE_OR_DIR.
        must_exist: an input (True), or an output that may not exist yet.
        suffixes: a file's accepted name endings, lower case (photo.JPG is a .jpg; empty:
            any); a folder's are not checked.
        checkpoint: a TensorFlow checkpoint's prefix (``ckpt-3``, with
            ``ckpt-3.index`` beside it) also counts, and then any name does.
        what: what the path is, for messages ("a stage-1 weights file").
    """

    kind: str
    must_exist: bool = True
    suffixes: Tuple[str, ...] = ()
    checkpoint: bool = False
    what: str = ""

    def describe(self) -> str:
        formats = f" ({' or '.join(self.suffixes)})" if self.suffixes and self.kind != DIR else ""
        return (self.what or f"a {self.kind}") + formats

    def problem(self, text) -> Optional[str]:
        """What is wrong with the path ``text`` (None: nothing)."""
        path = os.path.expanduser(os.fspath(text))
        if not path:
            return f"is empty; give {self.describe()}"
        if self.checkpoint and os.path.isfile(path + ".index"):
            return None
        if not os.path.exists(path):
            if self.must_exist:
                return f"{path!r} does not exist; give {self.describe()}"
            return self._format_problem(path)
        is_dir = os.path.isdir(path)
        if is_dir and self.kind == FILE:
            return f"{path!r} is a folder, not a file; give {self.describe()}"
        if not is_dir and self.kind == DIR:
            return f"{path!r} is a file, not a folder; give {self.describe()}"
        if self.must_exist and not os.access(path, os.R_OK | (os.X_OK if is_dir else 0)):
            return f"{path!r} cannot be read (permission denied); give {self.describe()} you may read"
        return None if is_dir else self._format_problem(path)

    def _format_problem(self, path: str) -> Optional[str]:
        if self.suffixes and self.kind != DIR and not os.path.isdir(path) and not path.lower().endswith(self.suffixes) \
                and not self.checkpoint:
            return f"{path!r} is not {self.describe()}: its name must end in {' or '.join(self.suffixes)}"
        return None

    def check(self, text, flag: str):
        """``text`` when it is a fitting path; else a ValueError naming ``flag``."""
        problem = self.problem(text)
        if problem:
            raise ValueError(f"{flag} {problem}.")
        return text


# ---------------------------------------------------------------- argparse


def argparse_type(path_arg: PathArg):
    """An argparse ``type=``: argparse reports the refusal as ``argument
    --flag: '…' does not exist; give …`` with exit status 2."""

    def parse(text):
        problem = path_arg.problem(text)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return text

    parse.path_arg = path_arg  # what tests/test_path_args.py reads
    parse.__name__ = "path"
    return parse


def argparse_path_arg(action) -> Optional[PathArg]:
    """The ``PathArg`` an argparse argument was defined with, or None."""
    return getattr(action.type, "path_arg", None)


# ---------------------------------------------------------------- absl


def DEFINE_path(name: str, default, help: str, path_arg: PathArg, **kwargs):  # noqa: N802 — absl's naming
    """absl's ``DEFINE_string`` for a path that must be ``path_arg``; absl
    reports a refusal as ``flag --name=value: …`` (runs/cli.py: exit 2). The
    default is not checked here (it may not exist until the run creates it)."""
    from absl import flags

    class PathParser(flags.ArgumentParser):
        def __init__(self):
            super().__init__()
            self.path_arg = path_arg

        def parse(self, argument):
            if argument is None or argument == default:
                return argument
            problem = path_arg.problem(argument)
            if problem:
                raise ValueError(problem)
            return argument

        def flag_type(self):
            return "string"

    kwargs.setdefault("module_name", sys._getframe(1).f_globals["__name__"])  # noqa: SLF001
    return flags.DEFINE(PathParser(), name, default, f"{help} ({path_arg.describe()})",
                        serializer=flags.ArgumentSerializer(), **kwargs)


def absl_path_arg(flag) -> Optional[PathArg]:
    """The ``PathArg`` an absl flag was defined with, or None."""
    return getattr(flag.parser, "path_arg", None)
