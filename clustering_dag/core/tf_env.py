"""Import TensorFlow with Keras 2 (``tf_keras``), which TensorFlow Probability's layers need.

TensorFlow 2.16+ maps ``tf.keras`` to Keras 3; setting ``TF_USE_LEGACY_KERAS`` before the first
TensorFlow import keeps every part of the project on the same Keras.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402
import tf_keras as keras  # noqa: E402

tfd = tfp.distributions

__all__ = ["tf", "tfp", "tfd", "keras"]
