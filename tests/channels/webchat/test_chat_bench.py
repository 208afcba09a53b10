"""The web chat benchmark's load tool runs end to end on a few visitors.

Its timings are not asserted (they are benchmark figures, see ``hub bench chat``); what is
asserted is what the tool measures besides time: every visitor socket opens and stays
open, on the hub and on the baseline alike, and every timed message is acknowledged and
echoed on its own socket, with no error frame.
"""

from __future__ import annotations

import json

import pytest

from benchmarks import chat as bench

pytestmark = pytest.mark.slow


def test_every_visitor_connects_and_every_message_is_acked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--visitors", "60", "--messages", "120", "--rate", "100"]
    assert bench.main([*args, "--json", "--no-save"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["visitors"], data["messages"]) == (60, 120)
    for side in ("hub", "baseline"):
        run = data[side]
        assert run["connect"]["opened"] == 60, side
        assert run["connect"]["refused"] == 0, side
        assert run["connect"]["hello_to_welcome_ms"]["n"] == 60, side
        assert run["timed"] == 120, side
        assert (run["acked"], run["lost"]) == (120, 0), side
        assert (run["echoed"], run["echo_lost"]) == (120, 0), side
        assert run["errors"] == {}, side
        assert run["ack_ms"]["n"] == run["echo_ms"]["n"] == 120, side
        assert 0 < run["ack_ms"]["median"] <= run["ack_ms"]["p99"] <= run["ack_ms"]["max"], side
        assert run["open_at_end"] == 60, side
        assert run["rss_mib"]["with_sockets"] > 0, side
    assert data["hub"]["hub_pauses"]["loop_lag"]["n"] >= 0
    assert data["ratio_hub_to_baseline"]["ack_p99"] > 0
