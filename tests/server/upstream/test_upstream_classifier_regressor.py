"""TensorFlow Serving's ``servables/tensorflow/classifier_test.cc`` and ``regressor_test.cc``, as
Classify and Regress calls to ``timonel serve``.

Upstream calls the classifier and ``RunClassify`` (the regressor and ``RunRegress``) directly,
with a fake session that reads its answers from the Examples and mock sessions that return
malformed tensors or fail; each case runs with the signature method-name check off and on. Here
the sessions are SavedModels built at test time (``fake_session_models``), one model per variant,
served by one server per setting of ``--enable_signature_method_name_check``; each case sends
upstream's request and expects upstream's result, or its code and the text it looks for. The
classifier and ``RunClassify`` take the same request to the same code, so each case is one call.

Every case is ported. Left out of them: the fixtures' ``RunOptions`` timeout (42 ms, which the
fake session checks it was given), a C++ caller's argument that no request over the wire sets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fake_session_models as fakes
import grpc
import pytest
from google.protobuf import text_format
from serverproc import ServerProcess, running
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=[False, True], ids=["method_check_off", "method_check_on"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    check: bool = request.param
    root = tmp_path_factory.mktemp("models")
    config = model_server_config_pb2.ModelServerConfig()
    for name, (graph, signatures, always) in {
        **fakes.CLASSIFIER_MODELS,
        **fakes.REGRESSOR_MODELS,
    }.items():
        fakes.write_model(root / name / "1", graph, signatures, method_names=check or always)
        config.model_config_list.config.add(
            name=name, base_path=str(root / name), model_platform="tensorflow"
        )
    path = root / "models.config"
    path.write_text(text_format.MessageToString(config))
    with running(
        tmp_path_factory.mktemp("serve"),
        f"--model_config_file={path}",
        f"--enable_signature_method_name_check={str(check).lower()}",
    ) as process:
        yield process


# ---- classifier_test.cc ----------------------------------------------------------------------


def class_example(*class_scores: tuple[str, float]) -> example_pb2.Example:
    """classifier_test.cc's ``example``: the ``class`` and ``score`` features."""
    example = example_pb2.Example()
    features = example.features.feature
    for label, score in class_scores:
        features["class"].bytes_list.value.append(label.encode())
        features["score"].float_list.value.append(score)
    return example


def send(
    server: ServerProcess,
    method: str,
    model: str,
    examples: list[example_pb2.Example] | None = None,
    *,
    signature: str = "",
    context: example_pb2.Example | None = None,
) -> tuple[grpc.StatusCode, str, Any]:
    """A Classify or Regress call: (code, message, result). The input is an example list, or a
    context and its examples, or (``examples`` None and no context) nothing."""
    request_class = (
        classification_pb2.ClassificationRequest
        if method == "Classify"
        else regression_pb2.RegressionRequest
    )
    request = request_class()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if context is not None:
        request.input.example_list_with_context.context.CopyFrom(context)
        request.input.example_list_with_context.examples.extend(examples or [])
    elif examples is not None:
        request.input.example_list.SetInParent()
        request.input.example_list.examples.extend(examples)
    with server.channel() as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return grpc.StatusCode.OK, "", getattr(stub, method)(request, timeout=60).result
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or "", None


def classify(
    server: ServerProcess, model: str, examples: list[example_pb2.Example] | None = None, **kw: Any
) -> tuple[grpc.StatusCode, str, Any]:
    return send(server, "Classify", model, examples, **kw)


def classification(text: str) -> classification_pb2.ClassificationResult:
    return text_format.Parse(text, classification_pb2.ClassificationResult())


TWO_EXAMPLES = [
    class_example(("dos", 2), ("uno", 1)),
    class_example(("cuatro", 4), ("tres", 3)),
]


def test_classifier_example_list(server: ServerProcess) -> None:
    assert classify(server, "classifier", TWO_EXAMPLES) == (
        grpc.StatusCode.OK,
        "",
        classification(
            "classifications { classes { label: 'dos' score: 2 } "
            "classes { label: 'uno' score: 1 } }"
            "classifications { classes { label: 'cuatro' score: 4 } "
            "classes { label: 'tres' score: 3 } }"
        ),
    )


