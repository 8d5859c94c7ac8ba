"""Auto-assignment: which available agent gets the next conversation. Pure.

    plan = plan_assignments(queue, agents, strategy="least_loaded", default_cap=3)
    # [(conversation_id, agent_id), ...] in queue order; nobody ever goes past their cap

Strategies:

- ``round_robin``: the available agent under their cap who was given a conversation longest ago
  (never first), ties by agent id;
- ``least_loaded``: the available agent under their cap with the fewest open conversations, ties
  broken round-robin.

An agent's cap is their own (`AgentLoad.cap`) or the default; a cap of 0 takes nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from handoff.queue import QueueItem, order_queue

Strategy = Literal["round_robin", "least_loaded"]
STRATEGIES: tuple[str, ...] = ("round_robin", "least_loaded")


@dataclass(frozen=True, slots=True)
class AgentLoad:
    agent_id: str
    available: bool
    open: int  # conversations assigned to them now
    cap: int | None = None
    last_assigned_at: datetime | None = None
    turn: int = 0  # assignments planned in this round (later = more recent than any timestamp)


def _cap(agent: AgentLoad, default_cap: int) -> int:
    return default_cap if agent.cap is None else agent.cap


def _recency(agent: AgentLoad) -> tuple[int, float, int]:
    stamp = agent.last_assigned_at.timestamp() if agent.last_assigned_at else float("-inf")
    return (agent.turn, stamp, 0)


def pick_agent(agents: Sequence[AgentLoad], *, strategy: Strategy, default_cap: int) -> AgentLoad | None:
    """The agent who gets the next conversation, or None when nobody available has room."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown auto-assignment strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    room = [a for a in agents if a.available and a.open < _cap(a, default_cap)]
    if not room:
        return None
    if strategy == "least_loaded":
        return min(room, key=lambda a: (a.open, _recency(a), a.agent_id))
    return min(room, key=lambda a: (_recency(a), a.agent_id))


def plan_assignments(
    queue: Sequence[QueueItem], agents: Sequence[AgentLoad], *, strategy: Strategy, default_cap: int
) -> list[tuple[int, str]]:
    """Assign the queue (priority, then wait) while anyone has room."""
    pool = {a.agent_id: a for a in agents}
    plan: list[tuple[int, str]] = []
    for turn, item in enumerate(order_queue(queue), start=1):
        agent = pick_agent(list(pool.values()), strategy=strategy, default_cap=default_cap)
        if agent is None:
            break
        plan.append((item.conversation_id, agent.agent_id))
        pool[agent.agent_id] = replace(agent, open=agent.open + 1, turn=turn)
    return plan
