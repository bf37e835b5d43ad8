"""A SavedModel becomes a release: inspected, validated, warmed up, then published.

``package`` is the whole job (what ``timonel package`` and the KFP component call):

1. validate the SavedModel as TF Serving will use it: it loads, it has the serving signature, and
   every input and output of that signature has a dtype TF Serving carries over REST and gRPC;
2. write its warmup file (TF Serving replays it while loading, so the first live request after a
   cold start does not pay for TensorFlow's lazy initialisation), from the user's example
   requests or synthesized from the signature, and replay it on the model now, because a warmup
   record that fails makes TF Serving fail the whole load;
3. publish it (``timonel.releases.publish``) into ``<repo>/<model>/v<N>/`` with its manifest.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timonel.errors import ModelError, ServingError, SpecError
from timonel.releases.layout import (
    MANIFEST_NAME,
    join,
)
from timonel.releases.manifest import Manifest
from timonel.releases.publish import check_model_name, publish
from timonel.releases.storage import (
    DEFAULT_WORKERS,
    ProgressFn,
    Release,
    normalize_uri,
    open_storage,
    read_manifest,
    split_uri,
)
from timonel.signatures import DEFAULT_SIGNATURE, SignatureDef, TensorInfo
from timonel.tfserving import (
    WARMUP_RELPATH,
    BatchingParameters,
    ModelConfig,
    MonitoringConfig,
    format_batching_parameters,
    predict_requests_from_json,
    read_warmup,
    render_monitoring_config,
    synthesize_predict_requests,
    write_models_config,
    write_warmup,
)

#: Dtypes TF Serving converts to and from JSON (``util/json_tensor.cc``); gRPC carries them too.
SERVABLE_DTYPES = frozenset(
    {
        "DT_FLOAT",
        "DT_DOUBLE",
        "DT_INT8",
        "DT_INT16",
        "DT_INT32",
        "DT_INT64",
        "DT_UINT8",
        "DT_UINT32",
        "DT_UINT64",
        "DT_BOOL",
        "DT_STRING",
    }
)
#: Batch sizes of synthesized warmup requests when the signature leaves the batch open.
WARMUP_BATCH_SIZES = (1, 2, 4, 8)
#: Names of the TF Serving config files ``package`` can put beside the version folder.
BATCHING_FILE = "batching_parameters.txt"
MONITORING_FILE = "monitoring_config.txt"
MODELS_CONFIG_FILE = "models.config"
#: Where KServe's storage initializer puts the release: the base path of ``models.config``.
KSERVE_MODEL_DIR = "/mnt/models"


@dataclass(frozen=True)
class SavedModelInfo:
    """What a SavedModel offers TF Serving: its signatures, exporting TF version and size."""

    path: str
    signatures: Mapping[str, SignatureDef]
    tensorflow_version: str
    size_bytes: int


def inspect_saved_model(path: str | Path) -> SavedModelInfo:
    """Read a SavedModel's serving graph (tag ``serve``) without loading it."""
    from google.protobuf import text_format
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    folder = Path(path)
    binary, text = folder / "saved_model.pb", folder / "saved_model.pbtxt"
    proto = saved_model_pb2.SavedModel()
    try:
        if binary.is_file():
            proto.ParseFromString(binary.read_bytes())
        elif text.is_file():
            text_format.Parse(text.read_text(encoding="utf-8"), proto)
        else:
            raise ModelError(
                f"{folder} is not a SavedModel: it has no saved_model.pb; point at the folder "
                "that tf.saved_model.save or model.export wrote"
            )
    except (OSError, ValueError, text_format.ParseError) as exc:
        raise ModelError(f"{folder}/saved_model.pb cannot be read: {exc}") from exc
    graphs = [g for g in proto.meta_graphs if "serve" in g.meta_info_def.tags]
    if not graphs:
        tags = [list(g.meta_info_def.tags) for g in proto.meta_graphs]
        raise ModelError(
            f"{folder} has no graph tagged 'serve' (it has {tags}); TF Serving loads only that "
            "tag: export with tf.saved_model.save or model.export"
        )
    graph = graphs[0]

    def tensors(infos: Any) -> dict[str, TensorInfo]:
        out = {}
        for alias, info in infos.items():
            dtype = types_pb2.DataType.Name(info.dtype)
            if info.WhichOneof("encoding") != "name":
                dtype = f"composite ({info.WhichOneof('encoding')})"
            shape = (
                None
                if info.tensor_shape.unknown_rank
                else tuple(int(d.size) for d in info.tensor_shape.dim)
            )
            out[alias] = TensorInfo(dtype=dtype, shape=shape, name=info.name)
        return out

    signatures = {
        key: SignatureDef(
            inputs=tensors(sig.inputs), outputs=tensors(sig.outputs), method_name=sig.method_name
        )
        for key, sig in graph.signature_def.items()
        if not key.startswith("__")
    }
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return SavedModelInfo(
        path=str(folder),
        signatures=signatures,
        tensorflow_version=graph.meta_info_def.tensorflow_version or "unknown",
        size_bytes=size,
    )


