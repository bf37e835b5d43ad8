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


def write_spin(path: Path) -> Path:
    """A model whose call takes as long as asked: ``y = x + spins``, one loop step per spin.

    Its ``serving_default`` signature takes ``x`` (float32, shape [-1]) and ``spins`` (int64
    scalar) and returns ``y``. A few spins answer at once; ``10**12`` would run for days, so
    such a call ends only when a timeout cancels it (a loop checks for cancellation each step).
    """
    import tensorflow as tf

    class Spin(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.float32, name="x"),
                tf.TensorSpec([], tf.int64, name="spins"),
            ]
        )
        def serve(self, x: tf.Tensor, spins: tf.Tensor) -> dict[str, tf.Tensor]:
            _, y = tf.while_loop(
                lambda step, _: step < spins,
                lambda step, value: (step + 1, value + 1.0),
                (tf.constant(0, tf.int64), x),
            )
            return {"y": y}

    module = Spin()
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


def write_half_plus_two_tf1(path: Path, *, offset: float = 2.0) -> Path:
    """A TF1-style SavedModel (``SavedModelBuilder``) like TF Serving's half_plus_two testdata.

    Signatures:

    - ``serving_default`` (predict): ``x`` float [-1] → ``y = 0.5 * x + offset``.
    - ``tensorflow/serving/classify`` (classify): serialized tf.Examples with float feature ``x``
      → ``classes`` (``"low"``, ``"high"``) and ``scores`` (``1 - y/10``, ``y/10``).
    - ``tensorflow/serving/regress`` (regress): the same Examples → ``outputs`` = y, [-1, 1].
    - ``text`` (predict): ``text`` string [-1] → ``length`` int32 and ``echo_bytes`` (the
      same strings; the ``_bytes`` suffix makes the REST API answer them as ``{"b64": ...}``).
    """
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        slope = v1.Variable(0.5, name="slope")
        bias = v1.Variable(offset, name="offset")
        x = v1.placeholder(tf.float32, [None], name="x")
        y = tf.add(tf.multiply(slope, x), bias, name="y")
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        parsed = v1.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})
        y_examples = tf.add(tf.multiply(slope, parsed["x"]), bias, name="y_examples")
        scores = tf.concat([1.0 - y_examples / 10.0, y_examples / 10.0], axis=1, name="scores")
        classes = tf.tile(
            tf.constant([["low", "high"]]), [tf.shape(serialized)[0], 1], name="classes"
        )
        text = v1.placeholder(tf.string, [None], name="text")
        length = tf.strings.length(text, name="length")
        echo = tf.identity(text, name="echo")
        sig = v1.saved_model.signature_def_utils
        signatures = {
            "serving_default": sig.predict_signature_def({"x": x}, {"y": y}),
            "tensorflow/serving/classify": sig.classification_signature_def(
                serialized, classes, scores
            ),
            "tensorflow/serving/regress": sig.regression_signature_def(serialized, y_examples),
            "text": sig.predict_signature_def(
                {"text": text}, {"length": length, "echo_bytes": echo}
            ),
        }
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(
                session, [v1.saved_model.tag_constants.SERVING], signature_def_map=signatures
            )
            builder.save()
    return path
