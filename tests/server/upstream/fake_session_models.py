"""The fake and mock sessions of TF Serving's ``classifier_test.cc`` and ``regressor_test.cc``,
as SavedModels built with TensorFlow at test time, so their cases run over the wire.

Upstream hands the classifier a ``FakeSession`` that reads its answers from the Examples (the
``class`` and ``score`` features, or ``output`` for the regressor) and ``MockSession``s that
return fixed tensors of the wrong shape or type, or fail. Here each is a graph whose tensors carry
the same names (``input:0``, ``output:0``, ``score:0``, ...) and compute the same values, under
SignatureDefs built as upstream's ``SetUp`` builds them. Method names are written only when the
method-name check is on, as upstream's fixture does; each variant is a model of its own, since
upstream's cases change the default signature or the session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"

#: (input tensor, {alias: output tensor}, method name) of one SignatureDef
SignatureSpec = tuple[str, dict[str, str], str]
Graph = Callable[[Any], None]


def _classifier_fake(serialized: Any) -> None:
    """``FakeSession`` of classifier_test.cc: classes and scores copied from the Examples."""
    import tensorflow.compat.v1 as tf

    parsed = tf.parse_example(
        serialized,
        {"class": tf.VarLenFeature(tf.string), "score": tf.VarLenFeature(tf.float32)},
    )
    classes = tf.sparse.to_dense(parsed["class"], default_value="")
    scores = tf.sparse.to_dense(parsed["score"])
    tf.identity(classes, name="output")
    tf.identity(scores, name="score")
    tf.identity(scores + 1, name="outputPlusOne")
    tf.zeros(tf.concat([tf.shape(scores), [10]], 0), name="ImproperlySizedScores")


def _regressor_fake(serialized: Any) -> None:
    """``FakeSession`` of regressor_test.cc: the ``output`` feature, as [batch] (``output``)
    or plus one as [batch, 1] (``outputPlusOne``)."""
    import tensorflow.compat.v1 as tf

    parsed = tf.parse_example(serialized, {"output": tf.VarLenFeature(tf.float32)})
    values = tf.sparse.to_dense(parsed["output"])
    tf.identity(values[:, 0], name="output")
    tf.identity(values[:, 0:1] + 1, name="outputPlusOne")
    tf.zeros(tf.stack([tf.shape(values)[0], 1, 10]), name="ImproperlySizedOutput")


def _mock(**tensors: tuple[str, list[int]]) -> Graph:
    """A ``MockSession`` returning fixed tensors: ``name=(dtype, shape)``."""

    def build(serialized: Any) -> None:
        import tensorflow.compat.v1 as tf

        for name, (dtype, shape) in tensors.items():
            value = "" if dtype == "string" else 0.0
            tf.fill(shape, tf.constant(value, dtype=dtype), name=name)

    return build


def _run_fails(outputs: tuple[str, ...]) -> Graph:
    """A ``MockSession`` whose every Run fails with "Run totally failed"."""

    def build(serialized: Any) -> None:
        import tensorflow.compat.v1 as tf

        never = tf.equal(tf.size(serialized), -1)
        with tf.control_dependencies([tf.Assert(never, ["Run totally failed"])]):
            for name in outputs:
                tf.zeros([1, 1], name=name)

    return build


def _classify(scores: str = "score:0", classes: str | None = "output:0") -> SignatureSpec:
    outputs = {"scores": scores}
    if classes:
        outputs["classes"] = classes
    return ("input:0", outputs, CLASSIFY)


def _regress(output: str) -> SignatureSpec:
    return ("input:0", {"outputs": output}, REGRESS)


#: classifier_test.cc's SetUp: the default signature and the three named ones
CLASSIFIER_SIGNATURES: dict[str, SignatureSpec] = {
    "serving_default": _classify(),
    "output_plus_one": _classify("outputPlusOne:0"),
    "invalid_regression_signature": _regress("outputPlusOne:0"),
    "ImproperlySizedScoresSignature": _classify("ImproperlySizedScores:0"),
}
#: regressor_test.cc's SetUp
REGRESSOR_SIGNATURES: dict[str, SignatureSpec] = {
    "serving_default": _regress("output:0"),
    "output_plus_one": _regress("outputPlusOne:0"),
    "invalid_classification_signature": ("input:0", {"classes": "outputPlusOne:0"}, CLASSIFY),
    "ImproperlySizedOutputSignature": _regress("ImproperlySizedOutput:0"),
}
EMPTY: SignatureSpec = ("", {}, "")
#: the mocks' cases call the default signature only, so their models carry only that one
MOCKED_CLASSIFIER = {"serving_default": CLASSIFIER_SIGNATURES["serving_default"]}
MOCKED_REGRESSOR = {"serving_default": REGRESSOR_SIGNATURES["serving_default"]}


def _with_default(signatures: dict[str, SignatureSpec], default: SignatureSpec) -> dict[str, Any]:
    return {**signatures, "serving_default": default}


def _method(signature: SignatureSpec, method: str) -> SignatureSpec:
    return (signature[0], signature[1], method)


_CLASS_MOCK = ("output", "score")
#: model name → (graph, signatures, whether the method names are written whatever the check)
CLASSIFIER_MODELS: dict[str, tuple[Graph, dict[str, SignatureSpec], bool]] = {
    "classifier": (_classifier_fake, CLASSIFIER_SIGNATURES, False),
    "classifier_classes_only": (
        _classifier_fake,
        _with_default(CLASSIFIER_SIGNATURES, ("input:0", {"classes": "output:0"}, CLASSIFY)),
        False,
    ),
    "classifier_scores_only": (
        _classifier_fake,
        _with_default(CLASSIFIER_SIGNATURES, _classify(classes=None)),
        False,
    ),
    "classifier_no_signature": (
        _classifier_fake,
        _with_default(CLASSIFIER_SIGNATURES, EMPTY),
        False,
    ),
    "classifier_run_fails": (_run_fails(_CLASS_MOCK), MOCKED_CLASSIFIER, False),
    "classifier_classes_batch": (
        _mock(output=("string", [1, 2]), score=("float32", [2, 2])),
        MOCKED_CLASSIFIER,
        False,
    ),
    "classifier_classes_type": (
        _mock(output=("float32", [2, 2]), score=("float32", [2, 2])),
        MOCKED_CLASSIFIER,
        False,
    ),
    "classifier_scores_batch": (
        _mock(output=("string", [2, 2]), score=("float32", [1, 2])),
        MOCKED_CLASSIFIER,
        False,
    ),
    "classifier_scores_type": (
        _mock(output=("string", [2, 2]), score=("string", [2, 2])),
        MOCKED_CLASSIFIER,
        False,
    ),
    "classifier_mismatched_classes": (
        _mock(output=("string", [2, 2]), score=("float32", [2, 3])),
        MOCKED_CLASSIFIER,
        False,
    ),
    "classifier_method_classify": (
        _classifier_fake,
        _with_default(CLASSIFIER_SIGNATURES, _classify()),
        True,
    ),
    "classifier_method_unsupported": (
        _classifier_fake,
        _with_default(CLASSIFIER_SIGNATURES, _method(_classify(), "not/supported/method")),
        True,
    ),
    "classifier_method_empty": (
        _classifier_fake,
        _with_default(CLASSIFIER_SIGNATURES, _method(_classify(), "")),
        True,
    ),
}
REGRESSOR_MODELS: dict[str, tuple[Graph, dict[str, SignatureSpec], bool]] = {
    "regressor": (_regressor_fake, REGRESSOR_SIGNATURES, False),
    "regressor_no_signature": (
        _regressor_fake,
        _with_default(REGRESSOR_SIGNATURES, EMPTY),
        False,
    ),
    "regressor_run_fails": (_run_fails(("output",)), MOCKED_REGRESSOR, False),
    "regressor_output_size": (_mock(output=("float32", [2])), MOCKED_REGRESSOR, False),
    "regressor_output_type": (_mock(output=("string", [1])), MOCKED_REGRESSOR, False),
    "regressor_method_regress": (
        _regressor_fake,
        _with_default(REGRESSOR_SIGNATURES, _regress("output:0")),
        True,
    ),
    "regressor_method_unsupported": (
        _regressor_fake,
        _with_default(REGRESSOR_SIGNATURES, _method(_regress("output:0"), "not/supported/method")),
        True,
    ),
    "regressor_method_empty": (
        _regressor_fake,
        _with_default(REGRESSOR_SIGNATURES, _method(_regress("output:0"), "")),
        True,
    ),
}


def write_model(
    export_dir: Path,
    graph: Graph,
    signatures: dict[str, SignatureSpec],
    *,
    method_names: bool,
) -> Path:
    """One variant as a TF1 SavedModel at ``export_dir``: ``graph`` built on the ``input``
    placeholder of serialized Examples, ``signatures`` over its tensors, with their method names
    only when ``method_names``."""
    import tensorflow.compat.v1 as tf
    from tensorflow.core.protobuf import meta_graph_pb2

    with tf.Graph().as_default() as g, tf.Session() as sess:
        serialized = tf.placeholder(tf.string, shape=[None], name="input")
        graph(serialized)
        signature_map = {}
        for key, (feed, outputs, method) in signatures.items():
            signature = meta_graph_pb2.SignatureDef()
            if feed:
                signature.inputs["inputs"].CopyFrom(  # kClassifyInputs, kRegressInputs
                    tf.saved_model.utils.build_tensor_info(g.get_tensor_by_name(feed))
                )
            for alias, name in outputs.items():
                signature.outputs[alias].CopyFrom(
                    tf.saved_model.utils.build_tensor_info(g.get_tensor_by_name(name))
                )
            if method_names and method:
                signature.method_name = method
            signature_map[key] = signature
        builder = tf.saved_model.builder.SavedModelBuilder(str(export_dir))
        builder.add_meta_graph_and_variables(
            sess, [tf.saved_model.tag_constants.SERVING], signature_def_map=signature_map
        )
        builder.save()
    return export_dir
