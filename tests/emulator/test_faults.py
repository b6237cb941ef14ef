"""Tests of fault specs, the Faults setting and the per-request fault planner."""

from __future__ import annotations

import pytest

from nexudus_async.emulator import Faults
from nexudus_async.emulator._faults import Fault, FaultPlanner, parse_fault_spec


def kinds(planner: FaultPlanner, **request: object) -> list[str]:
    """The faults planned for one request, as strings (empty when none)."""
    plan = planner.plan(
        write=bool(request.get("write", False)),
        create=bool(request.get("create", False)),
        name=request.get("name"),  # type: ignore[arg-type]
    )
    return [] if plan is None else [str(fault) for fault in plan.fired]


class TestParseFaultSpec:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("status:503", [Fault("status", 503)]),
            ("html", [Fault("html", 503)]),
            ("html:200", [Fault("html", 200)]),
            ("empty200", [Fault("empty200")]),
            ("unsuccessful200", [Fault("unsuccessful200")]),
            ("delay:0.25", [Fault("delay", 0.25)]),
            ("reset_before_store", [Fault("reset_before_store")]),
            ("reset_after_store", [Fault("reset_after_store")]),
            ("throttle", [Fault("throttle", 1)]),
            ("throttle:7", [Fault("throttle", 7)]),
            ("ok", [Fault("ok")]),
            (
                "delay:1+reset_after_store",
                [Fault("delay", 1), Fault("reset_after_store")],
            ),
            (" Status:500 ", [Fault("status", 500)]),
        ],
    )
    def test_valid_specs(self, text: str, expected: list[Fault]) -> None:
        """Each documented kind parses, alone or joined with +."""
        assert list(parse_fault_spec(text)) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "boom",
            "status",
            "status:99",
            "status:600",
            "status:5.5",
            "delay",
            "delay:-1",
            "delay:x",
            "empty200:1",
            "html:100",
        ],
    )
    def test_invalid_specs(self, text: str) -> None:
        """Unknown kinds and bad arguments are refused with a ValueError."""
        with pytest.raises(ValueError, match="fault"):
            parse_fault_spec(text)

    def test_str_round_trips(self) -> None:
        """A fault prints as the spec that makes it."""
        assert [str(f) for f in parse_fault_spec("status:502+delay:0.5+throttle")] == [
            "status:502",
            "delay:0.5",
            "throttle:1",
        ]


class TestFaults:
    def test_default_is_inactive(self) -> None:
        """No faults are set by default."""
        assert not Faults().active

    @pytest.mark.parametrize(
        "faults",
        [
            Faults(by_request={1: "status:500"}),
            Faults(by_name={"x": "html"}),
            Faults(rate=0.1),
        ],
    )
    def test_any_source_makes_it_active(self, faults: Faults) -> None:
        """Numbers, names or a rate each make the setting active."""
        assert faults.active

    def test_bad_spec_is_refused_at_construction(self) -> None:
        """A wrong spec fails when the setting is made, not at request time."""
        with pytest.raises(ValueError, match="unknown fault kind"):
            Faults(by_create={1: "explode"})

    def test_request_numbers_start_at_one(self) -> None:
        """Request number 0 is refused."""
        with pytest.raises(ValueError, match="start at 1"):
            Faults(by_request={0: "status:500"})

    def test_rate_must_be_a_share(self) -> None:
        """The rate is between 0 and 1."""
        with pytest.raises(ValueError, match="rate"):
            Faults(rate=1.5)

    def test_scope_is_checked(self) -> None:
        """Only all, writes and creates are scopes."""
        with pytest.raises(ValueError, match="scope"):
            Faults(scope="reads")  # type: ignore[arg-type]

    def test_settings_are_read_only(self) -> None:
        """The maps inside a Faults setting cannot be changed afterwards."""
        source = {1: "status:500"}
        faults = Faults(by_request=source)
        source[2] = "html"
        assert dict(faults.by_request) == {1: "status:500"}
        with pytest.raises(TypeError):
            faults.by_request[3] = "html"  # type: ignore[index]

    def test_single_name_spec_becomes_a_list(self) -> None:
        """by_name accepts one spec or a list of them."""
        assert Faults(by_name={"a": "html"}).by_name["a"] == ("html",)


