"""The flags ``timonel render``, ``deploy`` and ``canary`` share, turned into a ServingSpec.

The flag table (``OPTION_PATHS``) and the flags' wording live here, not in ``timonel.spec``:
a spec built from Python reports its attribute paths (``autoscaling.min_replicas``), and one
built from the command line reports the flag the user typed (``--min-replicas``). Every command
whose flags reach a ``SpecError`` words it the same way, through ``flags_named``.
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from timonel.errors import SpecError
from timonel.gke.catalog import choose_gpu
from timonel.releases.facts import ReleaseFacts, read_facts
from timonel.releases.layout import split_release_uri
from timonel.spec import ServingSpec

#: Flat option names (the ``timonel render`` flags) → the ServingSpec attribute each one sets.
OPTION_PATHS: dict[str, str] = {
    "name": "model.name",
    "storage_uri": "model.storage_uri",
    "runtime_version": "model.runtime_version",
    "protocol": "model.protocol",
    "tensorflow_version": "model.tensorflow_version",
    "namespace": "namespace",
    "mode": "mode",
    "cpu": "resources.cpu",
    "memory": "resources.memory",
    "gpu": "accelerator.type",
    "gpu_count": "accelerator.count",
    "spot": "accelerator.spot",
    "autopilot": "accelerator.autopilot",
    "gpu_sharing": "accelerator.sharing",
    "max_shared_clients": "accelerator.max_shared_clients",
    "mig_partition": "accelerator.mig_partition",
    "min_replicas": "autoscaling.min_replicas",
    "max_replicas": "autoscaling.max_replicas",
    "scale_metric": "autoscaling.scale_metric",
    "scale_target": "autoscaling.scale_target",
    "container_concurrency": "autoscaling.container_concurrency",
    "autoscaler_class": "autoscaling.autoscaler_class",
    "canary_percent": "canary.traffic_percent",
    "canary_name": "canary.name",
    "canary_storage_uri": "canary.storage_uri",
    "service_account": "service_account",
    "enable_batching": "tuning.batching",
    "batching_parameters_file": "tuning.batching_parameters_file",
    "rest_api_timeout_ms": "tuning.rest_api_timeout_ms",
    "gpu_memory_fraction": "tuning.gpu_memory_fraction",
    "tag_routing": "tag_routing",
    "predictor_name": "predictor_name",
}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def parse_size(text: str) -> int:
    """``1.5GB``, ``3Gi``, ``800M`` or plain bytes → bytes (``i`` means powers of 1024)."""
    match = _SIZE.match(text)
    if not match:
        raise SpecError(
            f"model size: {text!r} is not a size; write bytes or e.g. 800M, 1.5GB, 3Gi",
            field="model_size",
        )
    unit = (match.group(2) or "").lower().removesuffix("b")
    scale = 1024 ** ("kmgtp".index(unit[0]) + 1) if unit.endswith("i") else _SIZE_UNITS[unit]
    return int(float(match.group(1)) * scale)


def spec_from_options(
    options: dict[str, Any],
    *,
    base: dict[str, Any] | None = None,
    model_size: str | None = None,
    read_release: Callable[[str], ReleaseFacts] = read_facts,
    check_release: bool = False,
) -> tuple[ServingSpec, list[str]]:
    """A spec from flat options (None = not given) laid over ``base``, and notes on choices made.

    ``base`` is spec data as written in a spec file (``load_yaml``), so flags override what the
    file says before anything is defaulted.

    ``gpu="auto"`` picks the GPU from ``model_size`` or, without it, from the release manifest
    at the storage URI, read with ``read_release`` (``read_facts`` by default); that read
    also supplies the exporting TensorFlow version when none is given. The notes say which GPU
    was chosen and why. ``check_release`` reads the manifest of a release URI (``.../v<N>``) even
    without ``gpu="auto"``: the release must be published, and the runtime is checked against the
    TensorFlow that exported it (``deploy`` does this; ``render`` stays offline).
    """
    data = copy.deepcopy(base) if base is not None else {}
    if not isinstance(data, dict):
        raise SpecError("spec: expected a mapping of ServingSpec attributes", field="spec")
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(OPTION_PATHS))
    if unknown:
        raise SpecError(f"options: unknown option {unknown[0]!r}", field=unknown[0])
    notes: list[str] = []
    model: dict[str, Any] = data["model"] if isinstance(data.get("model"), dict) else {}
    storage_uri = given.get("storage_uri") or model.get("storage_uri")
    wants_size = given.get("gpu") == "auto" and model_size is None
    knows_tensorflow = "tensorflow_version" in given or "tensorflow_version" in model
    facts: ReleaseFacts | None = None
    if storage_uri and (
        wants_size or (check_release and not knows_tensorflow and split_release_uri(storage_uri))
    ):
        facts = read_release(storage_uri)
        if facts.tensorflow_version and not knows_tensorflow:
            given["tensorflow_version"] = facts.tensorflow_version
    if given.get("gpu") == "auto":
        if model_size is not None:
            size = parse_size(model_size)
        elif facts is not None:
            size = facts.size_bytes
        else:
            raise SpecError(
                "--gpu auto: needs the model's size; give --model-size or a --storage-uri "
                "that is a published release",
                field="gpu",
            )
        choice = choose_gpu(size)
        given["gpu"] = choice.type
        notes.append(choice.reason)
    if "accelerator" not in data and not given.get("gpu"):
        for option in ("gpu_count", "spot", "autopilot", "gpu_sharing", "mig_partition"):
            if given.get(option):
                flag = "--" + option.replace("_", "-")
                raise SpecError(
                    f"{flag}: describes the GPU; add --gpu TYPE (or --gpu auto)", field=option
                )
    for option, value in given.items():
        if value is False and option in ("spot", "autopilot", "enable_batching", "tag_routing"):
            continue
        part, _, attribute = OPTION_PATHS[option].rpartition(".")
        target = data.setdefault(part, {}) if part else data
        target[attribute] = value
    if "model" not in data or "name" not in data["model"]:
        raise SpecError("NAME: the InferenceService needs a name; give NAME or -f spec.yaml")
    if "storage_uri" not in data["model"]:
        raise SpecError("--storage-uri: the model needs a storage URI such as gs://b/m/v1")
    from_file = set() if base is None else set(OPTION_PATHS) - set(given)
    try:
        return ServingSpec(**data), notes
    except SpecError as exc:
        raise flag_error(exc, exclude=from_file) from None


@contextlib.contextmanager
def flags_named(flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """A ``SpecError`` raised inside names the command's flags, not the fields they set.

    ``flags`` maps each field a flag sets (the ``SpecError.field`` the SDK reports) to the flag;
    by default, the spec flags of ``OPTION_PATHS``.
    """
    try:
        yield
    except SpecError as exc:
        raise flag_error(exc, flags=flags) from exc


def flag_error(
    exc: SpecError, *, exclude: Collection[str] = (), flags: Mapping[str, str] | None = None
) -> SpecError:
    """The same error worded for the command line: each field a flag sets is named by that flag
    (``autoscaling.min_replicas`` → ``--min-replicas``), and an error about one field starts
    with its flag. ``flags`` maps fields to flags (default: ``OPTION_PATHS``, less the
    ``exclude``d options, which came from a spec file and keep the file's attribute names)."""
    if flags is None:
        flags = {
            path: "NAME" if option == "name" else "--" + option.replace("_", "-")
            for option, path in OPTION_PATHS.items()
            if option not in exclude
        }
    message = str(exc)
    field = exc.field or ""
    if field in flags and message.startswith(f"{field}:"):
        message = flags[field] + message[len(field) :]
    elif field in flags and not message.startswith(flags[field]):
        message = f"{flags[field]}: {message}"
    # Within the sentence only paths that cannot be ordinary words ("mode" can).
    for path in sorted((p for p in flags if "." in p or "_" in p), key=len, reverse=True):
        message = re.sub(rf"(?<![\w.\[-]){re.escape(path)}(?![\w\]])", flags[path], message)
    return exc if message == str(exc) else SpecError(message, field=exc.field)
