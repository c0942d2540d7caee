"""Loading a model to evaluate, export or inspect: a training run's
(``config.json`` and weights in its model directory, written by ``python -m
train``) or a zoo model's with an optional weights file.

The one place that turns a model directory back into a model: training's
``--mode evaluate``, ``python -m export`` and ``python -m zoo
show-restriction`` all call :func:`load_run`.
"""

import dataclasses
import os
from typing import Optional

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from ir2net_tf import data, zoo
from ir2net_tf.runs import artifacts

# config.json's keys that are zoo.build options (absent ones keep the zoo default).
BUILD_KEYS = ("variant", "num_classes", "pad_values", "binary_weights", "recovery", "padding", "binarizer")


@dataclasses.dataclass
class LoadedRun:
    """A training run's model with its weights loaded.

    Attributes:
        model: the Keras model (logits or softmax, as asked).
        config: the run's ``config.json``.
        weights: the weights file loaded.
        settings: the run's training settings (dataset, image size,
            augmentation, seed, ...); empty when the config has none.
    """

    model: object
    config: dict
    weights: str
    settings: dict
    model_dir: str = ""

    @property
    def options(self) -> dict:
        """The zoo.build options the model was built with."""
        return {key: self.config[key] for key in BUILD_KEYS if key in self.config}

    def dataset(self, data_dir: Optional[str] = None) -> data.Dataset:
        """The run's dataset, preprocessed as in training (its held-out split
        is what training evaluated on).

        Raises:
            ValueError: the config has no training settings, or the data
                cannot be loaded.
        """
        if not self.settings.get("dataset"):
            raise ValueError(
                "The run's config.json holds no training settings (key 'training'), so its dataset is unknown."
            )
        settings = self.settings
        return data.load(
            self.dataset_path(), image_size=settings["image_size"], data_dir=data_dir or settings.get("data_dir"),
            manual_dir=settings.get("manual_dir"), augment=settings.get("augment", "auto"),
            seed=settings.get("seed", 0), train_split=settings.get("train_split"),
            validation_split=settings.get("validation_split"),  # a smoke run's slice: what it validated on
        )

    def dataset_path(self) -> str:
        """The run's dataset; an image folder stored relative (by runs from
        before folders were stored absolute) is looked for from here and from
        the model directory's parents (where training ran, typically).

        Raises:
            ValueError: a relative folder found in none of them.
        """
        name = self.settings["dataset"]
        if name == "digits" or not data.is_folder(name) or os.path.isabs(os.path.expanduser(name)):
            return name
        places = [os.getcwd()]
        parent = self.model_dir
        while parent and os.path.dirname(parent) != parent:
            parent = os.path.dirname(parent)
            places.append(parent)
        for place in places:
            if os.path.isdir(os.path.join(place, name)):
                return os.path.join(place, name)
        raise ValueError(
            f"The run's image folder {name!r} is stored relative to the directory training ran in, and is found "
            f"neither from {os.getcwd()!r} nor from the model directory's parents. Run this command from the "
            f"directory training ran in, or set \"dataset\" in {os.path.join(self.model_dir, artifacts.CONFIG)} "
            "to the folder's absolute path."
        )


def read_config(model_dir: str) -> dict:
    """The run's ``config.json``.

    Raises:
        ValueError: no such directory, no config in it, or an unreadable one.
    """
    path = os.path.join(model_dir, artifacts.CONFIG)
    if not os.path.isdir(model_dir):
        raise ValueError(f"Model directory {model_dir!r} does not exist.")
    if not os.path.isfile(path):
        raise ValueError(
            f"{model_dir!r} has no {artifacts.CONFIG}: it is not a model directory written by "
            "`python -m train`. Train into it first, or give a zoo model name and a weights file instead."
        )
    try:
        config = artifacts.read_json(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read {path!r}: {error}.") from error
    if not isinstance(config, dict) or "model" not in config:
        raise ValueError(f"{path!r} names no model (key 'model').")
    return config


def run_weights(model_dir: str, config: dict) -> str:
    """The run's best weights, else its final weights: those of its last
    completed stage, else those of the epochs its final stage has finished."""
    names = {"best": artifacts.BEST_WEIGHTS, "final": artifacts.FINAL_WEIGHTS}
    names.update(config.get("weights") or {})
    final_stage = "1" if (config.get("training") or {}).get("stage") == "1" else "2"
    candidates = [names["best"], names["final"]] + [artifacts.stage_weights(final_stage, k) for k in ("best", "final")]
    for name in candidates:
        path = os.path.join(model_dir, name)
        if os.path.isfile(path):
            return path
    stage1 = [n for n in (artifacts.stage_weights("1", k) for k in ("best", "final"))
              if os.path.isfile(os.path.join(model_dir, n))]
    if stage1:  # stopped during stage 1 of --stage both: its epochs did finish
        raise ValueError(
            f"{model_dir!r} stopped during stage 1 (real-valued weights, binary activations): {stage1[0]} holds "
            f"that stage's weights, {names['best']} is written by stage 2, the binary model. Run the same "
            f"`python -m train` command to resume and finish stage 2, or pass --weights "
            f"{os.path.join(model_dir, stage1[0])} to use stage 1's weights anyway."
        )
    raise ValueError(
        f"{model_dir!r} holds no weights ({names['best']} or {names['final']}): the run has not "
        "finished an epoch yet. Train it further, or pass a weights file."
    )


def build_model(
    name: str,
    *,
    weights: Optional[str] = None,
    input_size: Optional[int] = None,
    logits: bool = False,
    **options,
):
    """A zoo model with ``weights`` loaded.

    Args:
        name: a zoo model name (``ir2net_tf.zoo.MODELS``).
        weights: a weights file, or None for random initialization.
        input_size: input height and width (the zoo default when None).
        logits: no final softmax.
        **options: zoo.build options; None leaves the zoo default (for
            ``variant``: the model's default head).

    Returns:
        The Keras model.

    Raises:
        ValueError: unknown name or option, or weights that do not fit (the
            message names the first layer that does not).
    """
    spec = zoo.get_spec(name)
    if weights is not None and not os.path.isfile(weights):
        raise ValueError(f"Weights file {weights!r} does not exist.")
    size = input_size or spec.input_size
    kwargs = {k: v for k, v in options.items() if v is not None or k == "variant"}
    return zoo.build(
        name, input_shape=(size, size, 3), classifier_activation=None if logits else "softmax", weights=weights,
        **kwargs,
    )


def load_run(model_dir: str, *, weights: Optional[str] = None, logits: bool = False) -> LoadedRun:
    """A training run's model with its best (else final) weights.

    Args:
        model_dir: the run's model directory.
        weights: another weights file to load instead.
        logits: no final softmax (the training runs' own form).

    Returns:
        The model, the config, the weights file and the training settings.

    Raises:
        ValueError: not a model directory, no weights, weights that do not fit.
    """
    model_dir = os.path.abspath(os.path.expanduser(model_dir))
    config = read_config(model_dir)
    weights = weights or run_weights(model_dir, config)
    shape = config.get("input_shape") or [None]
    options = {key: config[key] for key in BUILD_KEYS if key in config}
    model = build_model(config["model"], weights=weights, input_size=shape[0], logits=logits, **options)
    return LoadedRun(model=model, config=config, weights=weights, settings=dict(config.get("training") or {}),
                     model_dir=model_dir)
