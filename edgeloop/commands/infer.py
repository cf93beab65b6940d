"""`edgeloop infer`: run a batch of inputs through a bundle on a board and save the outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from edgeloop.boards import get_board
from edgeloop.extras import board_needs, require_board_tools
from edgeloop.infer import (
    KERNEL_CHOICES,
    InferError,
    check_inputs,
    model_io,
    run_batch_virtual,
    run_on_deployed_board,
)
from edgeloop.profile import format_profile, profile_tables


def _load_npy(path: Path) -> np.ndarray:
    if not path.exists():
        raise InferError(f"input file {path} does not exist")
    if path.is_dir():
        raise InferError(f"--input {path} is a folder: give one .npy file (np.save)")
    with path.open("rb") as fh:
        head = fh.read(6)
    if head and head != b"\x93NUMPY" and not head.startswith(b"PK"):  # numpy took it for a pickle
        kind = "a text file" if all(32 <= c < 127 or c in (9, 10, 13) for c in head) else "not"
        raise InferError(f"{path} is {kind} {'' if kind == 'not' else 'and not '}a .npy array "
                         "(no NumPy header): save the int8 inputs with np.save(path, x)")
    try:
        x = np.load(path, allow_pickle=False)
    except EOFError as exc:  # empty or cut short; uncaught, click would print just "aborted"
        raise InferError(f"{path} is not a readable .npy array: file is empty or truncated") from exc
    except (ValueError, OSError) as exc:
        raise InferError(f"{path} is not a readable .npy array: {exc}") from exc
    if not isinstance(x, np.ndarray):  # an .npz archive (np.savez): a dict of arrays
        x.close()
        raise InferError(f"{path} is an .npz archive, not one array: save the inputs with np.save")
    return x


def _read_bundle(path: Path) -> bytes:
    """The bundle bytes, with a hint when the user gave the .tflite or a folder instead."""
    if not path.exists():
        raise InferError(f"bundle {path} does not exist")
    if path.is_dir():
        if (path / "model.elb").is_file():
            path = path / "model.elb"
        else:
            raise InferError(f"{path} is a folder without model.elb: give the bundle "
                             "`edgeloop convert` wrote")
    data = path.read_bytes()
    if data[4:8] == b"TFL3" or path.suffix == ".tflite":
        raise InferError(f"{path} is a .tflite model, not a bundle: run `edgeloop convert {path}"
                         " -o OUT` first and give OUT/model.elb to infer")
    return data


def run_serial(port: str, bundle: bytes, x: np.ndarray, kernels: str,
               baud: int = 115200, op_profile: bool = False
               ) -> tuple[np.ndarray, dict[str, Any]]:
    """A real board over its serial port: elrt must already be deployed (`edgeloop deploy`);
    its deployed model.elb is left as it was."""
    from edgeloop.link.transport import open_transport

    with open_transport(port=port, baudrate=baud) as transport:
        return run_on_deployed_board(transport, bundle, x, kernels, op_profile=op_profile,
                                     where=port)


def infer(
    bundle: Annotated[Path, typer.Argument(help="model bundle (.elb) from `edgeloop convert`")],
    input: Annotated[
        Path, typer.Option("--input", "-i", help="int8 .npy, first axis = batch")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write outputs .npy")],
    board: Annotated[
        str, typer.Option("--board", help="'virtual', or a board profile run virtually")
    ] = "virtual",
    port: Annotated[
        str | None, typer.Option("--port", "-p", help="serial port of a real board")
    ] = None,
    kernels: Annotated[
        str, typer.Option("--kernels", help="auto | viper | bytecode")
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="print stats as JSON")] = False,
    profile: Annotated[
        bool, typer.Option("--profile", help="time every op on the board: ms per op and family")
    ] = False,
) -> None:
    """Run every input of X.npy through the model on a board and write Y.npy (batch first)."""
    if kernels not in KERNEL_CHOICES:
        raise InferError(f"--kernels must be one of {', '.join(KERNEL_CHOICES)}, not {kernels!r}")
    data = _read_bundle(bundle)
    io = model_io(data)
    x_user = _load_npy(input)
    x = check_inputs(x_user, io, where=str(input))
    if output.is_dir():
        raise InferError(f"--output {output} is a folder: give a file name such as "
                         f"{output / 'Y.npy'}")
    require_board_tools("infer", board_needs(virtual=not port, compile_files=not port))
    if port:
        y, stats = run_serial(port, data, x, kernels, op_profile=profile)
    else:
        y, stats = run_batch_virtual(data, x, get_board(board), kernels=kernels,
                                     op_profile=profile)
    if x_user.shape != x.shape and y.ndim >= 2 and y.shape[1] == 1:
        y = y.reshape(len(x), *y.shape[2:])  # outputs batched the way the inputs were (TFLite's)
    output.parent.mkdir(parents=True, exist_ok=True)
    np.save(output, y)
    tables = profile_tables(data, stats) if profile else None
    summary = {k: v for k, v in stats.items()
               if k not in ("latency_ms", "profile_us", "plan_ops")}
    summary.update(samples=len(x), output=str(output))
    if tables is not None:
        summary["profile"] = tables
    if as_json:
        typer.echo(json.dumps(summary))
        return
    streamed = (f", weights streamed through a {stats['stream_bytes']} B buffer"
                if stats.get("stream_bytes") else "")
    typer.echo(
        f"{len(x)} inputs -> {output} {tuple(y.shape)} {y.dtype} on {summary.get('board', port)} "
        f"({stats['kernels']} kernels): median {stats['median_ms']:.3f} ms/inference, "
        f"model heap {stats['model_heap_bytes']} B, arena {stats['arena_bytes']} B{streamed}"
    )
    if tables is not None:
        typer.echo(format_profile(tables))


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)
