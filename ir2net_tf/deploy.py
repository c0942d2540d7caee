"""The stable import path of the LCE deployment functions: ``ir2net_tf.deploy``
re-exports, unchanged, what the one-job modules of ``ir2net_tf.export``
define, so code written against it (``deploy.convert``, ``deploy.op_census``,
``deploy.check_census``, ``deploy.parity``, ``deploy.zero_padding_hazards``,
...) keeps working. New code may import from those modules directly:

- ``export.convert``: the Keras side and the conversion (``convert``,
  ``zero_padding_hazards``, ``randomize_batch_norm``, ``float_twin``, ...);
- ``export.census``: the flatbuffer's op census and its check;
- ``export.interpreter``: LCE's interpreter (``FlatbufferRunner``);
- ``export.parity``: Keras against the flatbuffer, and its judgement;
- ``export.latency``: host latency;
- ``export.writing``: the output files;
- ``export.api``: all of it as one call, ``export_model``.

Importing this module imports TensorFlow (after ``ir2net_tf``, which selects
Keras 2).
"""

# export.convert first: it imports TensorFlow before Larq (complexity), the
# order in which Larq's own import finds its quantizers.
from ir2net_tf.export.convert import (
    IO_TYPES, TARGETS, GroupsAsConvolutions, all_layers, convert, convert_float, float_twin, grouped_as_convolutions,
    is_grouped_float_conv, randomize_batch_norm, zero_padding_hazards,
)
from ir2net_tf.nn.complexity import is_binary_conv, is_multibit_conv
from ir2net_tf.export.census import (
    BCONV_OP, BINARIZE_OPS, FLOAT_CONV_OPS, INT8_OPS, LCE_CUSTOM_OPS, check_census, keras_conv_counts, op_census,
    operators,
)
from ir2net_tf.export.errors import DeployError
from ir2net_tf.export.interpreter import (
    CLOSE_TOLERANCE, KERNELS, FlatbufferRunner, load_interpreter, run_flatbuffer, with_batch_size,
)
from ir2net_tf.export.latency import measure_latency
from ir2net_tf.export.parity import (
    DEFAULT_MIN_AGREEMENT, MAX_RELATIVE_DIFFERENCE, NEAR_TIE, RANDOM_WEIGHTS_MIN_AGREEMENT, agreement_failure,
    difference_failure, judge, output_difference, parity, random_inputs,
)
from ir2net_tf.export.writing import check_writable
from ir2net_tf._util.files import atomic_write

__all__ = [
    "BCONV_OP", "BINARIZE_OPS", "CLOSE_TOLERANCE", "DEFAULT_MIN_AGREEMENT", "FLOAT_CONV_OPS", "INT8_OPS", "IO_TYPES",
    "KERNELS", "LCE_CUSTOM_OPS", "MAX_RELATIVE_DIFFERENCE", "NEAR_TIE", "RANDOM_WEIGHTS_MIN_AGREEMENT", "TARGETS",
    "DeployError", "FlatbufferRunner", "GroupsAsConvolutions", "agreement_failure", "all_layers", "atomic_write",
    "check_census", "check_writable", "convert", "convert_float", "difference_failure", "float_twin",
    "grouped_as_convolutions", "is_binary_conv", "is_grouped_float_conv", "is_multibit_conv", "judge",
    "keras_conv_counts", "load_interpreter", "measure_latency", "op_census", "operators", "output_difference",
    "parity", "random_inputs", "randomize_batch_norm", "run_flatbuffer", "with_batch_size", "zero_padding_hazards",
]
