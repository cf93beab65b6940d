"""The deploy gate: a run worse than the board's is refused with the figures, --force deploys it,
a better one is allowed; which run is on the board is known from its model's sha256."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from edgeloop.gate import GateRefused, accuracy, compare, run_model_sha

pytestmark = pytest.mark.filterwarnings("ignore")


def _recs(folder: Path):
    from trainer.config import load_run
    from trainer.data import load_recordings

    return load_recordings(folder, load_run(folder.parent / "runs" / "shipped"))


def test_compare_scores_both_sets_and_refuses_a_worse_run(loop) -> None:
    res = compare(loop["bad"], loop["shipped"])
    assert not res.allowed
    orig = res.score("original test")
    assert orig is not None and orig.delta < 0 and orig.windows > 0 and orig.recordings == 5
    msg = res.message()
    assert f"refused: {loop['bad']} is worse than the deployed run {loop['shipped']}" in msg
    assert f"original test set by {-orig.delta:.3f}" in msg and "--force" in msg
    assert f"new {orig.new:.3f} vs deployed {orig.deployed:.3f} ({orig.delta:+.3f})" in msg
    assert res.score("field") is None and "no held-out field set" in msg  # one source only


def test_retrained_run_recovers_the_field_and_keeps_the_original(loop) -> None:
    """The retrained run is scored on the field windows it held out, the shipped run on the
    same ones: drift that hurt the shipped model is recovered; the base test set is the one the
    shipped run held out, and the retrained run never trained on it."""
    res = compare(loop["retrained"], loop["shipped"], tolerance=0.05)
    field, orig = res.score("field"), res.score("original test")
    assert field is not None and orig is not None
    assert "held-out split of" in field.where and str(loop["field"]) in field.where
    assert field.new > field.deployed + 0.2, res.message()
    assert orig.new >= orig.deployed - 0.05, res.message()
    rep = json.loads((loop["retrained"] / "report.json").read_text())
    held = rep["sources"][1]["split"]["test"]
    assert field.recordings == len(held) and held
    # the figure is the run's int8 accuracy on exactly those recordings
    from trainer.config import load_run
    from trainer.data import load_recordings

    recs = [r for r in load_recordings(loop["field"], load_run(loop["retrained"]))
            if str(Path(r.group).relative_to(loop["field"])) in held]
    assert accuracy(loop["retrained"], recs)[0] == pytest.approx(field.new)


def test_gate_data_that_the_run_trained_on_is_refused(loop) -> None:
    with pytest.raises(GateRefused, match="in .*training data; the field set must be held out"):
        compare(loop["retrained"], loop["shipped"], gate_data=[loop["field"]])


def _deploy(args: list[str], board: Path):
    from typer.testing import CliRunner

    from edgeloop.cli import app

    return CliRunner().invoke(app, ["deploy", *map(str, args), "--board", "virtual", "--dir",
                                    str(board), "--json"])


def _board_sha(board: Path) -> str:
    import hashlib

    return hashlib.sha256((board / "model.elb").read_bytes()).hexdigest()


def test_cli_gate_refuses_forces_and_allows(loop, tmp_path) -> None:
    board = tmp_path / "vb"
    first = _deploy([loop["shipped"]], board)
    assert first.exit_code == 0, first.output
    gate = json.loads(first.output)["gate"]
    assert gate["allowed"] and "no model yet" in gate["reason"]
    record = json.loads((board / "run.json").read_text())
    assert record["model_sha256"] == run_model_sha(loop["shipped"]) == _board_sha(board)

    refused = _deploy([loop["bad"], "--gate-data", loop["holdout"]], board)
    assert refused.exit_code != 0
    msg = str(refused.exception) if refused.exception else refused.output
    assert f"worse than the deployed run {loop['shipped']}" in msg, msg
    figures = re.findall(r"(original test|field) set \(.*?\): new ([\d.]+) vs deployed "
                         r"([\d.]+) \(([-+][\d.]+)\)", msg)
    assert {f[0] for f in figures} == {"original test", "field"}, msg
    for _, new, old, delta in figures:
        assert float(delta) == pytest.approx(float(new) - float(old), abs=0.0015)
    assert _board_sha(board) == run_model_sha(loop["shipped"])  # nothing was copied

    forced = _deploy([loop["bad"], "--force", "--gate-data", loop["holdout"]], board)
    assert forced.exit_code == 0, forced.output
    gate = json.loads(forced.output)["gate"]
    assert gate["forced"] and not gate["allowed"] and gate["reason"].startswith("forced past")
    assert {s["set"] for s in gate["sets"]} == {"original test", "field"}
    assert _board_sha(board) == run_model_sha(loop["bad"])
    assert json.loads((board / "run.json").read_text())["gate"]["forced"] is True

    allowed = _deploy([loop["retrained"]], board)  # vs the forced bad run, found by run.json
    assert allowed.exit_code == 0, allowed.output
    gate = json.loads(allowed.output)["gate"]
    assert gate["allowed"] and gate["deployed_run"] == str(loop["bad"])
    assert all(s["delta"] >= 0 for s in gate["sets"]) and len(gate["sets"]) == 2
    assert _board_sha(board) == run_model_sha(loop["retrained"])


def test_a_board_model_no_run_on_disk_has_is_refused(loop, tmp_path) -> None:
    board = tmp_path / "vb"
    assert _deploy([loop["shipped"]], board).exit_code == 0
    (board / "run.json").unlink()  # e.g. pushed over the air: the board cannot say
    elsewhere = tmp_path / "other" / "bad"
    shutil.copytree(loop["bad"], elsewhere)
    res = _deploy([elsewhere], board)
    assert res.exit_code != 0
    assert "that no run on disk has" in str(res.exception) and "--baseline" in str(res.exception)
    wrong = _deploy([elsewhere, "--baseline", loop["retrained"]], board)
    assert "is not the board's model" in str(wrong.exception)
    named = _deploy([elsewhere, "--baseline", loop["shipped"]], board)  # now it compares
    assert named.exit_code != 0 and "original test set by" in str(named.exception)