def check_signature(info: SavedModelInfo, signature_name: str = DEFAULT_SIGNATURE) -> SignatureDef:
    """The signature TF Serving will call, refused when it is missing or has a dtype TF Serving
    cannot carry."""
    if not info.signatures:
        raise ModelError(
            f"{info.path} has no serving signature; export it with one, e.g. "
            "tf.saved_model.save(module, path, signatures={'serving_default': module.serve}) "
            "or keras_model.export(path)"
        )
    signature = info.signatures.get(signature_name)
    if signature is None:
        raise ModelError(
            f"{info.path} has no serving signature {signature_name!r}; it has "
            f"{sorted(info.signatures)}: pass one of those as the signature (--signature)"
        )
    for kind, tensors in (("input", signature.inputs), ("output", signature.outputs)):
        for alias, tensor in sorted(tensors.items()):
            if tensor.dtype not in SERVABLE_DTYPES:
                raise ModelError(
                    f"signature {signature_name!r} {kind} {alias!r} has dtype {tensor.dtype}, "
                    "which TF Serving cannot carry over REST; cast it in the serving function to "
                    "one of " + ", ".join(sorted(SERVABLE_DTYPES))
                )
    return signature


def load_saved_model(path: str | Path) -> Any:
    """Load with TensorFlow, as TF Serving will: a model that does not load is refused here."""
    import tensorflow as tf

    try:
        return tf.saved_model.load(str(path), tags=["serve"])
    except Exception as exc:  # TF raises many kinds; all mean "TF Serving could not load it"
        raise ModelError(
            f"{path} does not load in TensorFlow {tf.__version__}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}; export it again with this "
            "TensorFlow version, or serve it with the version that exported it"
        ) from exc


def export_saved_model(model: Any, path: str | Path, *, signatures: Any = None) -> Path:
    """Write a Keras model or a ``tf.Module`` as a SavedModel with a serving signature.

    Keras models use ``model.export`` (``serving_default`` from the model's inputs). A
    ``tf.Module`` needs ``signatures`` (as for ``tf.saved_model.save``) unless it has exactly one
    ``tf.function`` with an ``input_signature``.
    """
    import tensorflow as tf

    folder = Path(path)
    try:
        if isinstance(model, tf.keras.Model):
            model.export(str(folder), verbose=False)
        elif isinstance(model, tf.Module):
            tf.saved_model.save(model, str(folder), signatures=signatures)
        else:
            raise ModelError(
                f"cannot export a {type(model).__name__}: give a Keras model, a tf.Module or the "
                "path of a SavedModel"
            )
    except (ValueError, TypeError) as exc:
        raise ModelError(
            f"cannot export the {type(model).__name__} as a SavedModel: {exc}; give it a "
            "tf.function with an input_signature, or pass signatures"
        ) from exc
    return folder


def package(
    model: Any,
    *,
    name: str,
    repo: str,
    version: int | None = None,
    signature_name: str = DEFAULT_SIGNATURE,
    examples: str | Path | None = None,
    warmup: bool = True,
    batching: BatchingParameters | None = None,
    monitoring: MonitoringConfig | None = None,
    models_config: bool = False,
    source: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: ProgressFn | None = None,
) -> Release:
    """Validate a SavedModel (a path, a Keras model or a ``tf.Module``) and publish it as
    ``<repo>/<name>/v<version>`` (the next free version when ``version`` is None).

    ``examples`` is a JSON file of TF Serving REST predict bodies (``{"instances": ...}`` or
    ``{"inputs": ...}``, or a list of them), one warmup record each; without it the warmup is
    synthesized from the signature, or the SavedModel's own warmup file is kept.
    ``warmup=False`` publishes no warmup file. ``batching``, ``monitoring`` and
    ``models_config`` write TF Serving config files beside the version folder; the
    ``models.config`` serves the model under ``name`` from KServe's ``/mnt/models``.
    """
    check_model_name(name)
    with ExitStack() as stack:
        if isinstance(model, str | os.PathLike):
            folder = Path(model)
            origin = source or str(folder.resolve())
        else:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="timonel-")))
            folder = export_saved_model(model, scratch / "export")
            origin = source or f"exported {type(model).__module__}.{type(model).__qualname__}"
        if not folder.is_dir():
            raise ModelError(f"{folder} is not a folder; give the folder of a SavedModel")
        info = inspect_saved_model(folder)
        signature = check_signature(info, signature_name)
        loaded = load_saved_model(folder)

        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="timonel-")))
        model_files = {
            f.relative_to(folder).as_posix(): f for f in sorted(folder.rglob("*")) if f.is_file()
        }
        own_warmup = model_files.pop(WARMUP_RELPATH, None)
        records = 0
        if warmup:
            requests = _warmup_requests(
                name, signature_name, signature, examples=examples, existing=own_warmup
            )
            replay_warmup(loaded, requests, signature_name)
            records = write_warmup(scratch / "warmup", requests)
            model_files[WARMUP_RELPATH] = scratch / "warmup"
        extra_files = {}
        if batching is not None:
            (scratch / BATCHING_FILE).write_text(format_batching_parameters(batching))
            extra_files[BATCHING_FILE] = scratch / BATCHING_FILE
        if monitoring is not None:
            (scratch / MONITORING_FILE).write_text(render_monitoring_config(monitoring))
            extra_files[MONITORING_FILE] = scratch / MONITORING_FILE
        if models_config:
            served = ModelConfig(name=name, base_path=KSERVE_MODEL_DIR)
            write_models_config(scratch / MODELS_CONFIG_FILE, [served])
            extra_files[MODELS_CONFIG_FILE] = scratch / MODELS_CONFIG_FILE

        return publish(
            model_files,
            extra_files=extra_files,
            repo=repo,
            name=name,
            version=version,
            signature_name=signature_name,
            signatures=info.signatures,
            tensorflow_version=info.tensorflow_version,
            source=origin,
            warmup_records=records,
            storage_options=storage_options,
            workers=workers,
            progress=progress,
        )


