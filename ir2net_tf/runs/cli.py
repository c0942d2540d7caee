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

from ir2net_tf import flag_domains as domains
from ir2net_tf.command_name import command_name
from ir2net_tf.path_args import DIR, FILE, WEIGHTS_SUFFIXES, DEFINE_path, PathArg
from ir2net_tf.runs import at_resume, recipes, validation

FLAGS = flags.FLAGS
# Every numeric flag is defined with its domain (flag_domains): absl refuses
# an out-of-domain value while parsing, before any work (parse_flags: exit 2).
# The training settings' domains are validation.DOMAINS, which also checks
# values from recipes and config.json.
SETTINGS = validation.DOMAINS
# What the run trains; None means "from the recipe".
flags.DEFINE_string("recipe", None, f"Preset: one of {sorted(recipes.RECIPES)}. Default: digits, or "
                    "imagenet for --dataset imagenet2012, or the model's paper recipe for other datasets.")
flags.DEFINE_string("model", None, "Zoo model name (ir2net_tf.zoo.MODELS).")
flags.DEFINE_string("variant", None, "Model variant (`python -m zoo list` shows each model's; unset = the paper's head).")
flags.DEFINE_string("dataset", None, "digits, a tensorflow-datasets name (cifar10, cifar100, imagenet2012, ...) "
                    "or a folder of images with one sub-folder per class.")
DEFINE_path("data_dir", None, "tensorflow-datasets data directory.",
            PathArg(DIR, what="an existing folder (create it first to download into it)"))
DEFINE_path("manual_dir", None, "Where the manually downloaded files are (ImageNet's two tar files); "
            "default <data_dir>/downloads/manual.", PathArg(DIR, what="the folder of the tar files"))
domains.DEFINE_integer("image_size", None, "Input height and width.", SETTINGS["image_size"])
domains.DEFINE_integer("epochs", None, "Epochs per stage.", SETTINGS["epochs"])
domains.DEFINE_integer("batch_size", None, "Global batch size (split over the replicas).", SETTINGS["batch_size"])
flags.DEFINE_string("train_split", None, "tensorflow-datasets split to train on, sliced for a smoke test: "
                    "e.g. train[:1%] or train[:512] (default: train).")
flags.DEFINE_string("validation_split", None, "tensorflow-datasets split to evaluate on, e.g. validation[:64] "
                    "(default: validation, else test).")
flags.DEFINE_enum("optimizer", None, ["sgd", "sgd_nesterov", "adam"], "Optimizer.")
domains.DEFINE_float("learning_rate", None, "Peak learning rate (cosine decay to 0 over the stage).",
                     SETTINGS["learning_rate"])
flags.DEFINE_enum("lr_schedule", None, ["cosine", "step"], "cosine to 0 (default), or step: ×0.1 at 30/60/90 % "
                  "of the stage after --warmup_epochs (IR-Net's ImageNet schedule).")
domains.DEFINE_float("warmup_epochs", None, "--lr_schedule step: linear warm-up epochs (may be fractional).",
                     SETTINGS["warmup_epochs"])
domains.DEFINE_float("warmup_learning_rate", None, "--lr_schedule step: the rate the warm-up starts from.",
                     SETTINGS["warmup_learning_rate"])
flags.DEFINE_enum("binarizer", None, ["bireal", "irnet"], "Binary convolutions' quantizers: bireal (IR²Net's "
                  "approx_sign/ste_sign) or irnet (IR-Net's EDE/Libra-PB); default: the model's own.")
domains.DEFINE_float("momentum", None, "SGD momentum.", SETTINGS["momentum"])
domains.DEFINE_float("weight_decay", None, "L2 weight decay added to the gradient.", SETTINGS["weight_decay"])
flags.DEFINE_enum("weight_decay_scope", None, ["all", "conv"], "Decay all trainable weights or conv kernels only.")
domains.DEFINE_float("stage2_weight_decay", None, "Weight decay of stage 2 (default: --weight_decay).",
                     SETTINGS["stage2_weight_decay"])
domains.DEFINE_float("restriction_lambda", None, "λ of the restriction mask; 0 turns restriction off.",
                     SETTINGS["restriction_lambda"])
flags.DEFINE_enum("normalization", None, ["height", "global"], "Attention normalization of the mask.")
flags.DEFINE_string("teacher", None, "Keras Applications name or saved Keras model path; '' = no distillation.")
flags.DEFINE_enum("stage", None, ["1", "2", "both"], "1: real weights, binary activations; 2: binary weights "
                  "(from stage 1's weights when present); both: 1 then 2 in one model directory.")
flags.DEFINE_enum("augment", None, ["auto", "cifar", "imagenet", "shift", "none"], "Training augmentation.")
domains.DEFINE_float("pad_values", None, "Padding value of binary convolutions (what LCE supports).",
                     SETTINGS["pad_values"])
flags.DEFINE_boolean("weight_clip", None, "Clip latent binary weights to [-1, 1] after every update (Larq's "
                     "weight_clip); default off, as the reference: a latent weight beyond ±1 keeps its value.")
flags.DEFINE_boolean("recovery", None, "Information recovery head (false: bare backbone baseline).")
domains.DEFINE_integer("seed", None, "Seed of data order, augmentation and initialization.", SETTINGS["seed"])
domains.DEFINE_integer("steps_per_epoch", None, "At most N steps an epoch (the epoch's first N batches), e.g. 2 for a "
                     "smoke test of a cluster; 0 or unset: the whole training split.",
                       SETTINGS["steps_per_epoch"])
