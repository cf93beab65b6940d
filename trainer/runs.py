"""Run folders: written whole or not at all, and bound together by a manifest.

A run is written into a hidden staging folder beside its destination and moved into place only
once complete, so Ctrl-C or a failure never leaves a run half old, half new (nor an empty folder).
RUN/manifest.json records the sha256 of every file the board depends on (the .tflite, the bundle,
config.json, calibration.json) and the model's int8 input/output quantization; `check_run` refuses
a run whose files no longer match it, or whose config.json was made for another model. Only the
standard library here: deploy, convert and hil check runs without loading TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from trainer.errors import TrainerError

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
# The files a deployed model depends on; the others (PNGs, model.keras, report) are informative.
BOUND_FILES = ("model_int8.tflite", "model.elb", "config.json", "calibration.json")
RUN_MARKERS = (MANIFEST, "report.json", "model_int8.tflite")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _is_run(folder: Path) -> bool:
    return any((folder / m).is_file() for m in RUN_MARKERS)


def check_destination(out: Path) -> None:
    """A run may replace an earlier run or an empty folder, never a folder of something else."""
    if out.exists() and not out.is_dir():
        raise TrainerError(f"--out {out} is a file; give a folder for the run")
    if out.is_dir() and any(out.iterdir()) and not _is_run(out):
        raise TrainerError(
            f"--out {out} is a non-empty folder that holds no run (no report.json): "
            "give a new folder (a run replaces an earlier run there, and nothing else)"
        )


@contextlib.contextmanager
def staged_folder(out: Path | str) -> Iterator[Path]:
    """Yield a staging folder beside `out`; on success it replaces `out` whole, on any failure
    (Ctrl-C included) it vanishes and `out` is left as it was."""
    out = Path(out)
    made = [d for d in out.absolute().parents if not d.exists()]  # parents this creates
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    stage = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for d in made:  # innermost first; only if still empty
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(stage, out)
    shutil.rmtree(old, ignore_errors=True)


def _remove_stale(out: Path) -> None:
    """Staging folders a killed process (kill -9, power cut) left beside `out`."""
    for p in out.parent.glob(f".{out.name}.partial-*"):
        pid = p.name.rpartition("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def staged_run(out: Path | str) -> Iterator[Path]:
    """A run's staging folder: it may replace an earlier run or an empty folder only."""
    check_destination(Path(out))
    with staged_folder(out) as stage:
        yield stage


def write_manifest(run: Path, quant: dict, sources: list[str] | None = None) -> dict:
    """RUN/manifest.json: hashes of the bound files present, the model's io quantization, and
    the datasets it was trained on (informative: report.json says how each was split)."""
    manifest = {
        "version": MANIFEST_VERSION,
        "files": {f: sha256(run / f) for f in BOUND_FILES if (run / f).is_file()},
        "quant": {k: quant[k] for k in
                  ("input_scale", "input_zero_point", "output_scale", "output_zero_point")},
    }
    if sources:
        manifest["sources"] = list(sources)
    (run / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def run_folder_of(source: Path | str) -> Path | None:
    """The run folder a path belongs to (the folder itself, or the folder of a file in it)."""
    p = Path(source)
    folder = p if p.is_dir() else p.parent
    return folder if (folder / MANIFEST).is_file() else None


def check_run(source: Path | str) -> dict | None:
    """Refuse a run whose bound files changed since training, or whose config is another model's.

    `source` is a run folder or a file inside one; returns the manifest (None: no manifest, e.g. a
    run from an older EdgeLoop, checked only by what deploy checks itself).
    """
    run = run_folder_of(source)
    if run is None:
        return None
    path = run / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        files, quant = dict(manifest["files"]), dict(manifest["quant"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TrainerError(f"{path}: unreadable run manifest ({exc}); retrain the run") from None
    for name, digest in files.items():
        f = run / name
        if not f.is_file():
            raise TrainerError(f"{f}: missing, but {path} lists it: the run is incomplete; "
                               "retrain it (`edgeloop train ... --out " f"{run}`)")
        if sha256(f) != digest:
            raise TrainerError(
                f"{f} is not the file this run was trained with ({path} has another sha256): "
                f"the model and its config.json may not belong together; retrain into {run}"
            )
    cfg_path = run / "config.json"
    if cfg_path.is_file():
        try:
            pre = json.loads(cfg_path.read_text()).get("preprocess", {})
        except ValueError as exc:
            raise TrainerError(f"{cfg_path}: not valid JSON: {exc}") from None
        mismatch = _quant_mismatch(pre, quant)
        if mismatch:
            raise TrainerError(f"{cfg_path}: {mismatch}, but the model was quantized with "
                               f"{quant['input_scale']:g}/{quant['input_zero_point']}: "
                               f"retrain into {run}")
    return manifest


def _quant_mismatch(pre: dict, quant: dict) -> str:
    if "input_scale" not in pre:
        return ""
    s, zp = float(pre["input_scale"]), int(pre.get("input_zero_point", 0))
    if abs(s - float(quant["input_scale"])) > 1e-6 * abs(s) or zp != int(quant["input_zero_point"]):
        return f"input scale/zero point {s:g}/{zp}"
    return ""
