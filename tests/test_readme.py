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
def test_shown_command_parses(path, name, args, monkeypatch):
    # Names and values only: the files a command reads come from the commands
    # before it (runs/demo) or the user's machine; path checks are tested in
    # tests/test_path_args.py.
    from ir2net_tf import path_args

    monkeypatch.setattr(path_args.PathArg, "problem", lambda self, text: None)
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


def ir2_quicknet_lines():
    """The README's IR2QuickNet block: its train and export lines, in order."""
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    (block,) = [b for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S) if "--model IR2QuickNet" in b]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


# The lines as typed (one epoch: near-uniform outputs, the case where top-1 on
# random inputs is luck), quiet and without latency timing. Not fewer steps:
# after 2 steps the held-out top-1 rule (99 % outside near-ties) refused a
# correct conversion (98.9 %, its outputs 2.9e-5 of their spread apart);
# the full epoch is deterministic on CPU (99.4 %).
SMALLEST = {"train": ["--verbose=0"], "export": ["--latency-runs", "0"]}


@pytest.mark.slow
def test_readme_ir2_quicknet_lines_train_and_export_that_run_verified(tmp_path, monkeypatch, capsys):
    """Typed after the demo (runs/demo holds it), the README's IR2QuickNet
    lines train into their own directory and export that run, verified on
    its held-out digits and on random inputs."""
    import json

    from tests_support import train_in_process
    from ir2net_tf.export import cli as export_cli

    train_line, export_line = ir2_quicknet_lines()
    assert train_line[:3] == ["python", "-m", "train"]
    assert export_line[:3] == ["python", "-m", "export"] and "--no-verify" not in export_line
    # Not the demo's directory, which the README's first command filled.
    model_dir = next(w.split("=", 1)[1] if "=" in w else train_line[i + 1]
                     for i, w in enumerate(train_line) if w.split("=")[0] in ("--model_dir", "--model-dir"))
    assert os.path.normpath(model_dir) != "runs/demo"
    assert export_line[export_line.index("--model-dir") + 1] == model_dir
    monkeypatch.chdir(tmp_path)
    train_in_process(*train_line[3:], *SMALLEST["train"])
    code = export_cli.main(export_line[3:] + SMALLEST["export"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(open(os.path.join(model_dir, "model.json")).read())
    assert report["ok"] and set(report["parity"]) == {"held-out", "random"}, report
    assert not report["random_weights"] and "weights:" not in out
    assert report["census"]["ok"] and report["census"]["lce_bconv2d"] == 16
    config = json.loads(open(os.path.join(model_dir, "config.json")).read())
    assert (config["model"], config["variant"], config["stages_completed"]) == ("IR2QuickNet", "B", ["2"])
    assert config["pad_values"] == 1.0  # larq-zoo's own, not the digits recipe's 0
    print(out)
