"""The fault plan's decisions (pure) and the settings that configure it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from farm.settings import load
from relay.localnode.faults import CLEAN, Direction, FaultPlan, FaultRates, pubkey_of
from relay.localnode.settings import LocalNodeSettings

KEY = "ab" * 32
OTHER = "cd" * 32


def _drops(plan: FaultPlan, count: int) -> list[int]:
    return [i for i in range(count) if plan.decide("to").drop]


@pytest.mark.parametrize(
    ("src", "dest", "direction"),
    [
        (f"a.{OTHER}", f"__0__.relay.{KEY}", "to"),
        (f"a.{OTHER}", KEY, "to"),
        (f"__1__.relay.{KEY}", f"a.{OTHER}", "from"),
        (f"a.{OTHER}", f"b.{OTHER}", "other"),
        (f"x.{KEY}", f"y.{KEY}", "to"),
    ],
    ids=["to-subclient", "to-bare-key", "from-subclient", "other", "self-counts-as-to"],
)
def test_direction_is_by_the_subjects_public_key(src: str, dest: str, direction: str) -> None:
    assert FaultPlan(KEY.upper()).direction(src, dest) == direction


def test_without_a_subject_nothing_has_a_direction() -> None:
    assert FaultPlan("").direction(f"a.{OTHER}", f"b.{KEY}") == "other"


def test_the_same_seed_gives_the_same_decisions_and_another_seed_others() -> None:
    rates: dict[Direction, FaultRates] = {"to": FaultRates(drop=0.3)}
    first = _drops(FaultPlan(KEY, rates, seed=7), 300)
    again = _drops(FaultPlan(KEY, rates, seed=7), 300)
    other = _drops(FaultPlan(KEY, rates, seed=8), 300)
    assert first == again != other
    assert 60 <= len(first) <= 120


def test_one_faults_fraction_does_not_move_the_others_choices() -> None:
    plain = FaultPlan(KEY, {"to": FaultRates(drop=0.2)}, seed=4)
    more = FaultPlan(KEY, {"to": FaultRates(drop=0.2, reorder=0.5)}, seed=4)
    assert _drops(plain, 200) == _drops(more, 200)


def test_other_traffic_and_a_direction_without_rates_are_never_faulted() -> None:
    plan = FaultPlan(KEY, {"to": FaultRates(drop=1.0)}, seed=1)
    assert plan.decide("other") == CLEAN and plan.decide("from") == CLEAN
    assert plan.decide("to").drop


def test_a_dropped_message_has_no_other_fault() -> None:
    plan = FaultPlan(KEY, {"to": FaultRates(1.0, 1.0, 1.0, 1.0)}, seed=1)
    decision = plan.decide("to")
    assert decision.drop and not (decision.duplicate or decision.delay or decision.reorder)


def test_by_default_the_node_injects_no_fault() -> None:
    settings = LocalNodeSettings()
    assert not settings.subject_key
    assert all(getattr(settings, n) == 0 for n in type(settings).model_fields if "_to_" in n)
    assert all(getattr(settings, n) == 0 for n in type(settings).model_fields if "_from_" in n)


def test_an_address_is_taken_as_its_public_key() -> None:
    loaded = load(LocalNodeSettings, ["--subject-key", f"__0__.relay.{KEY}"], {})
    assert pubkey_of(loaded.settings.subject_key) == KEY


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fault-to-drop", "0.1"], "--fault-to-drop needs --subject-key"),
        (["--subject-key", KEY, "--fault-from-delay", "1.5"], "fault-from-delay"),
        (["--subject-key", "nohex"], "subject-key"),
    ],
    ids=["fault-without-subject", "fraction-over-one", "bad-key"],
)
def test_a_bad_fault_setting_is_one_line_naming_the_flag(argv: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "relay.localnode", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
