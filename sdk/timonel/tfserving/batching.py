"""The batching parameters file (``--batching_parameters_file``): text ``BatchingParameters``.

The message is not in the tensorflow-serving-api wheel (it lives in
``servables/tensorflow/session_bundle_config.proto``); ``timonel.tfserving._protos`` declares the
same message so protobuf's ``text_format`` reads and writes the file. Unset fields take the
defaults of TF's ``SharedBatchScheduler`` queue options, as TF Serving does, so a parsed file
always says what the server will actually do.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timonel.errors import SpecError
from timonel.tfserving._files import read_config_text, write_config_text
from timonel.tfserving._protos import message_class

_WRAPPED = (
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
    "thread_pool_name",
    "enable_large_batch_splitting",
    "max_execution_batch_size",
)


@dataclass(frozen=True)
class BatchingParameters:
    """How the model server groups concurrent requests into one model call.

    ``num_batch_threads`` None means one thread per schedulable CPU (TF Serving's default).
    ``allowed_batch_sizes``, when given, must increase and end at the largest batch the
    scheduler forms (``max_batch_size``, or ``max_execution_batch_size`` with splitting); smaller
    batches are padded up to the next allowed size.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int | None = None
    thread_pool_name: str = "batch_threads"
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int = 1000
    allowed_batch_sizes: tuple[int, ...] = field(default=())
    pad_variable_length_inputs: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_batch_sizes", tuple(self.allowed_batch_sizes))
        for name, least in (
            ("max_batch_size", 1),
            ("batch_timeout_micros", 0),
            ("max_enqueued_batches", 1),
            ("max_execution_batch_size", 1),
        ):
            value = getattr(self, name)
            if value < least:
                raise SpecError(
                    f"batching parameter {name} is {value}; it must be {least} or more",
                    field=name,
                )
        if self.num_batch_threads is not None and self.num_batch_threads < 1:
            raise SpecError(
                f"batching parameter num_batch_threads is {self.num_batch_threads}; it must be 1 "
                "or more (leave it unset for one thread per CPU)",
                field="num_batch_threads",
            )
        if not self.thread_pool_name:
            raise SpecError(
                "batching parameter thread_pool_name is empty; name the pool or leave it unset",
                field="thread_pool_name",
            )
        self._check_allowed_batch_sizes()

    @property
    def largest_batch(self) -> int:
        """The largest batch the scheduler hands to the model in one call."""
        if self.enable_large_batch_splitting:
            return self.max_execution_batch_size
        return self.max_batch_size

    def _check_allowed_batch_sizes(self) -> None:
        sizes = self.allowed_batch_sizes
        if not sizes:
            return
        if any(b <= a for a, b in itertools.pairwise(sizes)) or sizes[0] < 1:
            raise SpecError(
                f"allowed_batch_sizes {list(sizes)} must be positive and strictly increasing; "
                "sort them and drop duplicates",
                field="allowed_batch_sizes",
            )
        limit_name = (
            "max_execution_batch_size" if self.enable_large_batch_splitting else "max_batch_size"
        )
        if sizes[-1] != self.largest_batch:
            raise SpecError(
                f"the last of allowed_batch_sizes {list(sizes)} must equal {limit_name} "
                f"({self.largest_batch}); end the list with {self.largest_batch} or change "
                f"{limit_name}",
                field="allowed_batch_sizes",
            )


def format_batching_parameters(params: BatchingParameters) -> str:
    """The text of a batching parameters file (wrapper fields written ``name { value: X }``)."""
    from google.protobuf import text_format

    proto = message_class("BatchingParameters")()
    for name in _WRAPPED:
        value = getattr(params, name)
        if value is not None:
            getattr(proto, name).value = value
    proto.allowed_batch_sizes.extend(params.allowed_batch_sizes)
    proto.pad_variable_length_inputs = params.pad_variable_length_inputs
    return str(text_format.MessageToString(proto))


def parse_batching_parameters(
    text: str, *, source: str = "batching_parameters.txt"
) -> BatchingParameters:
    """Read a text ``BatchingParameters``; fields left out take TF Serving's defaults."""
    from google.protobuf import text_format

    proto = message_class("BatchingParameters")()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        raise SpecError(
            f"{source} is not a text BatchingParameters: {exc}; write fields as "
            "max_batch_size { value: 32 }"
        ) from exc
    values: dict[str, Any] = {
        name: getattr(proto, name).value for name in _WRAPPED if proto.HasField(name)
    }
    return BatchingParameters(
        **values,
        allowed_batch_sizes=tuple(proto.allowed_batch_sizes),
        pad_variable_length_inputs=proto.pad_variable_length_inputs,
    )


def read_batching_parameters(path: str | Path) -> BatchingParameters:
    text, source = read_config_text(
        path, what="batching parameters", flag="--batching_parameters_file"
    )
    return parse_batching_parameters(text, source=source)


def write_batching_parameters(path: str | Path, params: BatchingParameters) -> Path:
    return write_config_text(path, format_batching_parameters(params))
