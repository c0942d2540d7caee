"""Training presets: the paper's recipes (docs/recipes.md) plus the offline digits demo.

A recipe fills in every training flag the user did not pass; each flag given
on the command line overrides it.
"""

from typing import Optional

from ir2net_tf import config

# The demo: a real binary network on scikit-learn's 8×8 digits, upscaled to
# 16×16 (IR2ResNet20's total stride is 4, so 16 is the smallest size whose
# recovery taps pool evenly; at 32×32 the IR² step is ~4× slower per epoch).
# Its λ is not the paper's: on 16×16 digits the attention is nearly flat
# (the smallest pixel is ~0.93 of its image's mean), so λ 0.15 never erases
# a pixel and the demo would never show restriction. At 0.96 the masks
# erase about a fifth of each image in every epoch (README).
DIGITS_LAMBDA = 0.96
RECIPES = {
    "digits": dict(
        model="IR2ResNet20", dataset="digits", image_size=16, epochs=30, batch_size=64,
        optimizer="sgd", learning_rate=0.1, weight_decay=1e-4, weight_decay_scope="all",
        stage="2", teacher="", restriction_lambda=DIGITS_LAMBDA,
    ),
    "cifar10_resnet20": dict(
        model="IR2ResNet20", dataset="cifar10", image_size=32, epochs=500, batch_size=128,
        optimizer="sgd", learning_rate=0.11, weight_decay=1e-4, weight_decay_scope="all",
        stage="2", teacher="",
    ),
    "cifar10_resnet18": dict(
        model="IR2ResNet18CIFAR", dataset="cifar10", image_size=32, epochs=600, batch_size=128,
        optimizer="sgd", learning_rate=0.08, weight_decay=1e-4, weight_decay_scope="all",
        stage="2", teacher="",
    ),
    "cifar10_vggsmall": dict(
        model="IR2VGGSmall", dataset="cifar10", image_size=32, epochs=400, batch_size=128,
        optimizer="sgd", learning_rate=0.08, weight_decay=1e-4, weight_decay_scope="all",
        stage="2", teacher="",
    ),
    # Step 1 (real weights): weight decay 1e-5 on conv kernels; step 2: none.
    # The reference's teacher is a full-precision ResNet-34, which Keras
    # Applications does not ship; ResNet50 is the nearest it has.
    "imagenet": dict(
        model="IR2ResNet18", variant="A", dataset="imagenet2012", image_size=224, epochs=256,
        batch_size=512, optimizer="adam", learning_rate=1e-3, weight_decay=1e-5,
        weight_decay_scope="conv", stage2_weight_decay=0.0, stage="both", teacher="ResNet50",
    ),
    # Fine-tuning a larq-zoo network with IR² (docs/recipes.md, "Fine-tuning a
    # larq-zoo network"): the backbone starts from larq-zoo's ImageNet
    # weights (--init_weights: a file saved from IR2<name>(weights="imagenet")),
    # the recovery head and classifier start new. One stage: the binary
    # convolutions are larq-zoo's own and already binary. Adam at 1e-4 (a
    # tenth of the from-scratch rate, so the trained backbone is not undone
    # while the new head settles), cosine to 0 over 32 epochs, no weight
    # decay (larq-zoo trains its binary networks without it).
    "larq_zoo_finetune": dict(
        model="IR2QuickNet", variant="A", dataset="imagenet2012", image_size=224, epochs=32, batch_size=256,
        optimizer="adam", learning_rate=1e-4, weight_decay=0.0, weight_decay_scope="all", stage="2",
        teacher="",
    ),
    # IR-Net (docs/irnet.md): its release's CIFAR recipe (SGD, lr 0.1, cosine,
    # 400 epochs, batch 128, wd 1e-4) and ImageNet config (SGD Nesterov, 32 GPUs
    # × 64 = 2048 per step, warm-up 0.2 → 0.8 over 2,500 of 62,500 iterations
    # (4 of 100 epochs), then ×0.1 at 30/60/90 %, wd 1e-4); plain
    # cross-entropy, no restriction, no recovery head, no teacher.
    "irnet_cifar10": dict(
        model="IRNetResNet20", dataset="cifar10", image_size=32, epochs=400, batch_size=128,
        optimizer="sgd", learning_rate=0.1, weight_decay=1e-4, weight_decay_scope="all",
        stage="2", teacher="", restriction_lambda=0.0, recovery=False,
    ),
    "irnet_imagenet": dict(
        model="IRNetResNet18", dataset="imagenet2012", image_size=224, epochs=100, batch_size=2048,
        optimizer="sgd_nesterov", learning_rate=0.8, lr_schedule="step", warmup_epochs=4.0,
        warmup_learning_rate=0.2, weight_decay=1e-4, weight_decay_scope="all",
        stage="2", teacher="", restriction_lambda=0.0, recovery=False,
    ),
}

