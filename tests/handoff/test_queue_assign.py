"""Queue order (priority, then wait) and auto-assignment (round robin / least loaded, never past a cap)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from handoff.assign import AgentLoad, pick_agent, plan_assignments
from handoff.queue import QueueItem, order_queue, priority_rank

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_queue_orders_by_priority_then_wait() -> None:
    items = [QueueItem(1, "normal", at(0)), QueueItem(2, "urgent", at(50)), QueueItem(3, "low", at(-100)),
             QueueItem(4, "high", at(10)), QueueItem(5, "normal", at(-5)), QueueItem(6, None, at(-1)),
             QueueItem(7, "urgent", at(40)), QueueItem(8, "normal", None), QueueItem(9, "weird", at(-2))]
    assert [i.conversation_id for i in order_queue(items)] == [7, 2, 4, 5, 9, 6, 1, 8, 3]
    assert priority_rank("URGENT") == 0 and priority_rank(None) == priority_rank("normal") == 2


def test_round_robin_takes_turns_and_skips_the_away_and_the_full() -> None:
    agents = [AgentLoad("ann", True, 0, last_assigned_at=at(-10)), AgentLoad("bo", True, 0, last_assigned_at=None),
              AgentLoad("cy", False, 0), AgentLoad("di", True, 2, cap=2)]
    queue = [QueueItem(i, "normal", at(i)) for i in range(1, 6)]
    plan = plan_assignments(queue, agents, strategy="round_robin", default_cap=2)
    # bo never had one, then ann, then alternate; cy is away, di is full; 4 slots in all.
    assert plan == [(1, "bo"), (2, "ann"), (3, "bo"), (4, "ann")]


def test_least_loaded_fills_the_emptiest_first() -> None:
    agents = [AgentLoad("ann", True, 2), AgentLoad("bo", True, 0), AgentLoad("cy", True, 1)]
    queue = [QueueItem(i, "normal", at(i)) for i in range(1, 5)]
    assert plan_assignments(queue, agents, strategy="least_loaded", default_cap=3) == [
        (1, "bo"), (2, "cy"), (3, "bo"), (4, "ann")]  # loads 2/0/1 -> 2/1/1 (tie: cy waited longer) -> ...
    assert pick_agent([AgentLoad("x", True, 0, cap=0)], strategy="least_loaded", default_cap=3) is None
    with pytest.raises(ValueError, match="unknown auto-assignment strategy 'fifo'"):
        pick_agent(agents, strategy="fifo", default_cap=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", ["round_robin", "least_loaded"])
def test_auto_assignment_never_exceeds_the_cap(strategy: str) -> None:
    rng = random.Random(5)
    for _ in range(300):
        default_cap = rng.randrange(0, 4)
        agents = [AgentLoad(f"a{i}", rng.random() < 0.7, rng.randrange(0, 5),
                            cap=rng.choice([None, 0, 1, 2, 3, 6]),
                            last_assigned_at=rng.choice([None, at(rng.randrange(-600, 0))]))
                  for i in range(rng.randrange(0, 6))]
        queue = [QueueItem(i, rng.choice(["urgent", "high", "normal", "low"]), at(rng.randrange(-300, 0)))
                 for i in range(rng.randrange(0, 15))]
        plan = plan_assignments(queue, agents, strategy=strategy, default_cap=default_cap)  # type: ignore[arg-type]
        given = Counter(agent for _, agent in plan)
        room = 0
        for a in agents:
            cap = default_cap if a.cap is None else a.cap
            assert a.open + given[a.agent_id] <= max(cap, a.open)  # never past the cap
            assert a.available or given[a.agent_id] == 0  # nobody away gets one
            room += max(0, cap - a.open) if a.available else 0
        assert len(plan) == min(len(queue), room)  # as many as there is room for
        assert [c for c, _ in plan] == [i.conversation_id for i in order_queue(queue)][: len(plan)]
        assert len({c for c, _ in plan}) == len(plan)  # one agent per conversation
