"""The mirrored-traffic source reads the ingress's ``GET /mirror`` counts, window by window."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from rollouts.fakeclock import FakeClock
from timonel.errors import EvidenceUnreachable, SpecError
from timonel.local.ingress.mirror import MirrorCount
from timonel.rollouts.gates import Verdict, judge
from timonel.rollouts.mirror import MirrorSource
from timonel.rollouts.plan import Gates
from timonel.rollouts.sources import Endpoint, Pair

GATEWAY = "http://127.0.0.1:8080"
SHADOW = Pair(
    "m",
    Endpoint("m-predictor-00001", GATEWAY, "prev-m-predictor.default.example.com"),
    Endpoint("m-predictor-00002", GATEWAY, "latest-m-predictor.default.example.com"),
    "default",
    mirrored=100.0,
)


class Ingress:
    """The ingress's ``/mirror`` page, with counts the test moves on."""

    def __init__(self) -> None:
        self.counts = [
            MirrorCount("default", "m", "m-predictor-00001", "m-predictor-00002"),
            MirrorCount("other", "m", "m-predictor-00001", "m-predictor-00002", requests=999),
        ]

    def add(self, requests: int, errors: int = 0, differences: int = 0) -> None:
        first = self.counts[0]
        self.counts[0] = dataclasses.replace(
            first,
            requests=first.requests + requests,
            errors=first.errors + errors,
            differences=first.differences + differences,
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/mirror":
            return httpx.Response(404, text="no route")
        return httpx.Response(200, json=[dataclasses.asdict(c) for c in self.counts])


def source(ingress: Ingress) -> MirrorSource:
    return MirrorSource(GATEWAY, transport=httpx.MockTransport(ingress.handle))


def test_each_window_counts_what_was_mirrored_during_it(clock: FakeClock) -> None:
    ingress = Ingress()
    mirror = source(ingress)
    ingress.add(40, errors=2, differences=3)
    first = mirror.gather(SHADOW, clock.now(), clock.now() + 30, clock)
    ingress.add(10, differences=10)
    second = mirror.gather(SHADOW, clock.now(), clock.now() + 30, clock)
    assert first is not None and second is not None
    assert clock.slept == pytest.approx(60.0)
    assert (first.stable.requests, first.stable.errors) == (40, 0)
    assert (first.canary.requests, first.canary.errors) == (40, 2)
    assert (first.agreement.compared, first.agreement.agreed) == (38, 35)  # type: ignore[union-attr]
    assert (second.canary.requests, second.agreement.agreed) == (10, 0)  # type: ignore[union-attr]
    assert not first.timed and first.canary.p99_ms is None


def test_outside_the_shadow_phase_it_sees_nothing(clock: FakeClock) -> None:
    step = dataclasses.replace(SHADOW, mirrored=0.0)
    assert source(Ingress()).gather(step, clock.now(), clock.now() + 30, clock) is None


def test_answers_that_differ_fail_agreement_and_no_latency_gate_judges_them(
    clock: FakeClock,
) -> None:
    ingress = Ingress()
    ingress.add(30, differences=30)
    evidence = source(ingress).gather(SHADOW, clock.now(), clock.now() + 30, clock)
    assert evidence is not None
    decision = judge(Gates(min_requests=20), [evidence])
    assert decision.verdict == Verdict.FAIL
    assert decision.failed_gates == ("agreement",)
    assert [r.gate for r in decision.results] == ["error-rate", "agreement"]
    assert "0/30 examples agree" in decision.reason


def test_too_few_mirrored_requests_decide_nothing(clock: FakeClock) -> None:
    ingress = Ingress()
    ingress.add(5)
    evidence = source(ingress).gather(SHADOW, clock.now(), clock.now() + 30, clock)
    assert evidence is not None
    assert judge(Gates(min_requests=20), [evidence]).verdict == Verdict.WAIT


def test_a_gateway_without_mirror_records_is_refused(clock: FakeClock) -> None:
    mirror = MirrorSource(
        GATEWAY, transport=httpx.MockTransport(lambda _: httpx.Response(404, text="not found"))
    )
    with pytest.raises(SpecError, match=r"keeps no mirror records .* roll out with no --shadow"):
        mirror.gather(SHADOW, clock.now(), clock.now() + 1, clock)


def test_an_unreachable_gateway_is_a_refusal(clock: FakeClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    mirror = MirrorSource(GATEWAY, transport=httpx.MockTransport(refuse))
    with pytest.raises(EvidenceUnreachable, match="cannot read the mirror records at"):
        mirror.gather(SHADOW, clock.now(), clock.now() + 1, clock)
