"""`edgeloop convert MODEL.tflite --board esp32 -o OUT`: bundle + report (+ C header)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from converters import ConvertError, convert_tflite
from converters.c_array import tflite_c_header
from edgeloop.boards import get_board
from trainer.runs import check_run


def _table(report: dict, board: str) -> Table:
    t = Table(title=f"edgeloop convert -> {board}", show_footer=True)
    t.add_column("#", footer="")
    t.add_column("op", footer="total")
    t.add_column("output", footer="")
    t.add_column("MACs", justify="right", footer=f"{report['total_macs']:,}")
    t.add_column("params", justify="right", footer=f"{report['total_params']:,}")
    for r in report["ops"]:
        if r.get("folded") is not None:
            op = f"{r['op']} (folded at convert: {r['folded']})"
        else:
            op = r["op"] + (" (alias, free)" if r.get("alias") else "")
        if r.get("lowered"):
            op += f" (as {r['lowered']})"
        t.add_row(str(r["index"]), op, "x".join(map(str, r["output_shape"])),
                  f"{r['macs']:,}", f"{r['params']:,}")
    return t


_CHIP_NAMES = {"esp32": "ESP32", "esp32s3": "ESP32-S3", "esp32c3": "ESP32-C3"}


def _summary(report: dict, board: str) -> list[str]:
    """Short lines (a terminal never wraps one mid-phrase): heap parts, total vs limit, sizes."""
    h = report["heap"]
    limit = report["heap_limit_bytes"]
    fit = "fits" if report["fits"] else "DOES NOT FIT"
    mode = report.get("memory_mode", "ram")
    st = report.get("stream") or {}
    how = {
        "ram": "the bundle is read into RAM",
        "romfs": "the bundle is used in place from ROMFS",
        "stream": f"weights stay in the bundle file, read op by op through one "
                  f"{st.get('buffer_bytes', 0):,} B buffer"
                  + (f" ({len(st.get('tiled_ops', []))} FC layers in {st.get('tiles', 0)} tiles)"
                     if st.get("tiles") else ""),
    }.get(mode, mode)
    # The fit is decided by the estimate for the board's word size (report estimate_word_bits):
    # a real ESP32 is 32-bit (runtime and tables ~85 % of the x64 size, measured on the 32-bit
    # virtual board); the other figure is shown beside it.
    bits = report.get("estimate_word_bits", 64)
    est = h["esp32_bytes"] if bits == 32 else h["total_bytes"]
    if bits == 32:
        chip = _CHIP_NAMES.get(board, f"{board} board")
        other = f" (32-bit words, as on the {chip}; ~{h['total_bytes']:,} B on the 64-bit x64 port)"
    else:
        other = f" (64-bit words, as on the x64 port; ~{h['esp32_bytes']:,} B on a 32-bit ESP32)"
    return [
        f"memory mode: {mode}: {how}",
        f"arena {h['arena_bytes']:,} B | bundle in RAM {h['weights_in_ram_bytes']:,} B | "
        f"tables {h['op_table_bytes']:,} B",
        f"runtime {h['runtime_overhead_bytes']:,} B | block + safety margin "
        f"{h['fragmentation_margin_bytes']:,} B",
        f"estimated heap {est:,} B of {limit:,} B -> {fit}{other}",
        f"bundle {report['bundle_bytes']:,} B (.tflite {report['tflite_bytes']:,} B)",
    ]


def convert(
    model: Annotated[Path, typer.Argument(help="int8 .tflite model")],
    board: Annotated[str, typer.Option("--board", "-b", help="board profile")] = "esp32",
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")] = Path("out"),
    c_header: Annotated[
        bool, typer.Option("--c-header", help="also write model_data.h (TFLM C array)")
    ] = False,
    romfs: Annotated[
        bool, typer.Option("--romfs", help="weights stay in flash (ROMFS, MicroPython 1.25+)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Convert a .tflite to a device bundle (OUT/model.elb) and a report (OUT/report.json)."""
    if not model.exists():
        raise FileNotFoundError(f"model file {model} does not exist")
    if model.is_dir():
        raise ConvertError(f"{model} is a folder: give the .tflite file (e.g. "
                           f"{model / 'model_int8.tflite'})")
    if out.exists() and not out.is_dir():
        raise ConvertError(f"--out {out} is a file; give a folder for model.elb and report.json")
    profile = get_board(board)
    check_run(model)  # a .tflite from a run folder must still be the run's own
    data = model.read_bytes()
    if data[:4] == b"ELMB":
        raise ConvertError(f"{model} is already an EdgeLoop bundle: give it to `edgeloop deploy`"
                           " or `edgeloop infer` as it is")
    try:
        conv = convert_tflite(data, heap_limit=profile.heap_bytes, romfs=romfs,
                              word_bits=profile.word_bits)
    except ConvertError as exc:
        report = getattr(exc, "report", None)
        if report is not None:  # does not fit: keep the figures for the user
            report["board"] = board
            out.mkdir(parents=True, exist_ok=True)
            (out / "report.json").write_text(json.dumps(report, indent=2))
        named = ConvertError(f"{model}: {exc}")  # the user may convert many files: say which
        named.report = report  # type: ignore[attr-defined]
        raise named from exc
    report = dict(conv.report, board=board, model=str(model))
    out.mkdir(parents=True, exist_ok=True)  # only now: a failed convert leaves no empty folder
    (out / "model.elb").write_bytes(conv.bundle)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    if c_header:
        name = model.stem
        (out / "model_data.h").write_text(tflite_c_header(data, f"g_{name}_model"))
    if as_json:
        typer.echo(json.dumps(report))
        return
    console = Console()
    console.print(_table(report, board))
    for line in _summary(report, board):
        console.print(line, soft_wrap=True)
    console.print(f"wrote {out / 'model.elb'} and {out / 'report.json'}"
                  + (f" and {out / 'model_data.h'}" if c_header else ""))


def register(app: typer.Typer) -> None:
    app.command("convert")(convert)
