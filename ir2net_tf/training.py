"""The IR² training step (SPEC: "Training step") as a Keras model.

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
from ir2net_tf.restriction import DEFAULT_LAMBDA, restrict, restriction_mask

WEIGHT_DECAY_SCOPES = ("all", "conv")


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


class IR2Trainer(tf.keras.Model):
    """Trains ``student`` with information restriction and, optionally,
    distillation.

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
        normalization: the mask's attention normalization (SPEC: "height").
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
        classes = int(student.output.shape[-1])
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")
        self.accuracy = tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.top5 = tf.keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5") if classes > 5 else None

    @property
    def metrics(self):
        return [m for m in (self.loss_tracker, self.accuracy, self.top5) if m is not None]

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

    def ir2_loss(self, images, labels, targets):
        """(loss, logits on x): the mean of the two passes' losses, or L(x)
        alone when restriction is off. Both passes run in training mode."""
        logits, features = self.student_with_features(images, training=True)
        loss = tf.reduce_mean(self._per_example_loss(labels, logits, targets))
        if self.restriction_lambda > 0:
            mask = restriction_mask(features, images, self.restriction_lambda, self.normalization)
            restricted_logits, _ = self.student_with_features(restrict(images, mask), training=True)
            restricted = tf.reduce_mean(self._per_example_loss(labels, restricted_logits, targets))
            loss = (loss + restricted) / 2.0
        return loss, logits

    def _regularization(self):
        if not self.decayed:
            return 0.0
        # ½·wd·‖w‖² has gradient wd·w: L2 added to the gradient, not decoupled.
        return 0.5 * self.weight_decay * tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in self.decayed])

    # The step has no tensor-dependent Python control flow; converting it (and
    # with it every Larq and Keras layer it calls) with AutoGraph only made
    # the first step trace about three times slower.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        images, labels = data[0], data[1]
        targets = self.teacher_targets(images)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss, logits = self.ir2_loss(images, labels, targets)
            # Gradients are summed over replicas: scale so that they average.
            total = (loss + self._regularization()) / replicas
        self.optimizer.minimize(total, self.student.trainable_variables, tape=tape)
        return self._update_metrics(loss, labels, logits)

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        images, labels = data[0], data[1]
        logits = self.student(images, training=False)
        return self._update_metrics(tf.reduce_mean(cross_entropy(labels, logits)), labels, logits)

    def _update_metrics(self, loss, labels, logits):
        logits = tf.cast(logits, tf.float32)
        self.loss_tracker.update_state(loss)
        self.accuracy.update_state(labels, logits)
        if self.top5 is not None:
            self.top5.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}


def cosine_schedule(learning_rate: float, total_steps: int):
    """Cosine decay from ``learning_rate`` to 0 over ``total_steps``."""
    return tf.keras.optimizers.schedules.CosineDecay(learning_rate, max(1, int(total_steps)), alpha=0.0)


OPTIMIZERS = ("sgd", "sgd_nesterov", "adam")


def make_optimizer(name: str, learning_rate, momentum: float = 0.9):
    if name in ("sgd", "sgd_nesterov"):  # Nesterov: IR-Net's ImageNet recipe
        return tf.keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=name == "sgd_nesterov")
    if name == "adam":
        return tf.keras.optimizers.Adam(learning_rate)
    raise ValueError(f"Unknown optimizer {name!r}; choose one of {OPTIMIZERS}.")