# IR-Net models train without information restriction and have no recovery
# head under every recipe (the digits demo included); flags still override.
IRNET_DEFAULTS = dict(restriction_lambda=0.0, recovery=False)

# What a setting takes when neither the recipe nor the caller sets it: each
# field's fallback (ir2net_tf/config.py).
DEFAULTS = config.FALLBACKS


def recipe_name(recipe: Optional[str], dataset: Optional[str], model: Optional[str]) -> str:
    """The preset to start from: ``--recipe``; else the demo's when no dataset
    (or digits) is named; ImageNet's for imagenet2012; else the model's paper
    recipe (the dataset named on the command line replaces the recipe's)."""
    if recipe:
        if recipe not in RECIPES:
            raise ValueError(f"Unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}.")
        return recipe
    if dataset is None or dataset == "digits":
        return "digits"
    if dataset.startswith("imagenet2012"):
        if model is not None and _model_recipe(model) == "larq_zoo_finetune":
            return "larq_zoo_finetune"
        return "irnet_imagenet" if _is_irnet(model) else "imagenet"
    return _model_recipe(model or "IR2ResNet20")


def _model_recipe(model: str) -> str:
    from ir2net_tf.zoo import get_spec

    return get_spec(model).recipe or "digits"


def _is_irnet(model: Optional[str]) -> bool:
    from ir2net_tf.zoo import get_spec

    return model is not None and get_spec(model).method == "irnet"


def check_recipe(name: str, values: dict) -> None:
    """A recipe is a partial configuration: its keys are ``TrainConfig``'s
    recipe settings, its values in their domains."""
    unknown = sorted(set(values) - set(config.RECIPE_SETTINGS))
    if unknown:
        raise ValueError(f"Recipe {name!r} sets {unknown}, which are not training settings (ir2net_tf/config.py).")
    config.check(values)


def resolve(recipe: str, given: dict) -> dict:
    """The recipe's values overridden by the settings ``given`` (name → value):
    every recipe setting of ``TrainConfig``, filled in."""
    check_recipe(recipe, RECIPES[recipe])
    unknown = sorted(set(given) - set(config.RECIPE_SETTINGS))
    if unknown:
        raise ValueError(f"Unknown training settings {unknown}; `python -m train --help` lists them.")
    settings = dict(DEFAULTS)
    settings.update(RECIPES[recipe])
    if _is_irnet(given.get("model", settings["model"])):
        settings.update(IRNET_DEFAULTS)
    from ir2net_tf.zoo import MODELS

    # What the model itself fixes (a larq-zoo network's padding value).
    settings.update(getattr(MODELS.get(given.get("model", settings["model"])), "training_defaults", {}))
    settings.update({k: v for k, v in given.items()})
    if "variant" not in given and settings["model"] != RECIPES[recipe]["model"]:
        # Another model than the recipe's: its own default variant.
        from ir2net_tf.zoo import MODELS

        if settings["model"] in MODELS:
            settings["variant"] = MODELS[settings["model"]].default_variant
    settings["recipe"] = recipe
    from ir2net_tf.zoo import get_spec

    # One spelling per variant in the run's identity (config.json).
    settings["variant"] = get_spec(settings["model"]).parse_variant(settings["variant"])
    return settings
