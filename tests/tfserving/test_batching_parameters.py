"""The batching parameters file: TF Serving's text format both ways, its defaults, its rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from timonel.errors import SpecError
from timonel.tfserving import (
    BatchingParameters,
    format_batching_parameters,
    parse_batching_parameters,
    read_batching_parameters,
    write_batching_parameters,
)

# The example of TF Serving's batching/README.md, in both spellings of wrapper fields.
README_EXAMPLE = """
max_batch_size { value: 128 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 1000000 }
num_batch_threads: { value: 8 }   # colon form is valid text proto too
"""


def test_parses_the_readme_example_with_defaults_for_the_rest() -> None:
    assert parse_batching_parameters(README_EXAMPLE) == BatchingParameters(
        max_batch_size=128,
        batch_timeout_micros=0,
        max_enqueued_batches=1000000,
        num_batch_threads=8,
    )


def test_empty_file_means_tf_servings_defaults() -> None:
    params = parse_batching_parameters("")
    assert params == BatchingParameters()
    assert (params.max_batch_size, params.batch_timeout_micros, params.max_enqueued_batches) == (
        1000,
        0,
        10,
    )
    assert params.num_batch_threads is None
    assert params.thread_pool_name == "batch_threads"
    assert params.allowed_batch_sizes == ()
    assert not params.enable_large_batch_splitting
    assert not params.pad_variable_length_inputs


@pytest.mark.parametrize(
    "params",
    [
        BatchingParameters(),
        BatchingParameters(max_batch_size=64, allowed_batch_sizes=(8, 32, 64), num_batch_threads=2),
        BatchingParameters(
            max_batch_size=256,
            enable_large_batch_splitting=True,
            max_execution_batch_size=64,
            allowed_batch_sizes=(16, 64),
            pad_variable_length_inputs=True,
            thread_pool_name="pool",
            batch_timeout_micros=5000,
        ),
    ],
)
def test_format_then_parse_round_trips(params: BatchingParameters) -> None:
    assert parse_batching_parameters(format_batching_parameters(params)) == params


def test_format_writes_wrapper_fields_as_value_blocks() -> None:
    text = format_batching_parameters(
        BatchingParameters(max_batch_size=8, allowed_batch_sizes=(4, 8), num_batch_threads=1)
    )
    assert "max_batch_size {\n  value: 8\n}" in text
    assert "num_batch_threads {\n  value: 1\n}" in text
    assert "allowed_batch_sizes: 4\nallowed_batch_sizes: 8" in text


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: BatchingParameters(max_batch_size=0), "max_batch_size is 0; it must be 1 or more"),
        (lambda: BatchingParameters(batch_timeout_micros=-1), "batch_timeout_micros is -1"),
        (lambda: BatchingParameters(num_batch_threads=0), "num_batch_threads is 0"),
        (lambda: BatchingParameters(thread_pool_name=""), "thread_pool_name is empty"),
        (
            lambda: BatchingParameters(max_batch_size=8, allowed_batch_sizes=(4, 4, 8)),
            r"allowed_batch_sizes \[4, 4, 8\] must be positive and strictly increasing",
        ),
        (
            lambda: BatchingParameters(max_batch_size=8, allowed_batch_sizes=(2, 4)),
            r"the last of allowed_batch_sizes \[2, 4\] must equal max_batch_size \(8\)",
        ),
        (
            lambda: BatchingParameters(
                max_batch_size=64,
                enable_large_batch_splitting=True,
                max_execution_batch_size=16,
                allowed_batch_sizes=(8, 64),
            ),
            r"must equal max_execution_batch_size \(16\)",
        ),
    ],
)
def test_refuses_parameters_tf_serving_refuses(make: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        make()  # type: ignore[operator]


def test_parse_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "batching.txt"
    path.write_text("max_batch_size: 8\n")
    with pytest.raises(SpecError, match=f"{path} is not a text BatchingParameters"):
        read_batching_parameters(path)


def test_write_then_read(tmp_path: Path) -> None:
    params = BatchingParameters(max_batch_size=4, allowed_batch_sizes=(2, 4))
    assert read_batching_parameters(write_batching_parameters(tmp_path / "b.txt", params)) == params
