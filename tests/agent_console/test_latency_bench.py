"""The latency benchmark's load tool runs end to end on a small floor.

Its timings are not asserted (they are benchmark figures, see ``hub bench latency``); what
is asserted is what the tool measures besides time: every timed message reaches the socket
of the agent who owns its conversation, in all three phases, and the supervisor dashboards
of the middle phase receive floor frames.
"""

from __future__ import annotations

import json

import pytest

from benchmarks import latency as bench

pytestmark = pytest.mark.slow


def test_every_timed_message_reaches_its_agent(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--agents", "12", "--supervisors", "2", "--rate", "100", "--messages", "200"]
    assert bench.main([*args, "--json", "--no-save"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["agents"] == 12
    for name in bench.PHASES:
        phase = data[name]
        # One message in ten comes from a new customer and is not timed.
        assert phase["timed"] == 180, name
        assert phase["lost"] == 0, name
        assert phase["latency_ms"]["n"] == 180, name
        assert 0 < phase["latency_ms"]["median"] <= phase["latency_ms"]["p99"], name
    assert data["with_supervisors"]["supervisor_event_frames"] > 0
    assert data["p99_ratio_with_to_without"] > 0
