"""models.config: rendered with the real ModelServerConfig proto and checked as TF Serving does."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from timonel.errors import SpecError
from timonel.tfserving import (
    ModelConfig,
    VersionPolicy,
    parse_models_config,
    read_models_config,
    render_models_config,
    write_models_config,
)

FACTS_EXAMPLE = """
model_config_list {
  config {
    name: "m"  base_path: "/models/m"  model_platform: "tensorflow"
    model_version_policy { specific { versions: 42 versions: 43 } }
    version_labels { key: "stable" value: 42 }
    version_labels { key: "canary" value: 43 }
  }
}
"""


def test_parses_tf_servings_documented_example() -> None:
    (model,) = parse_models_config(FACTS_EXAMPLE)
    assert model == ModelConfig(
        name="m",
        base_path="/models/m",
        version_policy=VersionPolicy.specific(42, 43),
        labels={"stable": 42, "canary": 43},
    )


@pytest.mark.parametrize(
    "policy",
    [VersionPolicy(), VersionPolicy.latest(3), VersionPolicy.all(), VersionPolicy.specific(7, 2)],
)
def test_render_then_parse_round_trips(policy: VersionPolicy) -> None:
    models = [
        ModelConfig(name="a", base_path="gs://bucket/repo/a", version_policy=policy),
        ModelConfig(name="b", base_path="/srv/b", labels={"stable": 1}),
    ]
    assert parse_models_config(render_models_config(models)) == models


def test_render_is_a_real_model_server_config() -> None:
    text = render_models_config(
        [ModelConfig(name="a", base_path="s3://b/a", version_policy=VersionPolicy.all())]
    )
    proto = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    (entry,) = proto.model_config_list.config
    assert entry.model_platform == "tensorflow"
    assert entry.model_version_policy.WhichOneof("policy_choice") == "all"


def test_missing_policy_means_latest_one_version() -> None:
    text = 'model_config_list { config { name: "m" base_path: "/m" model_platform: "tensorflow" } }'
    assert parse_models_config(text)[0].version_policy == VersionPolicy.latest(1)


def test_deprecated_model_type_selects_tensorflow() -> None:
    text = 'model_config_list { config { name: "m" base_path: "/m" model_type: TENSORFLOW } }'
    assert parse_models_config(text)[0].platform == "tensorflow"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'model_config_list { config { name: "m" base_path: "/a" model_platform: "tensorflow" }'
            ' config { name: "m" base_path: "/b" model_platform: "tensorflow" } }',
            "Illegal to list model m multiple times in config list",
        ),
        (
            'model_config_list { config { name: "m" base_path: "models/m" '
            'model_platform: "tensorflow" } }',
            "Expected model m to have an absolute path or URI; got base_path()=models/m",
        ),
        (
            'model_config_list { config { name: "m" base_path: "/m" } }',
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            "ModelServerConfig::model_platform, model name is m",
        ),
        (
            "model_config_list { config { nam: 1 } }",
            "Error parsing text-format tensorflow.serving.ModelServerConfig: 1:30 : Message type "
            '"tensorflow.serving.ModelConfig" has no field named "nam". Invalid protobuf file: '
            "'models.config'",
        ),
        (
            'model_config_list { config { name: "m" base_path: "/m" model_type: TENSORFLOW '
            'model_platform: "tensorflow" } }',
            "Illegal setting both ModelServerConfig::model_type (deprecated) and "
            "ModelServerConfig::model_platform, model name is m",
        ),
        (
            "custom_model_config { }",
            "ModelServer does not yet support custom model config. models.config holds a "
            "custom_model_config",
        ),
    ],
)
def test_refuses_what_tf_serving_refuses(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_models_config(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: VersionPolicy.latest(0), "latest.num_versions is 0; it must be 1 or more"),
        (lambda: VersionPolicy.specific(), "specific lists no versions"),
        (lambda: VersionPolicy("all", versions=(1,)), "apply only to the specific policy"),
    ],
)
def test_version_policy_checks(make: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        make()  # type: ignore[operator]


def test_label_spelling_is_checked_where_timonel_writes_not_where_the_server_reads() -> None:
    text = (
        'model_config_list { config { name: "m" base_path: "/m" model_platform: "tensorflow"'
        ' version_labels { key: "nice try" value: 1 } } }'
    )
    (model,) = parse_models_config(text)  # TF Serving's ServerCore takes any spelling
    with pytest.raises(SpecError, match="version label 'nice try' of model m is not made of"):
        render_models_config([model])


def test_accepts_uris_and_absolute_paths() -> None:
    for base in ("gs://b/m", "s3://b/m", "file:///srv/m", "/srv/m"):
        assert ModelConfig(name="m", base_path=base).base_path == base


def test_write_then_read(tmp_path: Path) -> None:
    models = [ModelConfig(name="m", base_path="/m", labels={"stable": 3})]
    path = write_models_config(tmp_path / "conf" / "models.config", models)
    assert read_models_config(path) == models


def test_read_missing_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"cannot read the model config file .*nope\.config"):
        read_models_config(tmp_path / "nope.config")
