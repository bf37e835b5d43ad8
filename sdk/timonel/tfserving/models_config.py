"""``models.config``: TF Serving's text ``ModelServerConfig``, built and read with the real proto.

A model server started with ``--model_config_file`` serves the models listed here, each with a
version policy (latest N, all, or specific versions) and version labels (``stable``, ``canary``).
We check what TF Serving checks when it loads the file (``model_servers/server_core.cc``) and use
its error texts, so a file accepted here is accepted there and the local server reports the same
problems the real one would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from timonel.errors import SpecError
from timonel.tfserving._files import parse_config_text, read_config_text, write_config_text

#: The only platform TF Serving's stock build (and ``timonel serve``) loads.
TENSORFLOW_PLATFORM = "tensorflow"

# ModelType.TENSORFLOW: the deprecated ``model_type`` field still selects the TF platform.
_DEPRECATED_TENSORFLOW_MODEL_TYPE = 1

_LABEL = re.compile(r"^[A-Za-z0-9_]+$")
# tensorflow::io::ParseURI: a scheme is [a-zA-Z][0-9a-zA-Z.]* followed by "://".
_URI_SCHEME = re.compile(r"^[A-Za-z][0-9A-Za-z.]*://")

PolicyKind = Literal["latest", "all", "specific"]
#: The ``ModelServerConfig`` choice tensorflow_model_server cannot load (it has no loader for it).
CUSTOM_MODEL_CONFIG = "custom_model_config"


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions under a base path TF Serving loads (``model_version_policy``).

    TF Serving's default, when a config leaves the policy out, is the latest single version.
    """

    kind: PolicyKind = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind == "latest" and self.num_versions < 1:
            raise SpecError(
                f"model_version_policy.latest.num_versions is {self.num_versions}; "
                "it must be 1 or more (the number of newest versions to serve)",
                field="model_version_policy.latest.num_versions",
            )
        if self.kind == "specific" and not self.versions:
            raise SpecError(
                "model_version_policy.specific lists no versions; list at least one version "
                "number, or use latest",
                field="model_version_policy.specific.versions",
            )
        if self.kind != "specific" and self.versions:
            raise SpecError(
                f"versions {list(self.versions)} apply only to the specific policy, "
                f"not to {self.kind}",
                field="model_version_policy",
            )

    @classmethod
    def latest(cls, num_versions: int = 1) -> VersionPolicy:
        return cls("latest", num_versions=num_versions)

    @classmethod
    def all(cls) -> VersionPolicy:
        return cls("all")

    @classmethod
    def specific(cls, *versions: int) -> VersionPolicy:
        return cls("specific", versions=tuple(sorted(set(versions))))


