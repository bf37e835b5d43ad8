"""One loaded version of a SavedModel, called the way TF Serving calls it.

TF Serving loads a SavedModel into a TensorFlow Session and runs signatures by the tensor names of
their SignatureDefs. This module does the same through ``tf.compat.v1``: TF1 and TF2 SavedModels
both load, classify/regress signatures keep their method names, the metadata endpoint can return
the SignatureDefs unchanged. Sessions are thread-safe, so calls run in parallel threads.

Each call goes straight to ``TF_SessionRun`` with cached feed/fetch endpoints
(``BaseSession._call_tf_sessionrun``, the step ``Session.run`` ends in): ``Session.run`` and
``make_callable`` with feeds re-validate and re-convert every feed in Python, which costs more than
running a small model. This leans on TF's private session API, pinned with tensorflow 2.21.

Validation and error texts follow ``servables/tensorflow/{predict,classifier,regressor}_util.cc``.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from timonel.errors import ServingError
from timonel.signatures import DEFAULT_SIGNATURE

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
_INIT_OP_SIGNATURE = "__saved_model_init_op"


@dataclass(frozen=True)
class TensorInfo:
    """One signature input or output: graph tensor name, TF dtype name, declared shape."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None


@dataclass(frozen=True)
class Signature:
    key: str
    method_name: str
    inputs: Mapping[str, TensorInfo]
    outputs: Mapping[str, TensorInfo]
    defaults: Mapping[str, np.ndarray]
    #: the SignatureDef as TF Serving's messages quote it (``DebugString``)
    text: str = ""

    @property
    def input_dtypes(self) -> dict[str, str]:
        return {alias: info.dtype for alias, info in self.inputs.items()}


@dataclass(frozen=True)
class Call:
    """One session call that answers a request: feeds and fetches by graph tensor name."""

    feeds: dict[str, np.ndarray]
    fetches: tuple[str, ...]
    aliases: tuple[str, ...]


def _invalid(message: str) -> ServingError:
    return ServingError(message, code="INVALID_ARGUMENT")


