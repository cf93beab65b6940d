"""The deploy gate: a retrained run replaces the board's model only if it is no worse.

Which run is on the board: the sha256 of the board's model.elb (computed on the board) is looked
up among runs on disk by their RUN/manifest.json: the run the board's run.json names (written by
every `edgeloop deploy`; trusted only if its sha256 is the board's), `--baseline RUN`, then the
runs beside the new one (its parent folder). A board whose model no run on disk has is refused
unless --force: nothing to compare with is not "no worse".

The two sets both runs are scored on, int8 exactly as the board computes (host features +
converters.golden on each run's own bundle, so each model sees its own preprocessing):
- the original test set: the recordings the deployed run held out for its test split
  (RUN/report.json "sources"), so the new run is checked on what the shipped one was;
- the held-out field set: `--gate-data FIELD` (labelled windows, e.g. from `edgeloop collect
  --field` + `edgeloop label`), or by default the test split of the new run's further sources
  (`edgeloop train --data base --data field`: the field recordings it never trained on).
A recording either run trained on is never scored (the gate says so and refuses: the comparison
would flatter it). Worse on either set by more than the tolerance (default 0: any loss) refuses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeloop.errors import EdgeLoopError

RUN_RECORD = "run.json"  # on the board: which run was deployed, and what the gate measured


class GateRefused(EdgeLoopError):
    """The new run is worse than the deployed one (or cannot be compared): not deployed."""


@dataclass
class SetScore:
    """Both runs' int8 accuracy on one set of recordings."""

    name: str  # "field" | "original test"
    where: str  # where the recordings came from, for people
    recordings: int
    windows: int
    new: float
    deployed: float

    @property
    def delta(self) -> float:
        return self.new - self.deployed

    def line(self) -> str:
        return (f"{self.name} set ({self.where}; {self.windows} windows of {self.recordings} "
                f"recordings): new {self.new:.3f} vs deployed {self.deployed:.3f} "
                f"({self.delta:+.3f})")

    def to_json(self) -> dict:
        return {"set": self.name, "where": self.where, "recordings": self.recordings,
                "windows": self.windows, "new_accuracy": round(self.new, 4),
                "deployed_accuracy": round(self.deployed, 4), "delta": round(self.delta, 4)}


@dataclass
class GateResult:
    allowed: bool
    reason: str
    new_run: Path
    deployed_run: Path | None = None
    deployed_sha256: str | None = None
    sets: list[SetScore] = field(default_factory=list)
    forced: bool = False
    notes: list[str] = field(default_factory=list)

    def score(self, name: str) -> SetScore | None:
        return next((s for s in self.sets if s.name == name), None)

    def message(self) -> str:
        lines = [self.reason] + [f"  {s.line()}" for s in self.sets]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])

    def to_json(self) -> dict:
        return {"allowed": self.allowed, "forced": self.forced, "reason": self.reason,
                "new_run": str(self.new_run),
                "deployed_run": str(self.deployed_run) if self.deployed_run else None,
                "deployed_sha256": self.deployed_sha256,
                "sets": [s.to_json() for s in self.sets], "notes": list(self.notes)}


# -- runs --------------------------------------------------------------------------------------
def run_model_sha(run: Path) -> str | None:
    """The sha256 of the bundle a run deploys, from its manifest (None: no manifest/bundle)."""
    try:
        return json.loads((Path(run) / "manifest.json").read_text())["files"].get("model.elb")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _report(run: Path) -> dict:
    try:
        return json.loads((Path(run) / "report.json").read_text())
    except (OSError, ValueError) as exc:
        raise EdgeLoopError(f"{run}/report.json: cannot read it ({exc}); is {run} a run "
                            "folder written by `edgeloop train`?") from None


def find_run(sha: str, candidates: list[Path]) -> Path | None:
    """The first run folder among the candidates (runs, or folders of runs) deploying `sha`."""
    seen: set[Path] = set()
    for c in candidates:
        c = Path(c)
        if not c.is_dir():
            continue
        for run in [c] + sorted(p for p in c.iterdir() if p.is_dir()):
            key = run.resolve()
            if key in seen:
                continue
            seen.add(key)
            if run_model_sha(run) == sha:
                return run
    return None


# -- scoring -------------------------------------------------------------------------------------
def _bundle(run: Path) -> bytes:
    if (run / "model.elb").is_file():
        return (run / "model.elb").read_bytes()
    from converters import convert_tflite

    return convert_tflite((run / "model_int8.tflite").read_bytes()).bundle