# How to run it. Whether a resume may change a flag is declared in
# runs/at_resume.py (its --help says so, below).
flags.DEFINE_enum("mode", "train", ["train", "evaluate"], "train, or report top-1/top-5 of saved weights: a "
                  "run's (--model_dir), or any weights file of a zoo model (--model --weights --dataset).")
DEFINE_path("model_dir", "runs/demo", "Where the run's config, checkpoints, weights and logs go.",
            PathArg(DIR, must_exist=False, what="a folder (created if missing)"))
flags.DEFINE_boolean("overwrite", False, "Delete a different run found in --model_dir and start afresh.")
domains.DEFINE_integer("checkpoint_every", 500, "Save a checkpoint every N steps (and at every epoch's end).",
                       domains.at_least(1))
flags.DEFINE_enum("strategy", at_resume.RUN_OPTIONS["strategy"], ["default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy.")
flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.")
domains.DEFINE_integer("cluster_timeout", 300, "--strategy=multi_worker: seconds to wait for every worker at "
                       "start-up.", domains.at_least(1))
flags.DEFINE_boolean("mixed_precision", at_resume.RUN_OPTIONS["mixed_precision"],
                     "float16 (bfloat16 on TPU) compute, for accelerators.")
flags.DEFINE_boolean("jit_compile", at_resume.RUN_OPTIONS["jit_compile"], "Compile the training step with XLA.")
flags.DEFINE_boolean("restriction_shortcut", at_resume.RUN_OPTIONS["restriction_shortcut"],
                     "When the mask keeps every pixel of a replica's batch, skip the second pass (its result is "
                     "the first's; batch-norm moving statistics updated in closed form).")
DEFINE_path("init_weights", at_resume.RUN_OPTIONS["init_weights"], "Stage-1 weights for --stage 2 (default: the "
            "model directory's).", PathArg(FILE, suffixes=WEIGHTS_SUFFIXES, checkpoint=True, what="a weights file"))
DEFINE_path("weights", None, "--mode evaluate: weights file (default: the run's best).",
            PathArg(FILE, suffixes=WEIGHTS_SUFFIXES, checkpoint=True, what="a weights file"))
flags.DEFINE_enum("padding", None, ["same", "pytorch"], "--mode evaluate --model: 'pytorch' for weights from "
                  "`python -m zoo import-pytorch` (ImageNet models).")
domains.DEFINE_integer("verbose", 1, "Progress bars (1) or none (0).", domains.one_of(0, 1, integer=True))


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

TRAINING_FLAGS = (
    "model", "variant", "dataset", "data_dir", "manual_dir", "image_size", "epochs", "batch_size", "optimizer",
    "learning_rate", "momentum", "weight_decay", "weight_decay_scope", "stage2_weight_decay",
    "restriction_lambda", "normalization", "teacher", "stage", "augment", "pad_values", "recovery", "seed",
    "weight_clip", "lr_schedule", "warmup_epochs", "warmup_learning_rate", "binarizer", "steps_per_epoch",
    "train_split", "validation_split",
)


def settings_from_flags() -> dict:
    given = {name: FLAGS[name].value for name in TRAINING_FLAGS if FLAGS[name].present}
    name = recipes.recipe_name(FLAGS.recipe, given.get("dataset"), given.get("model"))
    if given.get("steps_per_epoch") == 0:
        del given["steps_per_epoch"]  # the whole epoch, as a run without the flag
    settings = recipes.resolve(name, given)
    settings.setdefault("data_dir", None)
    settings.setdefault("manual_dir", None)
    return settings


def evaluate_arguments() -> dict:
    """run.evaluate's arguments: a run's model directory, or with --model a
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
            validation.check_options(
                mode="evaluate", given={n: FLAGS[n].value for n in TRAINING_FLAGS if FLAGS[n].present},
                init_weights=FLAGS.init_weights, weights=FLAGS.weights, stage=None,
            )
            result = run.evaluate(**evaluate_arguments())
            print(f"{result['weights']} on {result['dataset']} ({result['examples']} images): "
                  f"top-1 {100 * result['top1']:.2f} %, top-5 {100 * result['top5']:.2f} %")
            print(json.dumps(result))
            return
        settings = settings_from_flags()
        validation.check_options(mode="train", given={}, init_weights=FLAGS.init_weights, weights=FLAGS.weights,
                                 stage=settings["stage"])
        logging.info("Training settings: %s", json.dumps(settings, sort_keys=True))
        runner = run.Run(
            settings, model_dir=FLAGS.model_dir, overwrite=FLAGS.overwrite, checkpoint_every=FLAGS.checkpoint_every,
            strategy=FLAGS.strategy, tpu=FLAGS.tpu, mixed_precision=FLAGS.mixed_precision,
            jit_compile=FLAGS.jit_compile, verbose=FLAGS.verbose, init_weights=FLAGS.init_weights,
            restriction_shortcut=FLAGS.restriction_shortcut, cluster_timeout=FLAGS.cluster_timeout,
        )
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
    # The stage this command asked for (--stage 1 in a finished run: stage 1's).
    wanted = "1" if settings["stage"] == "1" else "2"
    last = [r for r in rows if r["stage"] == wanted]
    if last:
        best = max(float(r["val_accuracy"]) for r in last)
        print(f"Held-out accuracy: final {100 * float(last[-1]['val_accuracy']):.2f} %, best {100 * best:.2f} % "
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
