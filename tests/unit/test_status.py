"""The one transition table: what the SPEC diagram allows, and nothing else."""

from __future__ import annotations

import pytest

from jobyard.domain.status import (
    ACTIVE,
    TERMINAL,
    TRANSITIONS,
    Status,
    can_transition,
    predecessors,
)

S = Status


def test_every_status_has_an_entry_in_the_table() -> None:
    assert set(TRANSITIONS) == set(Status)


def test_terminal_statuses_are_exactly_completed_failed_stopped() -> None:
    assert {s for s in Status if s.terminal} == {S.COMPLETED, S.FAILED, S.STOPPED}
    assert {S.COMPLETED, S.FAILED, S.STOPPED} == TERMINAL


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_status_has_no_exits(terminal: Status) -> None:
    assert TRANSITIONS[terminal] == frozenset()
    for target in Status:
        assert not can_transition(terminal, target)


def test_stopping_only_leads_to_stopped() -> None:
    assert TRANSITIONS[S.STOPPING] == {S.STOPPED}
    # An exit racing a stop must not turn the user's stop into COMPLETED or FAILED.
    assert not can_transition(S.STOPPING, S.COMPLETED)
    assert not can_transition(S.STOPPING, S.FAILED)
    assert not can_transition(S.STOPPING, S.RUNNING)


@pytest.mark.parametrize("target", list(Status))
def test_predecessors_is_the_inverse_of_the_table(target: Status) -> None:
    expected = {s for s in Status if target in TRANSITIONS[s]}
    assert predecessors(target) == expected
    for source in Status:
        assert (source in predecessors(target)) == can_transition(source, target)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.SCHEDULED, S.QUEUED),
        (S.QUEUED, S.INITIALIZING),
        (S.INITIALIZING, S.RUNNING),
        (S.RUNNING, S.SUSPENDED),
        (S.SUSPENDED, S.RUNNING),
        (S.RUNNING, S.STOPPING),
        (S.STOPPING, S.STOPPED),
        (S.RUNNING, S.COMPLETED),
        (S.RUNNING, S.FAILED),
        (S.INITIALIZING, S.FAILED),  # launch error
        (S.QUEUED, S.STOPPED),  # stopped before it started
        (S.QUEUED, S.RUNNING),  # a batch system's queue: its job runs once started there
        (S.QUEUED, S.STOPPING),  # cancelled in a batch system's queue
        (S.QUEUED, S.FAILED),  # failed in a batch system's queue without ever running
    ],
)
def test_allowed_moves_from_the_diagram(current: Status, new: Status) -> None:
    assert can_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.COMPLETED, S.RUNNING),
        (S.COMPLETED, S.FAILED),
        (S.FAILED, S.COMPLETED),
        (S.STOPPED, S.RUNNING),
        (S.QUEUED, S.COMPLETED),
        (S.SCHEDULED, S.RUNNING),
        (S.RUNNING, S.QUEUED),
        (S.RUNNING, S.INITIALIZING),
        (S.SUSPENDED, S.COMPLETED),
        (S.RUNNING, S.RUNNING),
    ],
)
def test_refused_moves(current: Status, new: Status) -> None:
    assert not can_transition(current, new)


def test_completed_refuses_every_move() -> None:
    assert [s for s in Status if can_transition(S.COMPLETED, s)] == []


def test_active_statuses_are_those_with_processes() -> None:
    assert {s for s in Status if s.active} == set(ACTIVE)
    assert {S.INITIALIZING, S.RUNNING, S.SUSPENDED, S.STOPPING} == ACTIVE
    assert not (ACTIVE & TERMINAL)


def test_every_non_terminal_status_can_reach_a_terminal_one() -> None:
    for start in Status:
        seen, todo = {start}, [start]
        while todo:
            for nxt in TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen & TERMINAL, f"{start} cannot end"
