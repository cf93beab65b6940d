"""The kernel set is chosen at import: viper when it imports and passes elrt's self-check,
bytecode otherwise; ELRT_KERNELS and elrt.use_kernels() override it."""

from __future__ import annotations

import subprocess

from edgeloop.infer import prepare_board

_PROBE = """
import elrt
print("AT_IMPORT", elrt.KERNELS)
try:
    elrt.use_kernels("viper")
    print("FORCED", elrt.KERNELS)
except ValueError as e:
    print("REFUSED", e)
print("BYTECODE", elrt.use_kernels("bytecode"))
try:
    elrt.use_kernels("fast")
except ValueError as e:
    print("BAD", e)
"""


def _run(board, env_value: str | None = None) -> str:
    script = board.root / "probe.py"
    script.write_text(_PROBE)
    env = board.env()
    env.pop("ELRT_KERNELS", None)
    if env_value:
        env["ELRT_KERNELS"] = env_value
    proc = subprocess.run(board.command("probe.py"), cwd=board.root, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_auto_env_and_use_kernels(board, viper_usable: bool) -> None:
    out = _run(board)
    assert f"AT_IMPORT {'viper' if viper_usable else 'bytecode'}" in out
    assert "BYTECODE bytecode" in out
    assert "BAD kernel set must be auto, viper or bytecode" in out
    assert "AT_IMPORT bytecode" in _run(board, "bytecode")


def test_faulty_viper_set_falls_back(tmp_path) -> None:
    board = prepare_board(tmp_path)
    (tmp_path / "elrt" / "kv_fc.mpy").unlink()
    # a viper module that imports but computes wrong results must not be used (FC is the
    # family elrt's known-answer self-check runs)
    (tmp_path / "elrt" / "kv_fc.py").write_text(
        "from elrt.kernels_py import *\n"
        "def fully_connected(*a):\n    a[5][0] = a[5][1] = 0x55\n"
    )
    out = _run(board)
    assert "AT_IMPORT bytecode" in out
    assert "REFUSED viper kernels failed their self-check" in out
    (tmp_path / "elrt" / "kv_fc.py").write_text("raise ImportError('no native emitter')\n")
    out = _run(board)
    assert "AT_IMPORT bytecode" in out
    assert "REFUSED viper kernels unavailable: ImportError: no native emitter" in out
