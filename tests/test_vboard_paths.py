"""The virtual board runs its scripts as modules, so no module's __file__ holds the host's
folder: heap spent as a real board (`/app.py`) spends it, whatever the board folder's path."""

from __future__ import annotations

from pathlib import Path

from edgeloop.vboard import VirtualBoard, script_args


def test_board_scripts_run_as_modules() -> None:
    assert script_args("main.py") == ["-m", "main"]
    assert script_args("_edgeloop_run.py") == ["-m", "_edgeloop_run"]
    assert script_args("/elsewhere/x.py") == ["/elsewhere/x.py"]
    assert script_args("odd-name.py") == ["odd-name.py"]


def test_module_paths_do_not_depend_on_the_board_folder(tmp_path: Path) -> None:
    root = tmp_path / ("a-board-folder-with-a-long-path-like-pytest-makes" * 2)
    board = VirtualBoard(root, "virtual")
    (board.root / "mod.py").write_text("X = 1\n")
    res = board.run("import sys, mod\nprint(mod.__file__)\nprint(sys.path[0] == '')\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["mod.py", "True"]