@dataclass(frozen=True)
class ModelConfig:
    """One ``config { ... }`` entry of a ``model_config_list``."""

    name: str
    base_path: str
    platform: str = TENSORFLOW_PLATFORM
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise SpecError(
                "a model config has an empty name; give every model a name", field="name"
            )
        if not self.platform:
            raise SpecError(
                "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
                f"ModelServerConfig::model_platform, model name is {self.name}; "
                f'add model_platform: "{TENSORFLOW_PLATFORM}"',
                field="model_platform",
            )
        if not (self.base_path.startswith("/") or _URI_SCHEME.match(self.base_path)):
            raise SpecError(
                f"Expected model {self.name} to have an absolute path or URI; "
                f"got base_path()={self.base_path}; give an absolute folder or a gs://, s3:// URI",
                field="base_path",
            )

    def check_labels(self) -> None:
        """The label rules of TF Serving's documentation (``g3doc/serving_config.md``), checked
        where timonel writes a config. The server itself, like TF Serving's ``ServerCore``,
        checks only that a label's version is available, and takes any spelling."""
        for label, version in self.labels.items():
            if not _LABEL.match(label):
                raise SpecError(
                    f"version label {label!r} of model {self.name} is not made of letters, digits "
                    "and underscores, as TF Serving requires; rename it (e.g. stable, canary)",
                    field=f"version_labels.{label}",
                )
            if version < 0:
                raise SpecError(
                    f"version label {label!r} of model {self.name} points to version {version}; "
                    "point it to a version number that exists (0 or more)",
                    field=f"version_labels.{label}",
                )

    def to_proto(self) -> Any:
        """The ``tensorflow.serving.ModelConfig`` message."""
        from tensorflow_serving.config import model_server_config_pb2

        proto = model_server_config_pb2.ModelConfig(
            name=self.name, base_path=self.base_path, model_platform=self.platform
        )
        policy = proto.model_version_policy
        if self.version_policy.kind == "latest":
            policy.latest.num_versions = self.version_policy.num_versions
        elif self.version_policy.kind == "all":
            policy.all.SetInParent()
        else:
            policy.specific.versions.extend(self.version_policy.versions)
        for label in sorted(self.labels):
            proto.version_labels[label] = self.labels[label]
        return proto

    @classmethod
    def from_proto(cls, proto: Any) -> ModelConfig:
        choice = proto.model_version_policy.WhichOneof("policy_choice")
        if choice == "all":
            policy = VersionPolicy.all()
        elif choice == "specific":
            policy = VersionPolicy.specific(*proto.model_version_policy.specific.versions)
        elif choice == "latest":
            policy = VersionPolicy.latest(proto.model_version_policy.latest.num_versions)
        else:
            policy = VersionPolicy()
        platform = proto.model_platform
        if proto.model_type:  # server_core.cc GetPlatform, in its order and words
            if platform:
                raise SpecError(
                    "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                    f"ModelServerConfig::model_platform, model name is {proto.name}; "
                    f'keep only model_platform: "{TENSORFLOW_PLATFORM}"',
                    field="model_type",
                )
            if proto.model_type != _DEPRECATED_TENSORFLOW_MODEL_TYPE:
                raise SpecError(
                    f"ModelServerConfig::model_type choice {proto.model_type} not supported.; "
                    f'use model_platform: "{TENSORFLOW_PLATFORM}"',
                    field="model_type",
                )
            platform = TENSORFLOW_PLATFORM
        return cls(
            name=proto.name,
            base_path=proto.base_path,
            platform=platform,
            version_policy=policy,
            labels=dict(proto.version_labels),
        )


def render_models_config(models: Sequence[ModelConfig]) -> str:
    """The text of a ``models.config`` serving ``models`` (what ``--model_config_file`` reads)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    _check_unique(models)
    for model in models:
        model.check_labels()
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.extend(model.to_proto() for model in models)
    return str(text_format.MessageToString(config))


def parse_models_config(text: str, *, source: str = "models.config") -> list[ModelConfig]:
    """Read a text ``ModelServerConfig`` and check it as TF Serving does when it loads it.

    ``source`` names the file in error messages.
    """
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    parse_config_text(
        text, config, source=source, fix="fix the syntax (see TF Serving's serving_config.md)"
    )
    if config.WhichOneof("config") == CUSTOM_MODEL_CONFIG:
        raise SpecError(  # tensorflow_model_server's words (server.cc, LoadCustomModelConfig)
            f"ModelServer does not yet support custom model config. {source} holds a "
            "custom_model_config; list the models in model_config_list { config { ... } }",
            field=CUSTOM_MODEL_CONFIG,
        )
    models = [ModelConfig.from_proto(entry) for entry in config.model_config_list.config]
    _check_unique(models)
    return models


def read_models_config(path: str | Path) -> list[ModelConfig]:
    """Parse the ``models.config`` file at ``path``."""
    text, source = read_config_text(path, what="model config", flag="--model_config_file")
    return parse_models_config(text, source=source)


def write_models_config(path: str | Path, models: Sequence[ModelConfig]) -> Path:
    """Write ``models`` as a ``models.config`` file and return its path."""
    return write_config_text(path, render_models_config(models))


def _check_unique(models: Sequence[ModelConfig]) -> None:
    seen: set[str] = set()
    for model in models:
        if model.name in seen:
            raise SpecError(
                f"Illegal to list model {model.name} multiple times in config list; "
                "give each model one config entry",
                field="model_config_list.config.name",
            )
        seen.add(model.name)
