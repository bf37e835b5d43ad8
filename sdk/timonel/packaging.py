"""A SavedModel becomes a release: inspected, validated, warmed up, published once and for all.

``package`` is the whole job (what ``timonel package`` and the KFP component call):

1. validate the SavedModel as TF Serving will use it: it loads, it has the serving signature, and
   every input and output of that signature has a dtype TF Serving carries over REST and gRPC;
2. write its warmup file (TF Serving replays it while loading, so the first live request after a
   cold start does not pay for TensorFlow's lazy initialisation), from the user's example
   requests or synthesized from the signature, and replay it on the model now, because a warmup
   record that fails makes TF Serving fail the whole load;
3. publish it (``publish``) into ``<repo>/<model>/v<N>/`` with its manifest.

Publishing is safe on object stores, which have no atomic rename:

- a claim object (``.timonel-claim``) is created exclusively before any upload and carries the
  digest of the content; a publisher with other content is refused, one with the same content (a
  retry, or a twin running at the same time) goes on and writes the same bytes;
- files already uploaded with their full size are skipped, so a retry resumes;
- the manifest is created last, exclusively: until it exists readers ignore the release, and
  once it exists nothing is uploaded into it again.
So an interrupted publish leaves nothing visible and can be retried, a published version never
changes, and two publishers never mix their files.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timonel._version import __version__
from timonel.admission import check_name
from timonel.client import SignatureDef, TensorInfo
from timonel.errors import ModelError, ReleaseError, ServingError, SpecError
from timonel.layout import (
    CLAIM_NAME,
    MANIFEST_NAME,
    join,
    model_uri,
    parse_release_dirname,
    release_dirname,
)
from timonel.manifest import FileEntry, Manifest, parse_manifest
from timonel.storage import (
    DEFAULT_WORKERS,
    ProgressFn,
    Release,
    Storage,
    normalize_uri,
    open_storage,
    parallel_map,
    read_manifest,
    sha256_file,
    split_uri,
)
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

DEFAULT_SIGNATURE = "serving_default"
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
#: How many next versions an automatically numbered publish tries when others take them first.
_AUTO_VERSION_ATTEMPTS = 5


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
    _check_name(name)
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
            _replay(loaded, requests, signature_name)
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


def publish(
    model_files: Mapping[str, Path],
    *,
    repo: str,
    name: str,
    version: int | None,
    signature_name: str,
    signatures: Mapping[str, SignatureDef],
    tensorflow_version: str,
    source: str,
    extra_files: Mapping[str, Path] | None = None,
    warmup_records: int = 0,
    storage_options: Mapping[str, Any] | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: ProgressFn | None = None,
    on_file_done: Any = None,
) -> Release:
    """Publish files as release ``<repo>/<name>/v<version>``: ``model_files`` (path in the
    SavedModel → local file) go into ``<version>/``, ``extra_files`` beside it.

    Idempotent for the same content; refuses other content for a version that is published or
    claimed. With ``version`` None it takes the next free version (resuming an interrupted
    publish of the same content). ``on_file_done(uri)`` is called after each upload.
    """
    _check_name(name)
    if version is not None and version < 0:
        raise SpecError(
            f"version {version} is negative; give a version of 0 or more", field="version"
        )
    storage = open_storage(repo, storage_options)
    model = model_uri(normalize_uri(repo), name)
    local = {**{f"{{v}}/{k}": p for k, p in model_files.items()}, **dict(extra_files or {})}
    digests = dict(
        zip(local, parallel_map(sha256_file, list(local.values()), workers), strict=True)
    )
    sizes = {key: path.stat().st_size for key, path in local.items()}

    def manifest_for(number: int) -> tuple[Manifest, dict[str, Path]]:
        files = {key.replace("{v}", str(number), 1): path for key, path in local.items()}
        entries = tuple(
            FileEntry(key.replace("{v}", str(number), 1), sizes[key], digests[key]) for key in local
        )
        manifest = Manifest(
            name=name,
            version=number,
            signature_name=signature_name,
            signatures=dict(signatures),
            tensorflow_version=tensorflow_version,
            files=entries,
            created=_now(),
            source=source,
            timonel_version=__version__,
            warmup_records=warmup_records,
        )
        return manifest, files

    if version is not None:
        manifest, files = manifest_for(version)
        return _publish_version(storage, model, manifest, files, workers, progress, on_file_done)

    candidate = _next_version(storage, model, lambda n: manifest_for(n)[0].content_sha256)
    for _ in range(_AUTO_VERSION_ATTEMPTS):
        manifest, files = manifest_for(candidate)
        try:
            return _publish_version(
                storage, model, manifest, files, workers, progress, on_file_done
            )
        except _Taken:
            candidate = max(candidate + 1, _next_version(storage, model, None))
    raise ReleaseError(
        f"other publishers took {_AUTO_VERSION_ATTEMPTS} versions of {name} in a row while this "
        "publish tried them; publish again, or give --version"
    )


def discard_unpublished(release: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
    """Delete a release folder whose publish never finished (it has no manifest).

    Needed only to publish *other* content under a version whose publish was interrupted; a
    published release is refused: releases never change.
    """
    storage = open_storage(release, storage_options)
    uri = normalize_uri(release)
    if storage.exists(join(uri, MANIFEST_NAME)):
        raise ReleaseError(
            f"{uri} is a published release and releases never change; publish a new version instead"
        )
    storage.remove(uri)


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


class _Taken(ReleaseError):
    """The version is published or claimed with other content (auto-numbering moves on)."""


def _publish_version(
    storage: Storage,
    model: str,
    manifest: Manifest,
    files: Mapping[str, Path],
    workers: int,
    progress: ProgressFn | None,
    on_file_done: Any,
) -> Release:
    uri = join(model, release_dirname(manifest.version))
    published = _published(storage, uri)
    if published is not None:
        if published.content_sha256 == manifest.content_sha256:
            return Release(uri, published)
        raise _Taken(
            f"version {manifest.version} of {manifest.name} is already published at {uri} with "
            f"other content (created {published.created} from {published.source}); releases "
            "never change: publish under a new version (leave out --version to take the next)"
        )
    claim = {
        "content_sha256": manifest.content_sha256,
        "created": manifest.created,
        "source": manifest.source,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    claim_uri = join(uri, CLAIM_NAME)
    if not storage.create_exclusive(claim_uri, json.dumps(claim).encode()):
        holder = _read_claim(storage, claim_uri)
        if holder.get("content_sha256") != manifest.content_sha256:
            raise _Taken(
                f"version {manifest.version} of {manifest.name} is being published, or its "
                f"publish was interrupted, with other content (claimed {holder.get('created')} "
                f"by {holder.get('host')}, from {holder.get('source')}); publish under a new "
                f"version, or discard the unfinished release with `timonel releases "
                f"{manifest.name} --repo ... --discard {manifest.version}`"
            )
    present = storage.list_files(uri)
    todo = [
        (path, join(uri, relpath))
        for relpath, path in sorted(files.items())
        if present.get(relpath) != path.stat().st_size
    ]
    storage.upload(todo, workers=workers, progress=progress, on_file_done=on_file_done)
    if not storage.create_exclusive(join(uri, MANIFEST_NAME), manifest.to_json().encode()):
        winner = _published(storage, uri)
        if winner is None or winner.content_sha256 != manifest.content_sha256:
            raise ReleaseError(
                f"{uri} was published by another publisher with other content while this one "
                "uploaded; publish under a new version"
            )
        return Release(uri, winner)
    return Release(uri, manifest)


def _published(storage: Storage, uri: str) -> Manifest | None:
    text = storage.read_bytes(join(uri, MANIFEST_NAME))
    return None if text is None else parse_manifest(text, source=uri)


def _read_claim(storage: Storage, uri: str) -> dict[str, Any]:
    text = storage.read_bytes(uri)
    try:
        data = json.loads(text or b"{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def _next_version(storage: Storage, model: str, digest_for: Any) -> int:
    """One past the highest release folder, or that folder itself when it is an unfinished
    publish of this same content (``digest_for(version)``), so a plain retry resumes it."""
    versions = [v for v in map(parse_release_dirname, storage.list_names(model)) if v is not None]
    if not versions:
        return 1
    top = max(versions)
    if digest_for is not None:
        uri = join(model, release_dirname(top))
        if _published(storage, uri) is None:
            claim = _read_claim(storage, join(uri, CLAIM_NAME))
            if claim.get("content_sha256") == digest_for(top):
                return top
    return top + 1


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


def _replay(loaded: Any, requests: Sequence[Any], signature_name: str) -> None:
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


def _check_name(name: str) -> None:
    """The model's name becomes its InferenceService's name (and TF Serving's model name), so it
    follows KServe's name rule from the start rather than failing at deploy time."""
    try:
        check_name(name, mode="Knative", field="name")
    except SpecError as exc:
        raise SpecError(
            f"model name {name!r} cannot name an InferenceService, which serves it under the same "
            f"name: {exc}",
            field="name",
        ) from exc


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
