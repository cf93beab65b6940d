"""Decision rule on the virtual board: N of the last M windows, thresholds in int8, latching."""

from __future__ import annotations

import json

import pytest

SCRIPT = """
import json
from decision import Decision
d = Decision({n_out}, {scale}, {zp}, {cfg})
out = []
for o in {outputs}:
    out.append([d.update(bytearray(v & 0xFF for v in o)), d.cls, d.score, d.positive])
print(json.dumps(out))
"""


def run(board, outputs, cfg, n_out=3, scale=1 / 256, zp=-128):
    code = SCRIPT.format(n_out=n_out, scale=scale, zp=zp, cfg=repr(cfg), outputs=outputs)
    return json.loads(board.run(code).check("decision").stdout)


def test_n_of_m_with_fault_classes(fw_board) -> None:
    fault, normal, weak = [-128, 100, -100], [120, -120, -128], [-128, -20, -110]  # 0.42
    outs = [fault, normal, fault, fault, normal, normal, normal, fault]
    cfg = {"fault_classes": [1, 2], "threshold": 0.8, "n": 2, "m": 3}
    got = run(fw_board, outs + [weak], cfg)
    assert [g[0] for g in got] == [False, False, True, True, True, False, False, False, False]
    assert [g[1] for g in got][:2] == [1, 0]
    assert got[0][2] == 100 and got[-1][3] is False  # 0.42 < 0.8: not positive


def test_stop_action_latches(fw_board) -> None:
    fault, normal = [-128, 100, -100], [120, -120, -128]
    cfg = {"fault_classes": [1], "threshold_q": 50, "n": 1, "m": 2, "action": "stop"}
    got = run(fw_board, [normal, fault, normal, normal, normal], cfg)
    assert [g[0] for g in got] == [False, True, True, True, True]


def test_anomaly_score_model(fw_board) -> None:
    # trainer's anomaly config: one output, threshold_q in int8, fault_classes name the labels
    cfg = {"anomaly": True, "threshold_q": 10, "fault_classes": [1, 2, 3], "n": 2, "m": 2}
    got = run(fw_board, [[-50], [20], [9], [10], [11]], cfg, n_out=1, scale=0.05, zp=-128)
    assert [g[3] for g in got] == [False, True, False, True, True]
    assert [g[0] for g in got] == [False, False, False, False, True]


def test_bad_rule_is_refused(fw_board) -> None:
    with pytest.raises(Exception, match="1 <= n <= m"):
        run(fw_board, [], {"n": 4, "m": 3})
    with pytest.raises(Exception, match="alarm class 5 out of range"):
        run(fw_board, [], {"fault_classes": [5]})
