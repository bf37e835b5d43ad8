"""TF Serving's test models, built with TensorFlow as its
``servables/tensorflow/testdata/saved_model_half_plus_two.py`` builds them (CPU, version
00000123): the TF1 half_plus_two (predict, classify and three regress signatures), its native
TF2 twin, and half_plus_three (the same graph with b = 3), plus the config files of that folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

VERSION = "00000123"


def _feature_spec() -> dict[str, object]:
    import tensorflow.compat.v1 as tf

    return {
        "x": tf.FixedLenFeature([1], dtype=tf.float32),
        "x2": tf.FixedLenFeature([1], dtype=tf.float32, default_value=[0.0]),
    }


def write_half_plus_two(base: Path, *, b: float = 2.0, tensorflow_testdata: bool = False) -> Path:
    """``saved_model_half_plus_two_cpu`` (``b`` 3.0: ``saved_model_half_plus_three``); with
    ``tensorflow_testdata``, TensorFlow's own ``cc/saved_model/testdata/half_plus_two``, which
    has a ``classify_x2_to_y3`` signature too."""
    import tensorflow.compat.v1 as tf

    export_dir = base / VERSION
    assets = base.parent / f"{base.name}_assets"
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "foo.txt").write_text("asset-file-contents")
    su = tf.saved_model
    with tf.Graph().as_default(), tf.Session() as sess:
        a = tf.Variable(0.5, name="a")
        bv = tf.Variable(b, name="b")
        c = tf.Variable(3.0, name="c")
        # shape None: upstream's checked-in model records tf_example:0 with unknown rank (its
        # half_plus_two_model_metadata.json), though today's script would write [None]
        serialized = tf.placeholder(tf.string, name="tf_example", shape=None)
        example = tf.parse_example(serialized, _feature_spec())
        for feature in example.values():
            feature.set_shape([None, 1])  # as parse_example infers from a [None] input
        x = tf.identity(example["x"], name="x")
        y = tf.identity(tf.add(tf.multiply(a, x), bv), name="y")
        y2 = tf.identity(tf.add(tf.multiply(a, x), c), name="y2")
        x2 = tf.identity(example["x2"], name="x2")
        a2, c2 = tf.Variable(0.5, name="a2"), tf.Variable(3.0, name="c2")
        y3 = tf.identity(tf.add(tf.multiply(a2, x2), c2), name="y3")
        asset_path = tf.constant(str(assets / "foo.txt"))
        tf.add_to_collection(tf.GraphKeys.ASSET_FILEPATHS, asset_path)
        filename = tf.Variable("foo.txt", name="filename_tensor", trainable=False, collections=[])
        info = su.utils.build_tensor_info
        build = su.signature_def_utils.build_signature_def
        consts = su.signature_constants

        def regress(inp: object, out: object) -> object:
            return build(
                {consts.REGRESS_INPUTS: info(inp)},
                {consts.REGRESS_OUTPUTS: info(out)},
                consts.REGRESS_METHOD_NAME,
            )

        signatures = {
            "regress_x_to_y": regress(serialized, y),
            "regress_x_to_y2": regress(serialized, y2),
            "regress_x2_to_y3": regress(x2, y3),
            "classify_x_to_y": build(
                {consts.CLASSIFY_INPUTS: info(serialized)},
                {consts.CLASSIFY_OUTPUT_SCORES: info(y)},
                consts.CLASSIFY_METHOD_NAME,
            ),
            consts.DEFAULT_SERVING_SIGNATURE_DEF_KEY: build(
                {"x": info(x)}, {"y": info(y)}, consts.PREDICT_METHOD_NAME
            ),
        }
        if tensorflow_testdata:
            signatures["classify_x2_to_y3"] = build(
                {consts.CLASSIFY_INPUTS: info(x2)},
                {consts.CLASSIFY_OUTPUT_SCORES: info(y3)},
                consts.CLASSIFY_METHOD_NAME,
            )
        sess.run(tf.global_variables_initializer())
        builder = su.builder.SavedModelBuilder(str(export_dir))
        builder.add_meta_graph_and_variables(
            sess,
            [su.tag_constants.SERVING],
            signature_def_map=signatures,
            assets_collection=tf.get_collection(tf.GraphKeys.ASSET_FILEPATHS),
            main_op=tf.group(filename.assign("foo.txt")),
        )
        builder.save()
    return base


def write_half_plus_two_tf2(base: Path) -> Path:
    """``saved_model_half_plus_two_tf2_cpu``: native TF2 signatures, every one of which says
    ``tensorflow/serving/predict``."""
    import tensorflow as tf

    v1 = tf.compat.v1

    class HalfPlusTwoModel(tf.Module):
        def __init__(self) -> None:
            self.a = tf.Variable(0.5, name="a")
            self.b = tf.Variable(2.0, name="b")
            self.c = tf.Variable(3.0, name="c")

        def compute(self, x: tf.Tensor, inc: tf.Variable) -> tf.Tensor:
            return tf.add(tf.multiply(self.a, x), inc)

        @tf.function(input_signature=[tf.TensorSpec(shape=[1], dtype=tf.float32)])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": self.compute(x, self.b)}

        @tf.function(input_signature=[tf.TensorSpec([None], dtype=tf.string, name="inputs")])
        def regress_xy(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
            x = v1.parse_example(serialized, _feature_spec())["x"]
            return {"outputs": self.compute(x, self.b)}

        @tf.function(input_signature=[tf.TensorSpec([None], dtype=tf.string, name="inputs")])
        def regress_xy2(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
            x = v1.parse_example(serialized, _feature_spec())["x"]
            return {"outputs": self.compute(x, self.c)}

        @tf.function(input_signature=[tf.TensorSpec([None], dtype=tf.string, name="inputs")])
        def classify_xy(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
            x = v1.parse_example(serialized, _feature_spec())["x"]
            return {"scores": self.compute(x, self.b)}

    model = HalfPlusTwoModel()
    tf.saved_model.save(
        model,
        str(base / VERSION),
        signatures={
            "regress_x_to_y": model.regress_xy,
            "regress_x_to_y2": model.regress_xy2,
            "classify_x_to_y": model.classify_xy,
            "serving_default": model.predict,
        },
    )
    return base


def write_counter(base: Path) -> Path:
    """``saved_model_counter``, as ``testdata/export_counter.py`` exports it: a counter variable
    read, incremented, incremented by ``delta`` and reset by four predict signatures."""
    import tensorflow.compat.v1 as tf

    su = tf.saved_model
    with tf.Graph().as_default(), tf.Session() as sess:
        # a reference variable, as TF1 made it when upstream exported its model: the signature
        # outputs are the counter's value, not a resource handle
        counter = tf.Variable(0.0, dtype=tf.float32, name="counter", use_resource=False)
        with tf.name_scope("incr_counter_op"):
            incr_counter = counter.assign_add(1.0)
        delta = tf.placeholder(dtype=tf.float32, name="delta")
        with tf.name_scope("incr_counter_by_op"):
            incr_counter_by = counter.assign_add(delta)
        with tf.name_scope("reset_counter_op"):
            reset_counter = counter.assign(0.0)
        sess.run(tf.global_variables_initializer())

        def signature(inputs: dict[str, Any], output: Any) -> Any:
            return su.signature_def_utils.build_signature_def(
                inputs={key: su.utils.build_tensor_info(t) for key, t in inputs.items()},
                outputs={"output": su.utils.build_tensor_info(output)},
                method_name=su.signature_constants.PREDICT_METHOD_NAME,
            )

        builder = su.builder.SavedModelBuilder(str(base / VERSION))
        builder.add_meta_graph_and_variables(
            sess,
            [su.tag_constants.SERVING],
            signature_def_map={
                "get_counter": signature({}, counter),
                "incr_counter": signature({}, incr_counter),
                "incr_counter_by": signature({"delta": delta}, incr_counter_by),
                "reset_counter": signature({}, reset_counter),
            },
        )
        builder.save()
    return base


GOOD_MODEL_CONFIG = """model_config_list: {
  config: {
    name: "half_plus_two",
    base_path: "${TEST_HALF_PLUS_TWO_DIR}",
    model_platform: "tensorflow"
  },
  config: {
    name: "half_plus_three",
    base_path: "${TEST_HALF_PLUS_THREE_DIR}",
    model_platform: "tensorflow"
  }
}
"""
BAD_MODEL_CONFIG = "improperly formatted file\n"
MONITORING_CONFIG = """prometheus_config: {
  enable: true,
  path: "/monitoring/prometheus/metrics"
}
"""