def inspect_model(
    path_or_uri: str, *, storage_options: Mapping[str, Any] | None = None
) -> SavedModelInfo | Manifest:
    """What ``path_or_uri`` serves: a release's manifest, or a local SavedModel's signatures."""
    scheme, rest = split_uri(path_or_uri)
    storage = open_storage(path_or_uri, storage_options)
    uri = normalize_uri(path_or_uri)
    if storage.exists(join(uri, MANIFEST_NAME)):
        return read_manifest(uri, storage_options=storage_options)
    if scheme == "file":
        return inspect_saved_model(rest)
    with tempfile.TemporaryDirectory(prefix="timonel-inspect-") as scratch:
        files = storage.list_files(uri)
        if "saved_model.pb" not in files:
            raise ModelError(
                f"{uri} is neither a release (no {MANIFEST_NAME}) nor a SavedModel (no "
                "saved_model.pb); give a release URI such as <repo>/<model>/v1 or a SavedModel "
                "folder"
            )
        storage.download(join(uri, "saved_model.pb"), Path(scratch) / "saved_model.pb")
        info = inspect_saved_model(scratch)
        return SavedModelInfo(uri, info.signatures, info.tensorflow_version, sum(files.values()))


def _warmup_requests(
    name: str,
    signature_name: str,
    signature: SignatureDef,
    *,
    examples: str | Path | None,
    existing: Path | None,
) -> list[Any]:
    if examples is not None:
        path = Path(examples)
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SpecError(f"cannot read the examples file {path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise SpecError(
                f"the examples file {path} is not JSON ({exc}); give TF Serving REST predict "
                'bodies, e.g. {"instances": [[1.0, 2.0]]}'
            ) from exc
        return predict_requests_from_json(
            body, signature.inputs, model_name=name, signature_name=signature_name
        )
    if existing is not None:
        try:
            return read_warmup(existing)
        except ServingError as exc:
            raise ModelError(
                f"the SavedModel's own warmup file would make TF Serving fail the load: {exc}; "
                "fix or delete it, or give examples"
            ) from exc
    open_batch = any(t.shape and t.shape[0] < 0 for t in signature.inputs.values())
    return synthesize_predict_requests(
        signature.inputs,
        model_name=name,
        signature_name=signature_name,
        batch_sizes=WARMUP_BATCH_SIZES if open_batch else (1,),
    )


def replay_warmup(loaded: Any, requests: Sequence[Any], signature_name: str) -> None:
    """Run each predict warmup record on the model, as TF Serving will while loading it."""
    import tensorflow as tf

    for index, request in enumerate(requests):
        log = request if request.DESCRIPTOR.name == "PredictionLog" else None
        predict = log.predict_log.request if log is not None else request
        if log is not None and log.WhichOneof("log_type") != "predict_log":
            continue
        key = predict.model_spec.signature_name or signature_name
        function = loaded.signatures.get(key)
        if function is None:
            raise ModelError(
                f"warmup record {index} calls signature {key!r}, which the model does not have; "
                "TF Serving would fail the load: fix the examples"
            )
        try:
            function(**{k: tf.constant(tf.make_ndarray(v)) for k, v in predict.inputs.items()})
        except (TypeError, ValueError, tf.errors.OpError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"warmup record {index} fails on the model, so TF Serving would fail the load: "
                f"{first}; give example inputs that the model accepts (--examples), or publish "
                "without warmup"
            ) from exc
