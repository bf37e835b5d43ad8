"""A container's log as the pods/log subresource cuts it: current or previous run, last lines."""

from __future__ import annotations

import pytest

from timonel.errors import ApiError
from timonel.local.apiserver.logs import container_log

LOG = (
    "--- start 0: python -m timonel serve\n"
    "first run\n"
    "crashed\n"
    "--- start 1: python -m timonel serve\n"
    "second run\n"
    "serving\n"
    "answered\n"
)


@pytest.mark.parametrize(
    ("previous", "tail_lines", "expected"),
    [
        (False, None, "second run\nserving\nanswered\n"),
        (False, 1, "answered\n"),
        (False, 0, ""),
        (False, 10, "second run\nserving\nanswered\n"),
        (True, None, "first run\ncrashed\n"),
        (True, 1, "crashed\n"),
    ],
)
def test_the_run_and_the_lines_asked_for(
    previous: bool, tail_lines: int | None, expected: str
) -> None:
    got = container_log(LOG, previous=previous, tail_lines=tail_lines, pod="p", container="c")
    assert got == expected


def test_a_container_that_never_restarted_has_no_previous_log() -> None:
    with pytest.raises(ApiError) as raised:
        container_log(
            "--- start 0: serve\nup\n",
            previous=True,
            tail_lines=None,
            pod="half-predictor-00001-deployment-abc-xyz",
            container="kserve-container",
        )
    assert raised.value.status.code == 400
    assert raised.value.status.message == (
        'previous terminated container "kserve-container" in pod '
        '"half-predictor-00001-deployment-abc-xyz" not found'
    )
