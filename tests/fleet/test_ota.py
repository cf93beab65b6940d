"""Over-the-air updates on a real virtual board through a real broker: a signed bundle is taken;
tampered, unsigned, truncated and replayed ones are refused with the old model still running; a
push cut off mid-transfer changes nothing; a board killed at each moment of the swap boots with
the old model or the new one, never neither."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from fleet.kit import fc_model

from edgeloop.fleet.push import Pusher
from edgeloop.fleet.signing import generate_key, make_bundle, read_bundle


def _running(board, version: int | None = None, timeout: float = 30.0, since: int = 0) -> None:  # type: ignore[no-untyped-def]
    """The board's app is running (a status line on its console after its last start, which
    came after console offset `since`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = board.console(1 << 20)[since:]
        tail = out[out.rfind('"event": "start"'):] if '"event": "start"' in out else ""
        if '"w": ' in tail and (version is None or board.installed_version() == version):
            return
        assert board.alive, board.console()
        time.sleep(0.05)
    raise AssertionError(f"board not running: {board.console()}")


def _model_sha(board) -> str:  # type: ignore[no-untyped-def]
    return hashlib.sha256((board.root / "model.elb").read_bytes()).hexdigest()


@pytest.fixture
def pusher(fleet, broker):  # type: ignore[no-untyped-def]
    p = Pusher(fleet, broker.address, ack_timeout=3, result_timeout=30, health_timeout=20)
    yield p
    p.close()