def accuracy(run: Path, recs: list) -> tuple[float, int]:
    """int8 accuracy of a run on labelled recordings (windowed by the run's own config), as the
    board computes it; (accuracy, windows). An anomaly run is right when it alarms exactly on
    the windows that are not of its healthy class."""
    from converters.golden import run_bundle
    from trainer.config import load_run
    from trainer.data import window_recordings
    from trainer.features import compute_features, quantize_input

    run = Path(run)
    cfg = load_run(run)
    dev = json.loads((run / "config.json").read_text())
    labels = list(dev.get("labels") or _report(run)["classes"])
    extra = sorted({r.label for r in recs} - set(labels))
    w = window_recordings(recs, cfg, tuple(labels + extra))
    if len(w) == 0:
        raise EdgeLoopError("no windows to score")
    xq = quantize_input(compute_features(w.x, cfg.features, cfg.calibration.shift),
                        cfg.calibration)
    bundle = _bundle(run)
    from edgeloop.infer import model_io

    y = np.asarray(run_bundle(bundle, xq.reshape(len(xq), *model_io(bundle)["input_shape"])))
    y = y.reshape(len(xq), -1)
    if cfg.task == "anomaly":
        thr = int(dev["decision"]["threshold_q"])
        healthy = labels.index(cfg.healthy)
        right = (y[:, 0] > thr) == (w.y != healthy)
    else:
        right = y.argmax(1) == w.y  # an extra class is never predicted: always wrong
    return float(right.mean()), len(w)


def _key(source_abs: str, rel: str) -> str:
    """One recording across runs: the resolved file (or NPZ#group)."""
    if "#" in rel and not rel.endswith(".csv"):
        return f"{Path(source_abs).resolve()}{rel}"
    return str((Path(source_abs) / rel).resolve())


def _split_keys(report: dict, splits: tuple[str, ...]) -> set[str]:
    return {_key(s["abs"], g) for s in report.get("sources", ()) for sp in splits
            for g in s["split"][sp]}


def _load_held_out(report: dict, cfg, sources: list[dict]) -> tuple[list, list[str]]:
    """The test-split recordings of the given report sources, reloaded from their folders."""
    from trainer.data import load_recordings
    from trainer.errors import TrainerError
    from trainer.sources import relative_group

    recs, where = [], []
    for s in sources:
        wanted = set(s["split"]["test"])
        if not wanted:
            continue
        path = s["abs"] if Path(s["abs"]).exists() else s["path"]
        if not Path(path).exists():
            raise GateRefused(f"the data {s['path']} of the gate's comparison is gone: give it "
                              "back, or deploy with --force")
        try:
            loaded = load_recordings(path, cfg)
        except TrainerError as exc:
            raise GateRefused(f"cannot read {path} for the gate: {exc}") from None
        recs += [r for r in loaded if relative_group(r.group, path) in wanted]
        where.append(s["path"])
    return recs, where


def _original_test(deployed: Path, cfg) -> tuple[list, str, set[str]]:
    rep = _report(deployed)
    if rep.get("sources"):
        recs, where = _load_held_out(rep, cfg, rep["sources"])
        keys = _split_keys(rep, ("test",))
    else:  # a run from before sources were recorded: its split is deterministic, redo it
        from trainer.data import load_splits

        sp = load_splits(rep["data"], cfg, seed=int(rep.get("seed", 0)))
        recs, where = _recs_of(sp.test, rep["data"], cfg), [rep["data"]]
        keys = {str(Path(g).resolve()) for g in set(sp.test.groups.tolist())}
    return recs, f"{deployed}'s test split of {' + '.join(where)}", keys


def _recs_of(windows, data: str, cfg) -> list:
    from trainer.data import load_recordings

    groups = set(windows.groups.tolist())
    return [r for r in load_recordings(data, cfg) if r.group in groups]