class Servable:
    """A SavedModel version loaded into its own graph and session."""

    def __init__(
        self,
        name: str,
        version: int,
        path: str,
        session: Any,
        meta_graph: Any,
        *,
        check_method_name: bool = False,
    ) -> None:
        self.name = name
        #: ``--enable_signature_method_name_check``: off, as in TF Serving, a signature serves
        #: whichever API its inputs and outputs fit (native TF2 signatures all say predict)
        self.check_method_name = check_method_name
        self.version = version
        self.path = path
        self._session = session
        self.signature_defs = meta_graph.signature_def
        self.signatures = {
            key: _signature(key, sig)
            for key, sig in meta_graph.signature_def.items()
            if key != _INIT_OP_SIGNATURE
        }
        self._callables: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._inflight = 0
        #: the graph has ops whose run time no input bounds (loops, waits on queues, Python), so
        #: a call may take any time whatever the calls before it took
        self.may_run_long = _may_run_long(meta_graph.graph_def)

    def signature(self, key: str) -> Signature | None:
        return self.signatures.get(key or DEFAULT_SIGNATURE)

    # ---- calls ---------------------------------------------------------------------------

    def prepare_predict(
        self,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
    ) -> Call:
        """Check a predict request against its signature; the session call that answers it."""
        if self.check_method_name and signature.method_name not in (
            PREDICT_METHOD,
            CLASSIFY_METHOD,
            REGRESS_METHOD,
        ):
            raise ServingError(
                "Expected prediction signature method_name to be one of "
                f"{{{PREDICT_METHOD}, {CLASSIFY_METHOD}, {REGRESS_METHOD}}}. "
                f"Was: {signature.method_name}",
                code="INTERNAL",
            )
        feeds = check_inputs(signature, inputs)
        aliases = check_output_filter(signature, output_filter)
        return Call(feeds, tuple(signature.outputs[a].name for a in aliases), tuple(aliases))

    def prepare_examples(
        self, signature: Signature, examples: Sequence[bytes], method: str
    ) -> Call:
        """The session call of a classify or regress request on serialized tf.Examples."""
        feed, fetches, aliases = example_endpoints(signature, method, self.check_method_name)
        return Call({feed: np.array(list(examples), dtype=object)}, fetches, aliases)

    def run(
        self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str], *, timeout_ms: int = 0
    ) -> list[np.ndarray]:
        """One session call: feeds and fetches by graph tensor name. Blocks; thread-safe.

        Arrays must already have the feeds' dtypes (``check_inputs`` and the codec see to it):
        they go to ``TF_SessionRun`` as they are. The call runs its ops in the calling thread,
        which saves the hand-offs to the session's inter-op pool, a cost comparable to a small
        model's whole call, but TensorFlow watches a timeout only for calls on that pool. So a
        call with a timeout to a graph that may run for any time (``may_run_long``) runs on the
        pool, where TensorFlow cancels it when the timeout passes (DEADLINE_EXCEEDED, as TF
        Serving's run timeout); any other call's timeout is checked when it returns, and one
        that ran past it is answered as TensorFlow answers a call it cancelled.
        """
        import tensorflow as tf
        from tensorflow.python.client import pywrap_tf_session

        feed_outputs, fetch_outputs = self._endpoints(tuple(feeds), tuple(fetches))
        on_pool = timeout_ms > 0 and self.may_run_long
        buffer = pywrap_tf_session.TF_NewBufferFromString(
            _run_options(timeout_ms if on_pool else 0)
        )
        start = time.perf_counter()
        try:
            values = list(
                self._session._call_tf_sessionrun(
                    buffer,
                    dict(zip(feed_outputs, feeds.values(), strict=True)),
                    fetch_outputs,
                    [],
                    None,
                )
            )
        except tf.errors.OpError as exc:
            raise ServingError(exc.message, code=_code_name(exc.error_code)) from exc
        except (ValueError, TypeError) as exc:  # arrays TF cannot turn into tensors
            raise _invalid(str(exc)) from exc
        finally:
            pywrap_tf_session.TF_DeleteBuffer(buffer)
            elapsed = time.perf_counter() - start
        if 0 < timeout_ms < elapsed * 1e3 and not on_pool:
            raise ServingError("Timed out waiting for notification", code="DEADLINE_EXCEEDED")
        return values

    def _endpoints(
        self, feeds: tuple[str, ...], fetches: tuple[str, ...]
    ) -> tuple[list[Any], list[Any]]:
        """The C API outputs (``TF_Output``) of feed and fetch tensors, cached per combination."""
        key = (feeds, fetches)
        endpoints = self._callables.get(key)
        if endpoints is None:
            graph = self._session.graph
            with self._lock:
                endpoints = (
                    [graph.get_tensor_by_name(name)._as_tf_output() for name in feeds],
                    [graph.get_tensor_by_name(name)._as_tf_output() for name in fetches],
                )
                self._callables[key] = endpoints
        return endpoints

    # ---- in-flight accounting, so an unload never closes a session under a request ----------

    def acquire(self) -> None:
        with self._idle:
            self._inflight += 1

    def release(self) -> None:
        with self._idle:
            self._inflight -= 1
            if not self._inflight:
                self._idle.notify_all()

    @property
    def inflight(self) -> int:
        """Requests holding this version now."""
        return self._inflight

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: not self._inflight, timeout)

    def close(self) -> None:
        self._callables.clear()
        self._session.close()


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def classification_results(
    outputs: Mapping[str, np.ndarray], batch: int
) -> list[list[tuple[str, float]]]:
    """``[(label, score), ...]`` per example from a classify signature's outputs, checked in the
    order and words of ``classifier.cc``'s ``PostProcessClassificationResult``."""
    classes, scores = outputs.get("classes"), outputs.get("scores")
    for kind, tensor, dtype in (("classes", classes, "DT_STRING"), ("scores", scores, "DT_FLOAT")):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise _invalid(
                f"Expected Tensor shape: [batch_size num_classes] but got {_shape(tensor)}"
            )
        if _tensor_dtype(tensor) != dtype:
            raise _invalid(f"Expected {kind} Tensor of {dtype}. Got: {_tensor_dtype(tensor)}")
        if tensor.shape[0] != batch:
            raise _invalid(f"Expected {kind} output batch size of {batch}. Got: {tensor.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise _invalid(
            "Tensors class and score should match in dim_size(1). "
            f"Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    reference = classes if classes is not None else scores
    count = 0 if reference is None else reference.shape[1]
    labels = (
        [[_text(v) for v in row] for row in classes.tolist()]
        if classes is not None
        else [[""] * count for _ in range(batch)]
    )
    values = scores.tolist() if scores is not None else [[0.0] * count for _ in range(batch)]
    return [list(zip(labels[i], values[i], strict=True)) for i in range(batch)]


def regression_results(outputs: Mapping[str, np.ndarray], batch: int) -> list[float]:
    """One value per example from a regress signature's ``outputs``, checked in the order and
    words of ``regressor.cc``'s ``PostProcessRegressionResult``."""
    values = outputs["outputs"]
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise _invalid(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
            f"but got {_shape(values)}"
        )
    if values.shape[0] != batch:
        raise _invalid(
            f"Input batch size did not match output batch size: {batch} vs. {values.shape[0]}"
        )
    if _tensor_dtype(values) != "DT_FLOAT":
        raise _invalid(f"Expected output Tensor of DT_FLOAT.  Got: {_tensor_dtype(values)}")
    return [float(v) for v in values.reshape(batch).tolist()]


def _shape(tensor: np.ndarray) -> str:
    """A shape as TensorFlow's ``TensorShape::DebugString`` writes it: ``[2,2,10]``."""
    return f"[{','.join(str(d) for d in tensor.shape)}]"


def _tensor_dtype(tensor: np.ndarray) -> str:
    """The ``DT_*`` name of an output array's TensorFlow type."""
    if tensor.dtype.kind in "OSU":
        return "DT_STRING"
    import tensorflow as tf

    return _dt_name(tf.as_dtype(tensor.dtype).as_datatype_enum)


def example_endpoints(
    signature: Signature, method: str, check_method_name: bool
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """A classify or regress signature checked as TF Serving checks it: its input tensor (the
    serialized Examples), and the tensors and aliases of the outputs the method reads. Its
    ``method_name`` counts only with ``check_method_name`` (``PreProcessClassification`` in
    ``classifier.cc``, ``PreProcessRegression`` in ``regressor.cc``, in their order and words)."""
    kind = "classification" if method == CLASSIFY_METHOD else "regression"
    if check_method_name and signature.method_name != method:
        raise _invalid(
            f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}"
        )
    if len(signature.inputs) != 1:
        raise _invalid("Expected one input Tensor.")
    if method == REGRESS_METHOD and len(signature.outputs) != 1:
        raise _invalid("Expected one output Tensor.")
    if method == CLASSIFY_METHOD and len(signature.outputs) not in (1, 2):
        raise _invalid(f"Expected one or two output Tensors, found {len(signature.outputs)}")
    info = signature.inputs.get("inputs")  # kClassifyInputs, kRegressInputs
    if info is None:
        raise _invalid(f"No {kind} inputs found in SignatureDef: {signature.text}")
    if info.dtype != "DT_STRING":
        raise _invalid("Expected input Tensor of DT_STRING.")
    if method == REGRESS_METHOD:
        output = signature.outputs.get("outputs")
        if output is None:
            raise _invalid(f"No regression outputs found in SignatureDef: {signature.text}")
        return info.name, (output.name,), ("outputs",)
    aliases = tuple(a for a in ("classes", "scores") if a in signature.outputs)
    if not aliases:
        raise _invalid(
            "Expected classification signature outputs to contain at least one of "
            f'"classes" or "scores". Signature was: {signature.text}'
        )
    return info.name, tuple(signature.outputs[a].name for a in aliases), aliases


def check_inputs(signature: Signature, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Feeds by graph tensor name, after TF Serving's checks of the request's input aliases."""
    sent, expected = set(inputs), set(signature.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
        raise _invalid(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}."
        )
    feeds = {}
    for alias in sorted(signature.inputs):
        info = signature.inputs[alias]
        if alias in inputs:
            value = inputs[alias]
        elif alias in signature.defaults:
            value = signature.defaults[alias]
        else:
            raise _invalid(
                f"Signature input alias: {alias}(feed name: {info.name}) not found in request "
                "and no default value provided. Inputs expected to be in the request "
                f"{{{','.join(sorted(sent))}}}, or default input alias set: "
                f"{','.join(sorted(signature.defaults))}"
            )
        _check_dtype(alias, info, value)
        feeds[info.name] = value
    if sent - expected:
        raise _invalid(
            "Inputs contains invalid name. Used request inputs: "
            f"{','.join(sorted(sent & expected))}, request input: {','.join(sorted(sent))}"
        )
    return feeds


def _check_dtype(alias: str, info: TensorInfo, value: np.ndarray) -> None:
    from timonel.codec.json_tensor import NUMPY_DTYPES

    want = NUMPY_DTYPES.get(info.dtype)
    if want is None:
        return
    have = value.dtype
    ok = have.kind in "OSU" if want.kind == "O" else have == want
    if not ok:
        raise _invalid(
            f"Expects arg[{alias}] to be {_short(info.dtype)} but {_short_numpy(have)} is provided"
        )


def _short(dtype: str) -> str:
    from timonel.codec.json_tensor import type_name

    return type_name(dtype)


def _short_numpy(dtype: np.dtype[Any]) -> str:
    if dtype.kind in "OSU":
        return "string"
    return {"float32": "float", "float64": "double"}.get(dtype.name, dtype.name)


def check_output_filter(signature: Signature, output_filter: Sequence[str]) -> list[str]:
    """Output aliases to fetch: the filter, checked, or every output of the signature."""
    seen: set[str] = set()
    for alias in output_filter:
        if alias not in signature.outputs:
            raise _invalid(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in "
                f"the set {{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in seen:
            raise _invalid(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return list(output_filter) or sorted(signature.outputs)


def _signature(key: str, sig: Any) -> Signature:
    import tensorflow as tf
    from google.protobuf import text_format

    def info(tensor: Any) -> TensorInfo:
        shape = (
            None
            if tensor.tensor_shape.unknown_rank
            else tuple(int(d.size) for d in tensor.tensor_shape.dim)
        )
        return TensorInfo(tensor.name, _dt_name(tensor.dtype), shape)

    defaults = {
        alias: tf.make_ndarray(proto) for alias, proto in getattr(sig, "defaults", {}).items()
    }
    return Signature(
        key=key,
        method_name=sig.method_name,
        inputs={alias: info(t) for alias, t in sig.inputs.items()},
        outputs={alias: info(t) for alias, t in sig.outputs.items()},
        defaults=defaults,
        text=text_format.MessageToString(sig),
    )


def _dt_name(dtype: int) -> str:
    from tensorflow.core.framework import types_pb2

    return str(types_pb2.DataType.Name(dtype))


#: Ops that may run for any time: loops (TF1 control flow and functional While) and ops that wait
#: on something outside the call or run Python.
_OPEN_ENDED_OPS = frozenset(
    {
        "While",
        "StatelessWhile",
        "_While",
        "Enter",
        "RefEnter",
        "Exit",
        "RefExit",
        "NextIteration",
        "RefNextIteration",
        "LoopCond",
        "PyFunc",
        "PyFuncStateless",
        "EagerPyFunc",
        "IteratorGetNext",
        "IteratorGetNextSync",
        "Unstage",
        "MapUnstage",
        "OrderedMapUnstage",
    }
)
_OPEN_ENDED_PREFIXES = ("Queue", "Barrier")


def _may_run_long(graph_def: Any) -> bool:
    """Whether the graph or a function of its library has an op of ``_OPEN_ENDED_OPS``."""
    nodes = [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]
    return any(
        node.op in _OPEN_ENDED_OPS or node.op.startswith(_OPEN_ENDED_PREFIXES) for node in nodes
    )


@functools.cache
def _run_options(timeout_ms: int) -> bytes:
    """Serialized ``RunOptions``: the call timeout, or (none) inline execution.

    Inline execution (``inter_op_thread_pool: -1``) runs the ops in the caller's thread, where no
    other thread watches the clock: TensorFlow only enforces ``timeout_in_ms`` for calls it runs
    on a pool, so a call with a timeout must not be inline.
    """
    from tensorflow.core.protobuf import config_pb2

    if timeout_ms <= 0:
        options = config_pb2.RunOptions(inter_op_thread_pool=-1)
    else:
        options = config_pb2.RunOptions(timeout_in_ms=timeout_ms)
    return bytes(options.SerializeToString())


def _code_name(code: int) -> str:
    from tensorflow.core.protobuf import error_codes_pb2

    try:
        return str(error_codes_pb2.Code.Name(code))
    except ValueError:
        return "UNKNOWN"


def load_servable(
    name: str,
    version: int,
    path: str,
    *,
    session_config: Any = None,
    tags: Sequence[str] = ("serve",),
    check_method_name: bool = False,
) -> Servable:
    """Load the MetaGraph tagged ``tags`` of the SavedModel at ``path`` into a fresh session.

    Failures become ``ServingError`` with TF's status code and message, which is what the
    version's status then reports.
    """
    import tensorflow as tf

    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=session_config)
    try:
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, list(tags), path)
    except tf.errors.OpError as exc:
        session.close()
        raise ServingError(exc.message, code=_code_name(exc.error_code)) from exc
    except (OSError, RuntimeError, ValueError) as exc:
        session.close()
        raise ServingError(
            f"Failed to load SavedModel at {path}: {exc}", code="INVALID_ARGUMENT"
        ) from exc
    graph.finalize()
    return Servable(name, version, path, session, meta_graph, check_method_name=check_method_name)
