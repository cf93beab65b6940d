"""`edgeloop simulate TWIN --out DIR` and `edgeloop train --data DIR --out RUN`.

simulate writes a labelled CSV dataset (the layout `train` reads) plus an edgeloop.toml for it;
train runs trainer.train and, when the converter is present, also writes RUN/model.elb so the
run folder is deployable as is (`edgeloop deploy RUN`).
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from edgeloop.errors import EdgeLoopError
from edgeloop.resources import examples_dir

EXAMPLE_OF = {"rotating_machine_b": "rotating_machine"}  # twin variant -> its example project


def _trainer_error(exc: Exception) -> EdgeLoopError:
    return EdgeLoopError(str(exc))


def simulate(
    twin: Annotated[str, typer.Argument(
        help="rotating_machine | rotating_machine_b (another plant) | wearable | environment")],
    out: Annotated[Path, typer.Option("--out", "-o", help="dataset folder to write")],
    force: Annotated[
        bool, typer.Option("--force", help="replace what OUT holds (another dataset)")
    ] = False,
    seed: Annotated[int, typer.Option(help="seed: same seed, same data")] = 0,
    per_class: Annotated[int, typer.Option("--per-class", help="recordings per class")] = 20,
    duration: Annotated[
        float | None, typer.Option(help="seconds per recording (default: per twin)")
    ] = None,
) -> None:
    """Write a synthetic labelled dataset: OUT/<label>/<label>.NNNN.csv and OUT/edgeloop.toml."""
    from trainer.errors import TrainerError
    from trainer.runs import staged_folder
    from trainer.twins import TWINS, synthesize, write_csv_dataset

    twin = twin.strip().lower().replace("-", "_")  # `rotating-machine`, as people type it
    if twin not in TWINS:
        raise EdgeLoopError(f"unknown twin {twin!r}; known: {', '.join(TWINS)}")
    if per_class < 3:
        raise EdgeLoopError(f"--per-class must be >= 3 (train/validation/test split by recording),"
                            f" got {per_class}")
    if duration is not None and not duration > 0:  # 0 used to mean "the twin's default"
        raise EdgeLoopError(f"--duration must be > 0 seconds, got {duration:g}")
    if out.exists() and not out.is_dir():
        raise EdgeLoopError(f"--out {out} is a file; give a folder for the dataset")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise EdgeLoopError(
            f"--out {out} already holds files (another dataset would mix with this {twin!r} one "
            "and its edgeloop.toml be overwritten): give an empty folder, or --force to replace it"
        )
    try:
        recs = synthesize(twin, per_class=per_class, duration_s=duration, seed=seed)
        with staged_folder(out) as stage:  # complete or not at all
            write_csv_dataset(recs, stage)
            # examples are named after their twins (a variant shares its kind's project)
            example = examples_dir() / EXAMPLE_OF.get(twin, twin) / "edgeloop.toml"
            if example.is_file():
                shutil.copy(example, stage / "edgeloop.toml")
    except (TrainerError, ValueError) as exc:
        raise _trainer_error(exc) from None
    n = sum(len(r.data) for r in recs)
    Console().print(f"wrote {len(recs)} recordings ({n:,} samples) of {twin!r} to {out}")


def train(
    data: Annotated[
        list[Path], typer.Option("--data", "-d", help="CSV folder, .npz, or sktime:BasicMotions;"
                                 " several --data merge (the first's edgeloop.toml is the config)")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="run folder to write")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="edgeloop.toml (default: DATA/edgeloop.toml)")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="mlp | cnn1d | dscnn | autoencoder")
    ] = None,
    window: Annotated[int | None, typer.Option(help="window size in samples (8..8192, any length)")] = None,
    stride: Annotated[int | None, typer.Option(help="window stride")] = None,
    seed: Annotated[int | None, typer.Option(help="seed: same seed, same model")] = None,
    epochs: Annotated[int | None, typer.Option(help="training epochs")] = None,
    test: Annotated[Path | None, typer.Option(help="explicit test-set folder")] = None,
    no_bundle: Annotated[bool, typer.Option("--no-bundle", help="skip model.elb")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print report.json")] = False,
) -> None:
    """Train, quantize to int8 and report: RUN/model.keras, model_int8.tflite, report.json.

    TensorFlow's own log lines go to RUN/tensorflow.log; the console shows our progress only."""
    from trainer.config import load_config
    from trainer.errors import TrainerError
    from trainer.runs import check_destination
    from trainer.train import check_options
    from trainer.train import train as run_training

    try:  # every option is checked before data is read or TensorFlow loads (~3 s)
        model = check_options(window, stride, epochs, seed, model)
        check_destination(out)
    except TrainerError as exc:
        raise _trainer_error(exc) from None
    for d in data:
        if not d.exists() and not str(d).startswith("sktime:"):
            raise EdgeLoopError(f"--data {d} does not exist")
    if test is not None and not test.exists():
        raise EdgeLoopError(f"--test {test} does not exist")

    # `kill` (SIGTERM) unwinds like Ctrl-C, so the staged run is removed, not left half-written
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def finish(stage: Path, report: dict) -> None:
        if not no_bundle:
            report["bundle"] = _bundle(stage, report)
            (stage / "report.json").write_text(json.dumps(report, indent=2))

    try:
        cfg = load_config(config) if config else None
        report = run_training(data[0] if len(data) == 1 else data, out, cfg, test=test, model=model, window=window,
                              stride=stride, seed=seed, epochs=epochs, progress=not as_json,
                              finish=finish)
    except TrainerError as exc:
        raise _trainer_error(exc) from None
    for note in report.get("notes", ()):
        typer.secho(f"note: {note}", fg=typer.colors.YELLOW, err=True)
    if not no_bundle and not report["bundle"]["ok"]:
        typer.secho(f"note: no model.elb: {report['bundle']['error']}", fg=typer.colors.YELLOW,
                    err=True)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    con = Console()
    con.print(_table(report))
    if "float_accuracy" in report:
        con.print(f"test accuracy: float {report['float_accuracy']:.4f}  "
                  f"int8 {report['int8_accuracy']:.4f}")
    else:
        q = report["int8"]
        con.print(f"test AUC: float {report['float_auc']:.4f}  int8 {report['int8_auc']:.4f}; "
                  f"int8 at the threshold: detection {q['detection_rate']:.3f}, "
                  f"false alarms {q['false_alarm_rate']:.3f} (trained on the healthy class only)")
    t = report["timing_s"]
    con.print(f"{report['model']}: {report['params']:,} params, {report['macs']:,} MACs, "
              f".tflite {report['tflite_bytes']:,} B; train+quantize {t['train'] + t['quantize']:.1f} s")
    if len(report.get("sources", ())) > 1:
        for src in report["sources"]:
            n = src["recordings"]
            con.print(f"source {src['path']}: {n['train']} recordings train, {n['val']} "
                      f"validation, {n['test']} test")
    con.print(f"run folder: {out} (TensorFlow's log: {out / 'tensorflow.log'})")


