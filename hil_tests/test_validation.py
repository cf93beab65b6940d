"""On-board validation: the board's int8 outputs equal the golden executor's, window by window.

Pass: at least 500 windows answered, every one of them bit-identical to converters.golden on
the int8 input the host computes from the very samples it streamed (trainer.features).
"""

from __future__ import annotations

import numpy as np

MIN_WINDOWS = 500


def _bundle(bench, deployed, hil_run) -> bytes:
    root = deployed["frames"]
    if root is not None:
        return (root / "model.elb").read_bytes()
    from converters import convert_tflite

    tfl = (hil_run / "model_int8.tflite").read_bytes()
    return convert_tflite(tfl, heap_limit=bench.profile.heap_bytes).bundle


def test_int8_outputs_equal_golden(board, hil, hil_run, bench, deployed) -> None:
    from converters.golden import run_bundle
    from trainer.config import load_run
    from trainer.features import compute_features, quantize_input
    from trainer.twins import RotatingMachine

    # healthy, then a bearing fault: outputs cover both classes and the decision boundary
    twin = RotatingMachine(seed=21, time_to_failure_s=300.0)
    res = hil.run(board, twin, 70.0, fault_at_s=30.0, keep_samples=True)
    assert res.error == "", res.error
    ok = [w for w in res.windows if w.status == "ok"]
    assert len(ok) >= MIN_WINDOWS, res.summary()

    cfg = load_run(hil_run)
    cal = cfg.calibration
    W, S = res.window, res.stride
    counts = np.stack([res.samples[w.k * S : w.k * S + W] for w in ok])
    xq = quantize_input(compute_features(counts, cfg.features, cal.shift), cal)
    golden = np.asarray(run_bundle(_bundle(bench, deployed, hil_run), xq)).reshape(len(ok), -1)
    on_board = np.array([w.outputs for w in ok], dtype=np.int8)
    np.testing.assert_array_equal(on_board, golden.astype(np.int8))
    # and the outputs are not trivially constant: both classes were seen
    assert len({int(np.argmax(o)) for o in on_board}) >= 2
