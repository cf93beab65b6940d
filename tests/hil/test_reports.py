"""What the HIL reports say, on the host: timeline captions, summary.json's figures and
criteria, and the summary's life cycle (interrupted until finished)."""

from __future__ import annotations

import json
import types

from edgeloop.link.report import timeline_caption
from edgeloop.link.results import SessionResult
from hil_tests.summary import RunSummary, criteria_of, figures


def test_sensor_fault_caption_names_no_missing_machine_fault() -> None:
    res = SessionResult(1000.0, 256, 128, duration_s=18.0)
    res.sensor_faults = [{"window": 60, "kind": "stuck", "channel": 0, "count": 30, "t_s": 8.1},
                         {"window": 80, "kind": "stuck", "channel": 0, "count": 30, "t_s": 10.9}]
    cap = timeline_caption(res)
    assert "None" not in cap and "machine fault" not in cap
    assert "sensor fault stuck reported 8.1-10.9 s" in cap and "no stop" in cap
    res.fault_at_s = 20.0
    res.stops = [{"window": 170, "t_s": 21.5, "health": 0.9}]
    assert "machine fault at 20 s" in timeline_caption(res)


def test_figures_give_the_worst_case_over_sessions() -> None:
    a = {"duration_s": 40.0, "detection_latency_s": 1.23456, "false_stops": 0, "lost": 1,
         "heap_free_min": 24000, "latency_us_max": 900, "windows": 300}
    b = {"duration_s": 40.0, "detection_latency_s": 2.5, "false_stops": 1, "lost": 0,
         "heap_free_min": 23000, "latency_us_max": 700, "windows": 300}
    f = figures([("s1", a), ("s2", b)])
    assert f["detection_latency_s"] == 2.5 and f["false_stops"] == 1 and f["lost"] == 1
    assert f["heap_free_min"] == 23000 and f["latency_us_max"] == 900
    assert f["simulated_s"] == 80.0 and f["sessions"][0]["detection_latency_s"] == 1.235
    assert figures([]) == {}


def test_criteria_from_marker_or_module_docstring() -> None:
    mod = types.SimpleNamespace(__doc__="Title.\n\nPass: zero stops,\n  zero lost.\n\nMore.")
    item = types.SimpleNamespace(module=mod, get_closest_marker=lambda name: None)
    assert criteria_of(item) == "Pass: zero stops, zero lost."
    mark = types.SimpleNamespace(args=("stop within 15 s",))
    item.get_closest_marker = lambda name: mark
    assert criteria_of(item) == "stop within 15 s"


def test_summary_is_interrupted_until_finished(tmp_path) -> None:
    path = tmp_path / "summary.json"
    s = RunSummary(path, {"board": "virtual"})
    first = json.loads(path.read_text())
    assert first["interrupted"] is True and first["complete"] is False  # as a kill leaves it
    s.scenario({"name": "t", "outcome": "passed"})
    assert json.loads(path.read_text())["counts"] == {"passed": 1}
    s.finish(0, None)
    done = json.loads(path.read_text())
    assert done["complete"] and done["interrupted"] is False and done["wall_s"] is not None
    s.finish(2, "interrupted by Ctrl-C (KeyboardInterrupt)")
    assert json.loads(path.read_text())["interrupted_reason"].endswith("(KeyboardInterrupt)")


def test_report_figures_cross_to_the_xdist_controller() -> None:
    """A numpy figure in user_properties killed the xdist worker mid-test (execnet cannot send
    numpy scalars): every figure is made plain before the report leaves the worker."""
    import execnet
    import numpy as np

    from hil_tests.plugin import plain

    figures = [np.float64(1.25), np.int64(7), np.bool_(True), 3, 2.5, "x", None, True, {1, 2}]
    flat = plain(figures)
    assert flat == [1.25, 7, True, 3, 2.5, "x", None, True, "{1, 2}"]
    assert [type(v) for v in flat[:3]] == [float, int, bool]
    nested = plain({"run": {"lag": np.int64(3), "t": [np.float32(0.5)]}, "props": [("k", np.int8(1))]})
    assert nested == {"run": {"lag": 3, "t": [0.5]}, "props": [("k", 1)]}
    assert type(nested["run"]["lag"]) is int and type(nested["props"][0][1]) is int
    execnet.dumps(flat)  # raises DumpError on any numpy scalar
    execnet.dumps(nested)
