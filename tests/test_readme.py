"""Every command the README and docs/ show is accepted by the command it
names: its flags exist and parse. (The commands themselves run in their
smallest form in the other tests: the demo run, export, the catalog,
show-restriction, the benchmark and the PyTorch import.)"""

import glob
import os
import re
import shlex

import pytest

from tests_support import REPO

# The project's commands, as a checkout runs them and as installed.
COMMANDS = {
    ("python", "-m", "train"): "train",
    ("ir2net-train",): "train",
    ("python", "-m", "export"): "export",
    ("ir2net-export",): "export",
    ("python", "-m", "zoo"): "zoo",
    ("ir2net-zoo",): "zoo",
}


def shown_commands():
    """(file, command line) for every project command in a ```sh block."""
    found = []
    for path in [os.path.join(REPO, "README.md"), *sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))]:
        text = open(path, encoding="utf-8").read()
        for block in re.findall(r"```(?:sh|bash|shell)\n(.*?)```", text, flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                for part in re.split(r"&&|;|\|", line.split(" #")[0]):
                    words = shlex.split(part.strip(), comments=True)
                    for prefix, name in COMMANDS.items():
                        if tuple(words[: len(prefix)]) == prefix:
                            found.append((os.path.relpath(path, REPO), name, words[len(prefix):]))
    return found


COMMAND_LINES = shown_commands()


def test_the_docs_show_each_command():
    assert {name for _, name, _ in COMMAND_LINES} == {"train", "export", "zoo"}


@pytest.mark.parametrize("path, name, args", COMMAND_LINES,
                         ids=[f"{p}:{n} {' '.join(a)}"[:90] for p, n, a in COMMAND_LINES])
def test_shown_command_parses(path, name, args):
    if name == "train":
        from ir2net_tf.runs import cli

        try:
            cli.FLAGS(["train", *args])
        finally:
            cli.FLAGS.unparse_flags()
    elif name == "export":
        from ir2net_tf.export import cli

        cli.parse_args(args)
    else:
        from ir2net_tf.catalog import cli

        if args[:1] == ["import-pytorch"]:
            from ir2net_tf.catalog import import_pytorch

            import_pytorch.build_parser().parse_args(args[1:])
        else:
            cli.build_parser().parse_args(args)