def test_signed_update_then_every_forgery_refused(fleet, make_board, pusher) -> None:  # type: ignore[no-untyped-def]
    # on the selected virtual board (EDGELOOP_MICROPYTHON; make test-esp32sem: the ESP32's
    # arithmetic, where the board's Ed25519 and CRC run in 32-bit words)
    board = make_board("d1").start()
    _running(board)
    pem = fleet.private_key_pem()
    good = make_bundle(fc_model(2), 5, pem, run="m2")
    r = pusher.update("d1", good.data, 5)
    assert r.ok, (r, board.console())
    assert board.installed_version() == 5 and r.verify_ms is not None
    new_sha = _model_sha(board)
    assert new_sha == good.manifest["sha256"]

    manifest, mbytes, sig, model = read_bundle(make_bundle(fc_model(3), 6, pem).data)
    head = good.data[:8]
    other_pem, _ = generate_key()

    def rebuild(mb: bytes, s: bytes, m: bytes) -> bytes:
        return b"ELOT" + head[4:6] + len(mb).to_bytes(2, "little") + mb + s + m

    flipped = bytearray(model)
    flipped[len(flipped) // 2] ^= 0x40
    forged_manifest = mbytes.replace(b'"version":6', b'"version":9')
    variants = {
        "tampered model": (rebuild(mbytes, sig, bytes(flipped)), "crc32 mismatch"),
        "tampered manifest": (rebuild(forged_manifest, sig, model), "signature"),
        "unsigned": (rebuild(mbytes, bytes(64), model), "signature"),
        "signed by another key": (make_bundle(fc_model(3), 7, other_pem).data, "signature"),
        "truncated": (rebuild(mbytes, sig, model[:-100]), "size differs"),
        "replayed": (good.data, "replay"),
        "older version": (make_bundle(fc_model(4), 4, pem).data, "replay"),
    }
    for what, (data, reason) in variants.items():
        r = pusher.update("d1", data, 99)
        assert not r.ok and reason in r.reason, (what, r)
        assert board.installed_version() == 5, what
        assert _model_sha(board) == new_sha, what
        _running(board, 5)
    assert board.alive


def test_push_cut_mid_transfer_changes_nothing(fleet, make_board, pusher) -> None:  # type: ignore[no-untyped-def]
    board = make_board("d1").start()
    _running(board)
    before = _model_sha(board)
    b = make_bundle(fc_model(2), 1, fleet.private_key_pem())
    pusher.transfer("d1", b.data, xid=77, stop_after=1024)  # the host dies after one chunk
    time.sleep(1.0)
    assert _model_sha(board) == before and board.installed_version() == 0
    _running(board)
    r = pusher.update("d1", b.data, 1)  # the next push starts over and succeeds
    assert r.ok, (r, board.console())
    assert board.installed_version() == 1


@pytest.mark.parametrize("phase", ["verify", "swap", "after_old", "after_new", "committed"])
def test_board_killed_during_swap_boots_old_or_new(fleet, make_board, pusher, phase) -> None:  # type: ignore[no-untyped-def]
    board = make_board("d1", ota_pause_at=phase).start()
    _running(board)
    old = _model_sha(board)
    b = make_bundle(fc_model(2), 3, fleet.private_key_pem())
    pusher.transfer("d1", b.data, xid=5)
    board.wait_console(f'"ota_paused", "phase": "{phase}"', timeout=30)
    board.kill()  # power cut at this moment of the update
    cfg = json.loads((board.root / "config.json").read_text())
    cfg.pop("ota_pause_at")
    (board.root / "config.json").write_text(json.dumps(cfg))
    since = len(board.console(1 << 20))
    board.start()
    _running(board, since=since)
    sha = _model_sha(board)
    if phase == "committed":
        assert sha == b.manifest["sha256"] and board.installed_version() == 3
    else:
        assert sha == old and board.installed_version() == 0
    leftovers = {p.name for p in board.root.iterdir()} & {"model.old", "model.new", "ota.json"}
    assert not leftovers


def test_failed_self_test_rolls_back_and_stops_the_rollout(fleet, make_board, pusher) -> None:  # type: ignore[no-untyped-def]
    from edgeloop.fleet.signing import test_vector

    boards = [make_board(d).start() for d in ("d1", "d2")]
    for b in boards:
        _running(b)
    old = [_model_sha(b) for b in boards]
    model = fc_model(2)
    x, y = test_vector(model)
    wrong = bytes([(y[0] + 1) & 0xFF]) + y[1:]  # signed, intact, but the model does not give it
    bad = make_bundle(model, 2, fleet.private_key_pem(), vector=(x, wrong))
    res = pusher.rollout(["d1", "d2"], bad.data, 2, canary=1)
    assert res.stopped and res.skipped == ["d2"]
    assert [r.device for r in res.results] == ["d1"]
    assert "ota_failed" in res.results[0].reason and "self-test" in res.results[0].reason
    for b, sha in zip(boards, old, strict=True):
        _running(b, 0)
        assert _model_sha(b) == sha and b.installed_version() == 0


def test_app_failing_on_the_new_model_rolls_back_and_stops_the_rollout(fleet, make_board, pusher) -> None:  # type: ignore[no-untyped-def]
    from fleet.kit import fc_model_inputs

    boards = [make_board(d).start() for d in ("d1", "d2")]
    for b in boards:
        _running(b)
    old = _model_sha(boards[0])
    # Signed, intact, passes its self-test, but 97 inputs are no whole window of 3 channels:
    # the app refuses to start on it.
    bad = make_bundle(fc_model_inputs(97, 1), 4, fleet.private_key_pem())
    res = pusher.rollout(["d1", "d2"], bad.data, 4, canary=1)
    assert res.stopped and res.skipped == ["d2"]
    r = res.results[0]
    assert not r.ok and r.stage == "health" and r.rolled_back, r
    _running(boards[0], 0)
    assert _model_sha(boards[0]) == old
    # the rolled-back board takes a good update again
    good = make_bundle(fc_model(2), 5, fleet.private_key_pem())
    r2 = pusher.update("d1", good.data, 5)
    assert r2.ok, (r2, boards[0].console())


def test_host_ordered_rollback(fleet, make_board, pusher) -> None:  # type: ignore[no-untyped-def]
    board = make_board("d1").start()
    _running(board)
    old = _model_sha(board)
    r = pusher.update("d1", make_bundle(fc_model(2), 1, fleet.private_key_pem()).data, 1)
    assert r.ok, r
    assert pusher.rollback("d1")
    _running(board, 0)
    assert _model_sha(board) == old and board.installed_version() == 0
