"""Where examples come from, one module each: ``digits`` (scikit-learn's 8×8
digits), ``tfds`` (any tensorflow-datasets name; ``imagenet_manual``: the
files of a dataset tfds cannot download), ``folder`` (a folder of images).
Each builds a ``Dataset`` (``ir2net_tf.data.dataset``); ``ir2net_tf.data.load``
chooses one by the dataset's name."""