def compare(new_run: Path, deployed_run: Path, gate_data: list[Path] | None = None,
            tolerance: float = 0.0) -> GateResult:
    """Score both runs on the original test set and the held-out field set; the verdict."""
    from trainer.config import load_run
    from trainer.data import load_recordings
    from trainer.errors import TrainerError

    new_run, deployed_run = Path(new_run), Path(deployed_run)
    new_rep = _report(new_run)
    try:
        cfg_new, cfg_old = load_run(new_run), load_run(deployed_run)
    except TrainerError as exc:
        raise EdgeLoopError(str(exc)) from None
    if tuple(cfg_new.channels) != tuple(cfg_old.channels):
        raise GateRefused(f"{new_run} reads channels {list(cfg_new.channels)} but the deployed "
                          f"run {deployed_run} {list(cfg_old.channels)}: they cannot be compared "
                          "on the same recordings; deploy with --force to replace it anyway")
    trained_new = _split_keys(new_rep, ("train", "val"))
    res = GateResult(True, "", new_run, deployed_run, run_model_sha(deployed_run))
    sets: list[tuple[str, str, list]] = []

    recs, where, keys = _original_test(deployed_run, cfg_old)
    leak = keys & trained_new
    if leak:
        raise GateRefused(
            f"{new_run} trained on {len(leak)} recording(s) of the deployed run's test set (e.g. "
            f"{sorted(leak)[0]}): the comparison would flatter it. Retrain with the deployed "
            f"run's data first and its seed ({_report(deployed_run).get('seed')}), or --force")
    if recs:
        sets.append(("original test", where, recs))

    if gate_data:
        field_recs: list = []
        for d in gate_data:
            try:
                got = load_recordings(d, cfg_old)
            except TrainerError as exc:
                raise GateRefused(f"--gate-data {d}: {exc}") from None
            seen = {str(Path(r.group).resolve()) for r in got} & trained_new
            if seen:
                raise GateRefused(f"--gate-data {d}: {len(seen)} recording(s) (e.g. "
                                  f"{sorted(seen)[0]}) are in {new_run}'s training data; the "
                                  "field set must be held out (give other windows, or --force)")
            field_recs += got
        sets.append(("field", " + ".join(map(str, gate_data)), field_recs))
    else:
        further = new_rep.get("sources", [])[1:]
        field_recs, where_f = _load_held_out(new_rep, cfg_new, further)
        if field_recs:
            sets.append(("field", f"{new_run}'s held-out split of {' + '.join(where_f)}",
                         field_recs))
        else:
            res.notes.append("no held-out field set: the new run has no further --data source "
                             "with a test split; give --gate-data FIELD to compare on one")

    for name, where, recs in sets:
        try:
            acc_new, n = accuracy(new_run, recs)
            acc_old, _ = accuracy(deployed_run, recs)
        except TrainerError as exc:
            raise GateRefused(f"{name} set: {exc}") from None
        groups = len({r.group for r in recs})
        res.sets.append(SetScore(name, where, groups, n, acc_new, acc_old))
    worse = [s for s in res.sets if s.delta < -tolerance]
    if worse:
        res.allowed = False
        res.reason = (f"refused: {new_run} is worse than the deployed run {deployed_run} on the "
                      + " and ".join(f"{s.name} set by {-s.delta:.3f}" for s in worse)
                      + " (accuracy); deploy it anyway with --force")
    elif not res.sets:
        res.allowed = False
        res.reason = (f"refused: nothing to compare {new_run} with the deployed run "
                      f"{deployed_run} on (its test data is gone); deploy with --force")
    else:
        res.reason = (f"allowed: {new_run} is no worse than the deployed run {deployed_run} "
                      "on " + " and ".join(f"the {s.name} set" for s in res.sets))
    return res


# -- the board -----------------------------------------------------------------------------------
def board_model(transport) -> tuple[str | None, dict | None]:
    """The sha256 of the board's model.elb (None: no model) and its run.json (None: none)."""
    from edgeloop.link.deploy import MODEL_PATH
    from edgeloop.link.transport import LinkError

    hashes = transport.fs_hashes([MODEL_PATH, RUN_RECORD])
    record = None
    if hashes.get(RUN_RECORD):
        try:
            record = json.loads(transport.fs_read(RUN_RECORD))
        except (LinkError, ValueError, UnicodeDecodeError):
            record = None
    return hashes.get(MODEL_PATH), record if isinstance(record, dict) else None


def check_gate(transport, new_run: Path, baseline: Path | None = None,
               gate_data: list[Path] | None = None, force: bool = False,
               tolerance: float = 0.0) -> GateResult:
    """Decide whether `new_run` may replace the board's model; raises GateRefused unless it may
    (or `force`, which deploys anyway and keeps the figures, when there are any)."""
    new_run = Path(new_run)
    sha, record = board_model(transport)
    new_sha = run_model_sha(new_run)
    if sha is None:
        return GateResult(True, "allowed: the board has no model yet", new_run)
    if sha == new_sha:
        return GateResult(True, f"allowed: the board already runs {new_run}'s model", new_run,
                          new_run, sha)
    candidates: list[Path] = []
    if baseline is not None:
        if run_model_sha(baseline) != sha:
            raise GateRefused(
                f"--baseline {baseline} is not the board's model (the board runs model.elb "
                f"sha256 {sha[:12]}…, {baseline} deploys {(run_model_sha(baseline) or 'none')[:12]}"
                "…): give the run that was deployed, or --force")
        candidates.append(Path(baseline))
    if record and record.get("model_sha256") == sha and record.get("run"):
        candidates.append(Path(record["run"]))
    candidates.append(new_run.resolve().parent)
    deployed = find_run(sha, candidates)
    if deployed is None:
        result = GateResult(False, (
            f"refused: the board runs a model (model.elb sha256 {sha[:12]}…) that no run on disk "
            f"has (looked in {', '.join(str(c) for c in candidates)}), so {new_run} cannot be "
            "compared with it: give the deployed run with --baseline RUN, or --force"), new_run,
            None, sha)
    else:
        try:
            result = compare(new_run, deployed, gate_data, tolerance)
        except GateRefused as exc:
            if not force:
                raise
            result = GateResult(False, f"refused: {exc}", new_run, deployed, sha)
    if not result.allowed:
        if not force:
            raise GateRefused(result.message())
        result.forced = True
        result.reason = result.reason.replace("refused:", "forced past the gate:", 1)
    return result


def write_record(transport, run: Path, gate: GateResult | None) -> None:
    """run.json on the board: which run holds the board now (and what the gate measured)."""
    import time

    rec = {"run": str(Path(run).resolve()), "model_sha256": run_model_sha(run),
           "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "gate": gate.to_json() if gate is not None else None}
    transport.fs_put(json.dumps(rec, indent=1).encode(), RUN_RECORD + ".tmp")
    transport.fs_rename(RUN_RECORD + ".tmp", RUN_RECORD)
