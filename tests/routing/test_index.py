"""Indexes keep a decision away from the whole floor: only one skill's routable agents are read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from routing.models import QueueSpec, Step, TaskSpec
from tests.routing.conftest import agent, offers, router, task


class Probe(Mapping[str, object]):
    """Task attributes that count how often a requirement reads them (once per candidate)."""

    def __init__(self) -> None:
        self.reads = 0

    def __getitem__(self, key: str) -> object:
        self.reads += 1
        return 1

    def __iter__(self) -> Iterator[str]:
        return iter(["probe"])

    def __len__(self) -> int:
        return 1


def floor(agents: int, skills: int) -> object:
    r = router(QueueSpec(name="support"), task_ttl_s=None)
    for i in range(agents):
        r.add_agent(agent(i, skills={f"s{i % skills}": 1 + (i // skills) % 5}, idle_since=i), 0)
    return r


def probed(task_id: int, requirement: str, probe: Probe, queue: str = "support") -> TaskSpec:
    steps = (Step(requirement=requirement),)
    return TaskSpec(id=task_id, queue=queue, channel="voice", steps=steps, attributes=probe)


def reads_for(r: object, requirement: str, task_id: int) -> tuple[int, list[tuple[int, int]]]:
    probe = Probe()
    events = r.add_task(probed(task_id, requirement, probe), 1)  # type: ignore[attr-defined]
    return probe.reads, offers(events)


def test_a_decision_reads_only_the_agents_of_the_required_skill() -> None:
    r = floor(2000, 100)  # 20 agents per skill
    reads, made = reads_for(r, "task.probe == 1 AND s7 >= 5", 1)
    assert made
    assert made[0][1] % 100 == 7
    assert reads <= 20
    reads, made = reads_for(r, "task.probe == 1 AND s7 >= 9", 2)  # nobody qualifies
    assert made == []
    assert reads == 19


def test_a_matching_decision_costs_the_same_on_a_ten_times_larger_floor() -> None:
    small = reads_for(floor(1000, 50), "task.probe == 1 AND s3 >= 1", 1)[0]
    large = reads_for(floor(10000, 50), "task.probe == 1 AND s3 >= 1", 1)[0]
    assert small == large == 1


def test_the_smallest_of_several_required_indexes_drives_the_search() -> None:
    r = router(QueueSpec(name="support"), task_ttl_s=None)
    for i in range(300):
        r.add_agent(agent(i, skills={"common": 3}, languages={"en": 3}), 0)
    for i in range(300, 305):
        r.add_agent(agent(i, skills={"common": 3, "rare": 2}, languages={"en": 3}), 0)
    reads, made = reads_for(r, "task.probe == 1 AND common >= 1 AND rare >= 3", 1)
    assert made == []
    assert reads == 5


def test_or_hints_union_their_indexes_and_lists_read_only_named_agents() -> None:
    r = router(QueueSpec(name="support"), task_ttl_s=None)
    for i in range(100):
        r.add_agent(agent(i, skills={"a" if i < 3 else "b": 1}, idle_since=100 - i), 0)
    reads, made = reads_for(r, "task.probe == 1 AND (skills HAS 'a' OR agent.id IN [50])", 1)
    assert reads == 4
    assert made == [(1, 50)]
    reads, made = reads_for(r, "task.probe == 1 AND agent.id IN [7, 8, 999]", 2)
    assert reads == 2
    assert made == [(2, 8)]
    reads, made = reads_for(r, "task.probe == 1 AND NOT agent.id IN [1]", 3)
    assert made == [(3, 99)]  # no usable index: the queue's agents, longest idle first


def test_a_freed_agent_only_looks_at_its_own_queues() -> None:
    r = router(QueueSpec(name="a"), QueueSpec(name="b"), task_ttl_s=None)
    r.add_agent(agent(1, queues=("b",), state="away"), 0)
    probes = []
    for i in range(50):
        probe = Probe()
        probes.append(probe)
        r.add_task(probed(i, "task.probe == 1", probe, queue="a"), 1)
    r.add_task(task(99, queue="b"), 2)
    assert offers(r.set_agent_state(1, "available", 3)) == [(99, 1)]
    assert sum(p.reads for p in probes) == 0
