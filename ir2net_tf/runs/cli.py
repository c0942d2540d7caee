"""Train an IR²Net model: ``python -m train [--flags]``.

With no flags: the offline demo, IR2ResNet20 (binary weights and
activations) on scikit-learn's handwritten digits, a few minutes on a CPU.
``--dataset imagenet2012`` (or ``--recipe``) selects the paper's recipes (docs/recipes.md); every
flag given overrides the recipe. ``--help`` lists the flags, ``--helpfull`` also absl's and TensorFlow's.
"""

import ir2net_tf  # noqa: E402,F401  (must precede TensorFlow: selects Keras 2)

import json
import sys

from absl import app, flags, logging

from ir2net_tf import config, flag_domains as domains
from ir2net_tf._util.command_name import command_name
from ir2net_tf.path_args import FILE, WEIGHTS_SUFFIXES, DEFINE_path, PathArg
from ir2net_tf.runs import api, at_resume, settings_check

FLAGS = flags.FLAGS


def _define_setting(name: str, setting: config.Setting) -> None:
    """The flag of one ``TrainConfig`` field, with its domain: absl refuses
    an out-of-domain value while parsing, before any work (parse_flags:
    exit 2). A recipe setting's flag defaults to None: "from the recipe"."""
    default = None if setting.from_recipe else setting.fallback
    where = {"module_name": __name__}
    if setting.path is not None:
        DEFINE_path(name, default, setting.help, setting.path, **where)
    elif setting.choices is not None:
        flags.DEFINE_enum(name, default, list(setting.choices), setting.help, **where)
    elif setting.type is bool:
        flags.DEFINE_boolean(name, default, setting.help, **where)
    elif setting.type is int:
        domains.DEFINE_integer(name, default, setting.help, setting.domain, **where)
    elif setting.type is float:
        domains.DEFINE_float(name, default, setting.help, setting.domain, **where)
    else:
        flags.DEFINE_string(name, default, setting.help, **where)
        if setting.addresses is not None:
            # A malformed address is refused while parsing, in one line (exit 2).
            flags.register_validator(name, lambda text, rule=setting.addresses: _valid(rule, text))


def _valid(rule, text) -> bool:
    problem = rule.problem(text)
    if problem:
        raise flags.ValidationError(problem)
    return True


for _name, _setting in config.SETTINGS.items():
    _define_setting(_name, _setting)
# The flags of --mode evaluate (not settings of a run).
flags.DEFINE_enum("mode", "train", ["train", "evaluate"], "train, or report top-1/top-5 of saved weights: a "
                  "run's (--model_dir), or any weights file of a zoo model (--model --weights --dataset).")
DEFINE_path("weights", None, "--mode evaluate: weights file (default: the run's best).",
            PathArg(FILE, suffixes=WEIGHTS_SUFFIXES, checkpoint=True, what="a weights file"))
flags.DEFINE_enum("padding", None, ["same", "pytorch"], "--mode evaluate --model: 'pytorch' for weights from "
                  "`python -m zoo import-pytorch` (ImageNet models).")


def _declare_resume_rules() -> None:
    """Each flag's --help ends with whether a resume may change it; a flag
    without a rule in at_resume.RULES is a programming error, caught here."""
    for flag in FLAGS.get_flags_for_module(__name__):
        rule = at_resume.RULES.get(flag.name)
        if rule is None:
            raise AssertionError(f"--{flag.name} has no rule in ir2net_tf/runs/at_resume.py: may a resume change it?")
        kind = "may change when resuming" if rule.may_change else "fixed for a run"
        flag.help = f"{flag.help} [{kind}: {rule.reason}]"


_declare_resume_rules()

# The flags that set a recipe setting (the rest say how to run).
TRAINING_FLAGS = tuple(n for n in config.RECIPE_SETTINGS if n != "recipe")


def config_from_flags() -> config.TrainConfig:
    """The ``TrainConfig`` the command line asks for: the recipe settings
    given, and every option of how to run."""
    given = {name: FLAGS[name].value for name in config.RECIPE_SETTINGS if FLAGS[name].present}
    options = {name: FLAGS[name].value for name in config.RUN_OPTIONS}
    return config.TrainConfig(**given, **options)


