"""The node labels and tolerations a GPU pod needs on GKE."""

from __future__ import annotations

import pytest

from timonel.gke import scheduling
from timonel.spec import Accelerator


@pytest.mark.parametrize(
    ("accelerator", "labels"),
    [
        (Accelerator("nvidia-l4"), {scheduling.ACCELERATOR_LABEL: "nvidia-l4"}),
        (
            Accelerator("nvidia-l4", count=2, autopilot=True, spot=True),
            {
                scheduling.ACCELERATOR_LABEL: "nvidia-l4",
                scheduling.ACCELERATOR_COUNT_LABEL: "2",
                scheduling.SPOT_LABEL: "true",
            },
        ),
        (
            Accelerator("nvidia-tesla-t4", sharing="time-sharing"),
            {
                scheduling.ACCELERATOR_LABEL: "nvidia-tesla-t4",
                scheduling.SHARING_STRATEGY_LABEL: "time-sharing",
                scheduling.MAX_SHARED_CLIENTS_LABEL: "2",
            },
        ),
        (
            Accelerator("nvidia-tesla-a100", mig_partition="3g.20gb"),
            {
                scheduling.ACCELERATOR_LABEL: "nvidia-tesla-a100",
                scheduling.PARTITION_SIZE_LABEL: "3g.20gb",
            },
        ),
    ],
)
def test_node_selector_has_gkes_labels(accelerator: Accelerator, labels: dict[str, str]) -> None:
    assert scheduling.node_selector(accelerator) == labels
