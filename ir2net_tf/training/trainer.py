"""The IR² training step (docs/method.md, "Information restriction") as a Keras model.

``IR2Trainer`` wraps a zoo model built with logits (``classifier_activation=None``)
and trains it with ``fit``: the student sees x and the restricted x' (mask from
the same forward pass's F), loss = (L(x) + L(x')) / 2, both passes in training
mode so batch-norm statistics are updated by both; metrics are on x. Because
everything is one ``train_step`` it runs under any ``tf.distribute`` strategy
and with ``jit_compile``.
"""

from typing import Optional

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf

from ir2net_tf.models.common import with_feature_map
from ir2net_tf.nn.restriction import DEFAULT_LAMBDA, restrict, restriction_mask

from ir2net_tf.config import WEIGHT_DECAY_SCOPES  # noqa: E402  (the setting's values, declared with it)


def cross_entropy(labels, logits):
    """Per-example cross-entropy of integer labels and logits."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(tf.reshape(labels, [-1]), tf.int32), logits=tf.cast(logits, tf.float32)
    )


def distillation(teacher_probabilities, logits):
    """Per-example soft cross-entropy −Σ softmax(teacher) · log_softmax(student)."""
    log_student = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    return -tf.reduce_sum(tf.cast(teacher_probabilities, tf.float32) * log_student, axis=-1)


def decayed_variables(model: tf.keras.Model, scope: str):
    """The variables weight decay applies to: every trainable variable
    (``"all"``, as PyTorch's SGD does), or convolution kernels only
    (``"conv"``, ImageNet step 1); conv kernels are the model's only 4-D
    variables (standard, binary, depthwise and grouped alike)."""
    if scope not in WEIGHT_DECAY_SCOPES:
        raise ValueError(f"Unknown weight decay scope {scope!r}; choose one of {WEIGHT_DECAY_SCOPES}.")
    variables = model.trainable_variables
    return variables if scope == "all" else [v for v in variables if v.shape.rank == 4]


# Layers whose training-mode output is random: with one of them in the
# student a second pass differs from the first even on the same input.
_RANDOM_LAYERS = (
    tf.keras.layers.Dropout,
    tf.keras.layers.GaussianNoise,
    tf.keras.layers.GaussianDropout,
    tf.keras.layers.AlphaDropout,
)


def moving_statistics(model: tf.keras.Model):
    """(variable, momentum) of every batch-norm moving statistic of ``model``:
    what a training-mode pass updates as v ← m·v + (1 − m)·batch statistic."""
    return [
        (variable, float(layer.momentum))
        for layer in model.submodules
        if isinstance(layer, tf.keras.layers.BatchNormalization)
        for variable in (layer.moving_mean, layer.moving_variance)
    ]


def shortcut_is_exact(model: tf.keras.Model) -> bool:
    """Whether a second training-mode pass on the same input repeats the
    first exactly, apart from the batch-norm moving averages: no random
    layers, and no state other than batch-norm moving statistics."""
    if any(isinstance(layer, _RANDOM_LAYERS) for layer in model.submodules):
        return False
    moving = {id(variable) for variable, _ in moving_statistics(model)}
    return all(id(variable) in moving for variable in model.non_trainable_variables)


class IR2Trainer(tf.keras.Model):
    """Trains ``student`` with information restriction and, optionally,
    distillation.

    Besides the loss and accuracy metrics, the metric ``kept`` (with
    restriction on) is the fraction of input pixels the masks kept over the
    epoch: 1.0 means restriction erased nothing.

    Args:
        student: a zoo model that outputs logits and has the ``final_features``
            layer.
        restriction_lambda: λ of the mask; 0 turns restriction off (the plain
            step: one pass, L(x)).
        teacher: optional Keras model on the same input, run in inference mode
            on x only; then L is the distillation loss against it.
        teacher_outputs_logits: whether the teacher's outputs are logits (else
            probabilities, e.g. a softmax classifier).
        weight_decay: L2 coefficient added to the gradient (coupled, as in the
            reference: the optimizer sees wd · w in the gradient).
        weight_decay_scope: ``"all"`` or ``"conv"`` (conv kernels only).
        normalization: the mask's attention normalization (the paper's code:
            "height").
        restriction_shortcut: when the mask keeps every pixel of a replica's
            batch, x' = x and the second pass would repeat the first: the
            same loss, gradients and batch statistics. The step then skips it
            and applies the second batch-norm moving-average update in closed
            form (see ``docs/ir2_step.md``). Results equal the two-pass step's
            to float rounding. Ignored (two passes always) for a student
            whose training-mode passes are random (dropout) or carry state
            other than batch-norm moving statistics.
    """

    def __init__(
        self,
        student: tf.keras.Model,
        *,
        restriction_lambda: float = DEFAULT_LAMBDA,
        teacher: Optional[tf.keras.Model] = None,
        teacher_outputs_logits: bool = True,
        weight_decay: float = 0.0,
        weight_decay_scope: str = "all",
        normalization: str = "height",
        restriction_shortcut: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if restriction_lambda < 0:
            raise ValueError(f"restriction_lambda must be ≥ 0 (0 turns restriction off); got {restriction_lambda}.")
        self.student = student
        self.student_with_features = with_feature_map(student)
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
        self.teacher_outputs_logits = teacher_outputs_logits
        self.restriction_lambda = float(restriction_lambda)
        self.weight_decay = float(weight_decay)
        self.decayed = decayed_variables(student, weight_decay_scope) if weight_decay else []
        self.normalization = normalization
        self.restriction_shortcut = bool(restriction_shortcut) and shortcut_is_exact(student)
        self._moving = moving_statistics(student)
        classes = int(student.output.shape[-1])
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")
        self.accuracy = tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.top5 = tf.keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5") if classes > 5 else None
        self.kept = tf.keras.metrics.Mean(name="kept") if self.restriction_lambda > 0 else None
        # A metric's result() is already aggregated over every replica and
        # worker (its variables are summed on read), so each replica returns
        # the same figure: take it once. Keras' "auto" would sum the replicas'
        # copies (accuracy × replicas on a cluster, where validation returns
        # no "kept" and Keras keeps the steps' logs).
        self.distribute_reduction_method = "first"

    @property
    def metrics(self):
        return [m for m in (self.loss_tracker, self.accuracy, self.top5, self.kept) if m is not None]

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def _per_example_loss(self, labels, logits, targets):
        if targets is None:
            return cross_entropy(labels, logits)
        return distillation(targets, logits)

    def teacher_targets(self, images):
        """The teacher's class probabilities on x (inference mode), or None."""
        if self.teacher is None:
            return None
        outputs = tf.cast(self.teacher(images, training=False), tf.float32)
        probabilities = tf.nn.softmax(outputs) if self.teacher_outputs_logits else outputs
        return tf.stop_gradient(probabilities)

    def _pass(self, images, labels, targets):
        """(mean loss, logits, F) of one training-mode pass of the student."""
        logits, features = self.student_with_features(images, training=True)
        return tf.reduce_mean(self._per_example_loss(labels, logits, targets)), logits, features

    def _mask(self, features, images):
        return restriction_mask(features, images, self.restriction_lambda, self.normalization)

    def ir2_loss(self, images, labels, targets):
        """(loss, logits on x): the mean of the two passes' losses, or L(x)
        alone when restriction is off. Both passes run in training mode."""
        loss, logits, features = self._pass(images, labels, targets)
        if self.restriction_lambda > 0:
            restricted, _, _ = self._pass(restrict(images, self._mask(features, images)), labels, targets)
            loss = (loss + restricted) / 2.0
        return loss, logits

    def _gradients(self, loss, tape, scale):
        """d(loss · scale)/d(student weights), zeros for unconnected ones,
        through the loss-scale optimizer's scaling under mixed precision.

        ``loss`` was recorded by ``tape``; the factor enters as the output
        gradient, so nothing computed after the tape closed needs recording.
        """
        upstream = tf.cast(scale, loss.dtype)
        scaled = hasattr(self.optimizer, "get_scaled_loss")
        if scaled:
            upstream = self.optimizer.get_scaled_loss(upstream)
        grads = tape.gradient(loss, self.student.trainable_variables, output_gradients=upstream,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return self.optimizer.get_unscaled_gradients(grads) if scaled else grads

    def _repeat_moving_averages(self, before):
        """The second pass's batch-norm update without the pass: after one
        update from ``before`` (v₁ = m·v₀ + (1 − m)·b), a second with the same
        batch statistic b gives m·v₁ + (1 − m)·b = v₁ + m·(v₁ − v₀)."""
        for (variable, momentum), old in zip(self._moving, before):
            new = variable.read_value()
            # Keras applies the factor 1 − m as a float32 constant (also for
            # float64 variables): use the very m its update used.
            m = 1.0 - tf.cast(tf.constant(1.0 - momentum, tf.float32), new.dtype)
            variable.assign(new + m * (new - old))

    # The step has no tensor-dependent Python control flow; converting it (and
    # with it every Larq and Keras layer it calls) with AutoGraph only made
    # the first step trace about three times slower.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        images, labels = data[0], data[1]
        targets = self.teacher_targets(images)
        # Gradients are summed over replicas: scale so that they average.
        scale = 1.0 / tf.distribute.get_strategy().num_replicas_in_sync
        shortcut = self.restriction_lambda > 0 and self.restriction_shortcut
        before = [variable.read_value() for variable, _ in self._moving] if shortcut else None
        with tf.GradientTape() as tape:
            loss, logits, features = self._pass(images, labels, targets)
        grads = self._gradients(loss, tape, scale)
        if self.restriction_lambda > 0:
            mask = self._mask(features, images)
            self.kept.update_state(tf.reduce_mean(mask, axis=[1, 2, 3]))

            def second_pass():
                with tf.GradientTape() as restricted_tape:
                    restricted_loss, _, _ = self._pass(restrict(images, mask), labels, targets)
                return restricted_loss, self._gradients(restricted_loss, restricted_tape, scale)

            def repeat_first_pass():
                self._repeat_moving_averages(before)
                return loss, grads

            if shortcut:
                # Both branches update the same moving statistics (XLA's If
                # needs that); only the taken one runs.
                restricted, restricted_grads = tf.cond(tf.reduce_all(mask > 0), repeat_first_pass, second_pass)
            else:
                restricted, restricted_grads = second_pass()
            loss = (loss + restricted) / 2.0
            grads = [(a + b) / 2.0 for a, b in zip(grads, restricted_grads)]
        if self.decayed:
            # L2 added to the gradient (not decoupled): d(½·wd·‖w‖²)/dw = wd·w.
            decay = {id(v): self.weight_decay * scale * v for v in self.decayed}
            grads = [g + tf.cast(decay[id(v)], g.dtype) if id(v) in decay else g
                     for g, v in zip(grads, self.student.trainable_variables)]
        self.optimizer.apply_gradients(zip(grads, self.student.trainable_variables))
        logs = self._update_metrics(loss, labels, logits)
        if self.kept is not None:
            logs["kept"] = self.kept.result()
        return logs

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        images, labels = data[0], data[1]
        logits = self.student(images, training=False)
        if len(data) < 3:
            return self._update_metrics(tf.reduce_mean(cross_entropy(labels, logits)), labels, logits)
        # (image, label, weight): a cluster's workers each evaluating their own
        # files, padded to the same full batches with weight-0 examples
        # (data.Dataset.evaluation); a batch of padding only counts nowhere.
        weights = tf.cast(data[2], tf.float32)
        count = tf.reduce_sum(weights)
        loss = tf.math.divide_no_nan(tf.reduce_sum(cross_entropy(labels, logits) * weights), count)
        return self._update_metrics(loss, labels, logits, weights, tf.minimum(count, 1.0))

    def _update_metrics(self, loss, labels, logits, weights=None, loss_weight=None):
        """Updates and returns loss, accuracy and top-5 (the metrics on x);
        ``weights``: each example's (0: padding), ``loss_weight``: the batch's."""
        logits = tf.cast(logits, tf.float32)
        if weights is None:
            self.loss_tracker.update_state(loss)
            self.accuracy.update_state(labels, logits)
            if self.top5 is not None:
                self.top5.update_state(labels, logits)
        else:
            self.loss_tracker.update_state(loss, sample_weight=loss_weight)
            self.accuracy.update_state(labels, logits, sample_weight=weights)
            if self.top5 is not None:
                self.top5.update_state(labels, logits, sample_weight=weights)
        return {m.name: m.result() for m in (self.loss_tracker, self.accuracy, self.top5) if m is not None}


def cosine_schedule(learning_rate: float, total_steps: int):
    """Cosine decay from ``learning_rate`` to 0 over ``total_steps``."""
    return tf.keras.optimizers.schedules.CosineDecay(learning_rate, max(1, int(total_steps)), alpha=0.0)


from ir2net_tf.config import OPTIMIZERS  # noqa: E402  (the setting's values, declared with it)


def make_optimizer(name: str, learning_rate, momentum: float = 0.9):
    if name in ("sgd", "sgd_nesterov"):  # Nesterov: IR-Net's ImageNet recipe
        return tf.keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=name == "sgd_nesterov")
    if name == "adam":
        return tf.keras.optimizers.Adam(learning_rate)
    raise ValueError(f"Unknown optimizer {name!r}; choose one of {OPTIMIZERS}.")