def _table(report: dict) -> Table:
    """Windows per class per split (the class balance) and the int8 test precision/recall."""
    bal = report["balance"]
    t = Table(title=f"{report['model']} ({report['task']})")
    t.add_column("class")
    for split in ("train", "val", "test"):
        t.add_column(f"{split} windows", justify="right")
    per = report.get("int8", {}).get("per_class")
    if per:
        t.add_column("int8 precision", justify="right")
        t.add_column("int8 recall", justify="right")
    for c in report["classes"]:
        row = [c] + [str(bal[s].get(c, 0)) for s in ("train", "val", "test")]
        if per:
            row += [f"{per[c]['precision']:.3f}", f"{per[c]['recall']:.3f}"]
        t.add_row(*row)
    return t


def _bundle(out: Path, report: dict) -> dict:
    """Convert RUN/model_int8.tflite for the config's board; a failure is reported, not fatal."""
    try:
        from converters import ConvertError, convert_tflite
    except ImportError as exc:
        return {"ok": False, "error": f"converter unavailable: {exc}"}
    from edgeloop.boards import get_board

    board = json.loads((out / "config.json").read_text()).get("board", "esp32")
    try:
        conv = convert_tflite((out / "model_int8.tflite").read_bytes(),
                              heap_limit=get_board(board).heap_bytes)
    except ConvertError as exc:
        return {"ok": False, "error": str(exc)}
    (out / "model.elb").write_bytes(conv.bundle)
    (out / "bundle_report.json").write_text(json.dumps(conv.report, indent=2, default=str))
    return {"ok": True, "bytes": len(conv.bundle), "board": board}


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
    app.command("train")(train)