def evaluate_arguments() -> dict:
    """api.evaluate's arguments: a run's model directory, or with --model a
    zoo model whose options (--variant, --padding, --pad_values,
    --recovery) the weights file must fit."""
    common = {"weights": FLAGS.weights, "data_dir": FLAGS.data_dir, "batch_size": FLAGS.batch_size,
              "verbose": FLAGS.verbose, "dataset": FLAGS.dataset, "image_size": FLAGS.image_size}
    if not FLAGS.model:
        return {"model_dir": FLAGS.model_dir, **common}
    from ir2net_tf import zoo

    options = {"padding": FLAGS.padding, "pad_values": FLAGS.pad_values, "recovery": FLAGS.recovery}
    options["variant"] = zoo.get_spec(FLAGS.model).parse_variant(FLAGS.variant)
    return {"model": FLAGS.model, **common, **options}


def main(argv):
    if len(argv) > 1:
        raise SystemExit(f"error: unexpected arguments {argv[1:]}; flags are --name=value.")
    from ir2net_tf.runs import run  # after absl parsed flags

    # TensorFlow logs this at INFO on every checkpoint save, burying the progress.
    # Keras warns that our per-step bookkeeping (step counter, checkpoint
    # check) is "slow compared to the batch time" on the tiny demo batches;
    # tf.distribute logs every collective it builds at INFO. Nothing a user
    # can act on.
    noise = ("Sharding callback", "is slow compared to the batch time", "Collective all_reduce tensors")
    logging.get_absl_handler().addFilter(lambda record: not any(n in record.getMessage() for n in noise))
    # TensorFlow's logger has a stderr handler of its own and also passes its
    # records up to absl's: every TensorFlow warning (the mixed-precision
    # notice among them) would be printed twice, once past the filter above.
    import tensorflow as tf

    tf.get_logger().handlers.clear()

    runner = None

    try:
        if FLAGS.mode == "evaluate":
            settings_check.check_options(
                mode="evaluate", given={n: FLAGS[n].value for n in TRAINING_FLAGS if FLAGS[n].present},
                init_weights=FLAGS.init_weights, weights=FLAGS.weights, stage=None,
            )
            result = api.evaluate(**evaluate_arguments())
            print(f"{result['weights']} on {result['dataset']} ({result['examples']} images): "
                  f"top-1 {100 * result['top1']:.2f} %, top-5 {100 * result['top5']:.2f} %")
            print(json.dumps(result))
            return
        if FLAGS.weights is not None:
            settings_check.check_options(mode="train", given={}, init_weights=None, weights=FLAGS.weights, stage=None)
        runner = run.Run.from_config(config_from_flags())
        rows = runner.train()
    except (ValueError, run.callbacks.NaNLoss) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except run.callbacks.Stopped as stopped:
        print(stopped, file=sys.stderr)
        sys.exit(stopped.exit_code)
    except KeyboardInterrupt:
        where = runner.where() if runner is not None else "before training started"
        print(f"Interrupted (Ctrl-C) {where}; the checkpoints saved until then are kept. Run the same command "
              "to resume.", file=sys.stderr)
        sys.exit(130)
    result = api.TrainResult.of(runner.model_dir, runner.settings["stage"], rows)
    if result.final_accuracy is not None:
        print(f"Held-out accuracy: final {100 * result.final_accuracy:.2f} %, best {100 * result.best_accuracy:.2f} % "
              f"(weights in {runner.model_dir})")


HELP = ("--help", "-help", "-h", "-?", "--helpshort", "-helpshort", "--helpfull", "-helpfull")


def help_text(full: bool = False) -> str:
    """The command's own flags (absl's --help shows only __main__'s flags,
    which are none); ``full`` adds absl's and TensorFlow's after them."""
    usage = f"usage: {command_name('train')} [--flag=value ...]\n\n"
    text = usage + __doc__.strip() + "\n\nflags:\n" + FLAGS.module_help(__name__) + "\n"
    if full:
        others = [m for m in FLAGS.flags_by_module_dict() if m != __name__]
        text += "".join(f"\nflags of {m}:\n{FLAGS.module_help(m)}\n" for m in sorted(others))
    return text


def parse_flags(argv):
    """``app.run``'s flag parser: --help lists this command's flags (exit 0);
    a flag that is unknown or out of its domain is one line naming it (exit 2)."""
    wanted = [a.split("=")[0] for a in argv[1:] if a.split("=")[0] in HELP]
    if wanted:
        print(help_text(full=any("full" in a for a in wanted)))
        sys.exit(0)
    try:
        return FLAGS(argv)
    except flags.Error as error:
        print(f"error: {error}. `{command_name('train')} --help` lists the flags.", file=sys.stderr)
        sys.exit(2)


def run(argv=None):
    """Console script ``ir2net-train`` and ``python -m train``."""
    app.run(main, argv=argv, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