def test_classifier_example_list_with_context(server: ServerProcess) -> None:
    empty = example_pb2.Example()
    context = class_example(("dos", 2), ("uno", 1))
    both = "classifications { classes { label: 'dos' score: 2 } classes { label: 'uno' score: 1 } }"
    assert classify(server, "classifier", [empty, empty], context=context) == (
        grpc.StatusCode.OK,
        "",
        classification(both + both),
    )


def test_classifier_example_list_with_context_duplicate_features(server: ServerProcess) -> None:
    context = class_example(("uno", 1), ("dos", 2))
    examples = [example_pb2.Example(), class_example(("tres", 3), ("cuatro", 4))]
    assert classify(server, "classifier", examples, context=context) == (
        grpc.StatusCode.OK,
        "",
        classification(
            "classifications { classes { label: 'uno' score: 1 } "
            "classes { label: 'dos' score: 2 } }"
            "classifications { classes { label: 'tres' score: 3 } "
            "classes { label: 'cuatro' score: 4 } }"
        ),
    )


def test_classifier_classes_only(server: ServerProcess) -> None:
    assert classify(server, "classifier_classes_only", TWO_EXAMPLES) == (
        grpc.StatusCode.OK,
        "",
        classification(
            "classifications { classes { label: 'dos' } classes { label: 'uno' } }"
            "classifications { classes { label: 'cuatro' } classes { label: 'tres' } }"
        ),
    )


def test_classifier_scores_only(server: ServerProcess) -> None:
    assert classify(server, "classifier_scores_only", TWO_EXAMPLES) == (
        grpc.StatusCode.OK,
        "",
        classification(
            "classifications { classes { score: 2 } classes { score: 1 } }"
            "classifications { classes { score: 4 } classes { score: 3 } }"
        ),
    )


def test_classifier_zero_scores_are_present(server: ServerProcess) -> None:
    example = class_example(("minus", -1), ("zero", 0), ("one", 1))
    code, _, result = classify(server, "classifier_scores_only", [example])
    assert code == grpc.StatusCode.OK
    assert len(result.classifications) == 1
    assert [c.score for c in result.classifications[0].classes] == pytest.approx([-1, 0, 1])


def test_classifier_valid_named_signature(server: ServerProcess) -> None:
    assert classify(server, "classifier", TWO_EXAMPLES, signature="output_plus_one") == (
        grpc.StatusCode.OK,
        "",
        classification(
            "classifications { classes { label: 'dos' score: 3 } "
            "classes { label: 'uno' score: 2 } }"
            "classifications { classes { label: 'cuatro' score: 5 } "
            "classes { label: 'tres' score: 4 } }"
        ),
    )


@pytest.mark.parametrize(
    ("model", "signature"),
    [
        ("classifier", "invalid_regression_signature"),  # InvalidNamedSignature
        ("classifier", "ImproperlySizedScoresSignature"),  # MalformedScores
        ("classifier_no_signature", ""),  # MissingClassificationSignature
    ],
)
def test_classifier_invalid_signatures(server: ServerProcess, model: str, signature: str) -> None:
    code, _, _ = classify(server, model, TWO_EXAMPLES[:1], signature=signature)
    assert code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("examples", "context"),
    [
        (None, None),  # EmptyInput
        ([], None),  # EmptyExampleList
        ([], class_example(("dos", 2))),  # EmptyExampleListWithContext
    ],
)
def test_classifier_empty_input(
    server: ServerProcess, examples: list[Any] | None, context: Any
) -> None:
    code, message, _ = classify(server, "classifier", examples, context=context)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Input is empty" in message


@pytest.mark.parametrize(
    ("model", "text"),
    [
        ("classifier_run_fails", "Run totally failed"),
        ("classifier_classes_batch", "batch size"),
        ("classifier_classes_type", "Expected classes Tensor of DT_STRING"),
        ("classifier_scores_batch", "batch size"),
        ("classifier_scores_type", "Expected scores Tensor of DT_FLOAT"),
        (
            "classifier_mismatched_classes",
            "Tensors class and score should match in dim_size(1). Got 2 vs. 3",
        ),
    ],
)
def test_classifier_session_failures(server: ServerProcess, model: str, text: str) -> None:
    examples = TWO_EXAMPLES if model != "classifier_run_fails" else TWO_EXAMPLES[:1]
    code, message, _ = classify(server, model, examples)
    assert code != grpc.StatusCode.OK
    assert text in message


