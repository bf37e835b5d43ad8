"""Small real SavedModels for tests, written with TensorFlow on the CPU.

Imported by tests as ``import tfmodels``; TensorFlow is imported inside each function so that
tests which never build a model do not pay for it.
"""

from __future__ import annotations

from pathlib import Path


def write_half_plus_two(path: Path, *, slope: float = 0.5, offset: float = 2.0) -> Path:
    """TF Serving's classic test model: ``y = slope * x + offset`` over a float vector.

    Its ``serving_default`` signature takes ``x`` (float32, shape [-1]) and returns ``y``.
    Different ``offset`` values make versions tell themselves apart in responses.
    """
    import tensorflow as tf

    class HalfPlusTwo(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.slope = tf.Variable(slope, dtype=tf.float32)
            self.offset = tf.Variable(offset, dtype=tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": self.slope * x + self.offset}

    module = HalfPlusTwo()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def write_mlp(path: Path, *, features: int = 64, hidden: int = 128, classes: int = 10) -> Path:
    """A dense classifier (digits-sized by default): ``inputs`` [-1, features] → ``output_0``."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input(shape=(features,), name="inputs", dtype=tf.float32)
    hidden_layer = tf.keras.layers.Dense(hidden, activation="relu")(inputs)
    outputs = tf.keras.layers.Dense(classes, activation="softmax", name="probabilities")(
        hidden_layer
    )
    model = tf.keras.Model(inputs, outputs)
    model.export(str(path), verbose=False)
    return path
