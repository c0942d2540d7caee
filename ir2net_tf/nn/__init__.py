"""Network blocks: our Keras layers (``layers``), the Larq quantizers of
IR-Net (``binarization``), the restriction mask (``restriction``), the
recovery heads (``recovery``) and cost counts (``complexity``). The lowest
layer: it imports nothing of ours but ``config``'s value sets."""

# TensorFlow and Larq complete before any block module starts: their first
# import registers these modules' layers (ir2net_tf._keras2), which must not
# find one of them half executed.
import tensorflow  # noqa: E402,F401
import larq  # noqa: E402,F401
