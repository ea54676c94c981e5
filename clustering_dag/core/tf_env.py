"""Import TensorFlow with Keras 2 (``tf_keras``), which TensorFlow Probability's layers need.

TensorFlow 2.16+ maps ``tf.keras`` to Keras 3; setting ``TF_USE_LEGACY_KERAS`` before the first
TensorFlow import keeps every part of the project on the same Keras.

On a machine with no NVIDIA driver, TensorFlow's probing for CUDA prints an error and notices to
the process's stderr while it loads, before its logging can be configured; there, and only there,
that output is dropped for the duration of the import (a GPU machine shows everything).
"""

import contextlib
import glob
import os


def gpu_driver_present() -> bool:
    return os.path.exists("/proc/driver/nvidia") or bool(glob.glob("/dev/nvidia*"))


@contextlib.contextmanager
def _quiet_stderr(enabled: bool):
    if not enabled:
        yield
        return
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_NO_GPU = not gpu_driver_present()
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if _NO_GPU else "2")

with _quiet_stderr(_NO_GPU):
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras as keras

    tf.config.list_physical_devices("GPU")  # the CUDA probe happens here, once

tfd = tfp.distributions

__all__ = ["tf", "tfp", "tfd", "keras", "gpu_driver_present"]