class TestFaultPlanner:
    def test_inactive_plans_nothing(self) -> None:
        """Without faults every plan is None."""
        planner = FaultPlanner(Faults())
        assert planner.plan(write=True, create=True, name="x") is None

    def test_by_request_counts_every_request(self) -> None:
        """by_request numbers reads and writes together."""
        planner = FaultPlanner(Faults(by_request={2: "status:500"}))
        assert kinds(planner) == []
        assert kinds(planner, write=True, create=True) == ["status:500"]
        assert kinds(planner) == []

    def test_by_write_counts_only_writes(self) -> None:
        """by_write skips reads when numbering."""
        planner = FaultPlanner(Faults(by_write={2: "status:502"}))
        assert kinds(planner) == []
        assert kinds(planner, write=True) == []
        assert kinds(planner) == []
        assert kinds(planner, write=True) == ["status:502"]

    def test_by_create_counts_only_creates(self) -> None:
        """by_create skips updates and reads when numbering."""
        planner = FaultPlanner(Faults(by_create={1: "throttle", 2: "throttle"}))
        assert kinds(planner, write=True) == []
        assert kinds(planner, write=True, create=True) == ["throttle:1"]
        assert kinds(planner, write=True, create=True) == ["throttle:1"]
        assert kinds(planner, write=True, create=True) == []

    def test_by_name_applies_to_successive_requests(self) -> None:
        """The listed faults go to the 1st, 2nd … request carrying the Name; ok skips one."""
        planner = FaultPlanner(
            Faults(by_name={"record-8": ["throttle", "ok", "reset_after_store"]})
        )
        assert kinds(planner, write=True, create=True, name="record-8") == [
            "throttle:1"
        ]
        assert kinds(planner, write=True, create=True, name="other") == []
        assert kinds(planner, write=True, create=True, name="record-8") == []
        assert kinds(planner, write=True, create=True, name="record-8") == [
            "reset_after_store"
        ]
        assert kinds(planner, write=True, create=True, name="record-8") == []

    def test_sources_combine(self) -> None:
        """A delay and an answering fault from different sources both apply."""
        planner = FaultPlanner(
            Faults(by_request={1: "delay:0.5"}, by_create={1: "status:503"})
        )
        plan = planner.plan(write=True, create=True, name=None)
        assert plan is not None
        assert plan.delay == 0.5
        assert plan.action == Fault("status", 503)
        assert plan.answers_before_store

    def test_first_answering_fault_wins(self) -> None:
        """With two answering faults the first listed is the action."""
        planner = FaultPlanner(Faults(by_request={1: "reset_after_store+status:500"}))
        plan = planner.plan(write=True, create=True, name=None)
        assert plan is not None
        assert plan.action == Fault("reset_after_store")
        assert not plan.answers_before_store

    def test_delays_add_up(self) -> None:
        """Several delays on one request are summed and there is no action."""
        planner = FaultPlanner(Faults(by_request={1: "delay:0.25+delay:0.5"}))
        plan = planner.plan(write=False, create=False, name=None)
        assert plan is not None
        assert plan.delay == 0.75
        assert plan.action is None

    def test_random_faults_are_reproducible(self) -> None:
        """The same seed and request order give the same faults."""
        faults = Faults(rate=0.3, kinds=("status:500", "html", "empty200"), seed=42)
        planners = [FaultPlanner(faults), FaultPlanner(faults)]
        runs = [
            [tuple(kinds(p, write=True, create=True)) for _ in range(200)]
            for p in planners
        ]
        assert runs[0] == runs[1]
        hits = sum(1 for planned in runs[0] if planned)
        assert 30 < hits < 90

    def test_other_seed_gives_other_faults(self) -> None:
        """A different seed changes which requests fail."""
        runs = []
        for seed in (1, 2):
            planner = FaultPlanner(Faults(rate=0.5, seed=seed))
            runs.append([bool(kinds(planner, write=True)) for _ in range(100)])
        assert runs[0] != runs[1]

    def test_random_scope_writes_skips_reads(self) -> None:
        """With scope writes, reads never get a random fault."""
        planner = FaultPlanner(Faults(rate=1.0, scope="writes"))
        assert kinds(planner) == []
        assert kinds(planner, write=True) == ["status:503"]

    def test_random_scope_creates_skips_updates(self) -> None:
        """With scope creates, other writes never get a random fault."""
        planner = FaultPlanner(Faults(rate=1.0, scope="creates"))
        assert kinds(planner, write=True) == []
        assert kinds(planner, write=True, create=True) == ["status:503"]