def test_classifier_method_name_check(
    server: ServerProcess, request: pytest.FixtureRequest
) -> None:
    checked = request.node.callspec.params["server"]
    example = [class_example(("dos", 2), ("uno", 1))]
    assert classify(server, "classifier_method_classify", example)[0] == grpc.StatusCode.OK
    for model in ("classifier_method_unsupported", "classifier_method_empty"):
        assert (classify(server, model, example)[0] == grpc.StatusCode.OK) is not checked


# ---- regressor_test.cc -----------------------------------------------------------------------


def output_example(output: float) -> example_pb2.Example:
    """regressor_test.cc's ``example_with_output``."""
    example = example_pb2.Example()
    example.features.feature["output"].float_list.value.append(output)
    return example


def regress(
    server: ServerProcess, model: str, examples: list[example_pb2.Example] | None = None, **kw: Any
) -> tuple[grpc.StatusCode, str, Any]:
    return send(server, "Regress", model, examples, **kw)


def regression(text: str) -> regression_pb2.RegressionResult:
    return text_format.Parse(text, regression_pb2.RegressionResult())


def test_regressor_basic_example_list(server: ServerProcess) -> None:
    assert regress(server, "regressor", [output_example(2.0), output_example(3.0)]) == (
        grpc.StatusCode.OK,
        "",
        regression("regressions { value: 2.0 } regressions { value: 3.0 }"),
    )


def test_regressor_basic_example_list_with_context(server: ServerProcess) -> None:
    empty = example_pb2.Example()
    assert regress(server, "regressor", [empty, empty], context=output_example(3.0)) == (
        grpc.StatusCode.OK,
        "",
        regression("regressions { value: 3.0 } regressions { value: 3.0 }"),
    )


def test_regressor_valid_named_signature(server: ServerProcess) -> None:
    examples = [output_example(2.0), output_example(3.0)]
    assert regress(server, "regressor", examples, signature="output_plus_one") == (
        grpc.StatusCode.OK,
        "",
        regression("regressions { value: 3.0 } regressions { value: 4.0 }"),
    )


@pytest.mark.parametrize(
    ("model", "signature", "example"),
    [
        ("regressor", "invalid_classification_signature", output_example(2.0)),
        ("regressor", "ImproperlySizedOutputSignature", output_example(2.0)),  # MalformedOutputs
        # MissingRegressionSignature: an Example with a "class" feature only
        (
            "regressor_no_signature",
            "",
            example_pb2.Example(
                features={"feature": {"class": {"bytes_list": {"value": [b"uno"]}}}}
            ),
        ),
    ],
)
def test_regressor_invalid_signatures(
    server: ServerProcess, model: str, signature: str, example: example_pb2.Example
) -> None:
    code, _, _ = regress(server, model, [example, example], signature=signature)
    assert code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("examples", "context"),
    [(None, None), ([], None), ([], output_example(3))],
    ids=["EmptyInput", "EmptyExampleList", "EmptyExampleListWithContext"],
)
def test_regressor_empty_input(
    server: ServerProcess, examples: list[Any] | None, context: Any
) -> None:
    code, message, _ = regress(server, "regressor", examples, context=context)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Input is empty" in message


@pytest.mark.parametrize(
    ("model", "text"),
    [
        ("regressor_run_fails", "Run totally failed"),
        ("regressor_output_size", "output batch size"),  # UnexpectedOutputTensorSize
        ("regressor_output_type", "Expected output Tensor of DT_FLOAT"),
    ],
)
def test_regressor_session_failures(server: ServerProcess, model: str, text: str) -> None:
    code, message, _ = regress(server, model, [output_example(2.0)])
    assert code != grpc.StatusCode.OK
    assert text in message


def test_regressor_method_name_check(server: ServerProcess, request: pytest.FixtureRequest) -> None:
    checked = request.node.callspec.params["server"]
    example = [output_example(2.0)]
    assert regress(server, "regressor_method_regress", example)[0] == grpc.StatusCode.OK
    for model in ("regressor_method_unsupported", "regressor_method_empty"):
        assert (regress(server, model, example)[0] == grpc.StatusCode.OK) is not checked
