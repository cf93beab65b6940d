"""EdgeLoop HIL bench as a pytest plugin: board options, `board`/`twin`/`hil` fixtures, reports.

    pytest hil_tests --board virtual                 # default: the virtual board
    pytest hil_tests --board /dev/ttyUSB0 --board-profile esp32
    pytest hil_tests --board socket://host:4000 --board-profile esp32s3

`board` is deployed (model + firmware + HIL config), reset and linked: a dut with `write()` and
`expect(pattern, timeout)` whose failure shows the board's recent output, as in
pytest-embedded. `twin` is the rotating-machine simulator; `hil` runs the closed loop and writes
each scenario's timeline PNG + session JSON under build/hil/, attached to the HTML report.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeloop.boards import get_board, with_sim_heap
from edgeloop.link.framelink import FrameLink, HilError
from edgeloop.link.hilboard import deploy_virtual, hil_config
from edgeloop.link.results import SessionResult
from edgeloop.link.session import HilSession
from hil_tests import plugin
from hil_tests.model import ensure_run_locked
from hil_tests.report import write_artifacts


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("edgeloop-hil", "EdgeLoop HIL bench")
    g.addoption("--board", default="virtual",
                help="virtual (default), a serial port (/dev/ttyUSB0) or socket://host:port")
    g.addoption("--board-profile", default=None,
                help="board profile (esp32, esp32s3, esp32c3, virtual); default: esp32 for a "
                "real port, virtual for the virtual board")
    g.addoption("--hil-out", default="build/hil",
                help="where timelines and session JSON go (default build/hil)")
    g.addoption("--baud", type=int, default=115200, help="serial baud rate for a real board")
    g.addoption("--realtime-s", type=float, default=15.0,
                help="wall-clock seconds of the realtime scenario (edgeloop hil: 60)")
    plugin.addoptions(g)


def pytest_configure(config: pytest.Config) -> None:
    plugin.configure(config)  # summary.json, HTML title and criteria, long scenarios


class BenchInfo:
    """What the scenarios need to know about the board under test."""

    def __init__(self, config: pytest.Config) -> None:
        self.port = config.getoption("--board")
        self.virtual = self.port == "virtual"
        name = config.getoption("--board-profile") or ("virtual" if self.virtual else "esp32")
        self.profile = get_board(name)
        self.out = Path(config.getoption("--hil-out"))
        self.baud = config.getoption("--baud")
        self.replace_model = config.getoption("--replace-model")


@pytest.fixture(scope="session")
def bench(request: pytest.FixtureRequest) -> BenchInfo:
    return BenchInfo(request.config)


def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "w")  # noqa: SIM115 - held for the lock's lifetime
    fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


@pytest.fixture(scope="session")
def hil_run(request: pytest.FixtureRequest) -> Path:
    """The run under test: --hil-run (the user's `edgeloop train` folder), else the bench's own
    cached model (trained once; one xdist worker trains, the others wait)."""
    given = request.config.getoption("--hil-run")
    if given:
        return Path(given).resolve()
    return ensure_run_locked()


@pytest.fixture(scope="session")
def run_config(hil_run: Path) -> dict:
    """The machine scenarios' run config; a wearable or building run (--hil-run) skips them
    (their own scenarios are hil_tests/test_wearable.py and test_building.py)."""
    from hil_tests.domains import domain_of

    cfg = json.loads((hil_run / "config.json").read_text())
    if domain_of(cfg) != "rotating_machine":
        pytest.skip(f"the run under test is a {domain_of(cfg)} run, not a rotating machine's")
    return cfg


VARIANTS = {  # deployed configurations: input mode and extra HIL options
    "frames": ("frames", {}),
    "i2c": ("i2c", {}),
    "heaplock": ("frames", {"heap_lock": True}),  # any per-frame allocation crashes the board
}


def _deploy(bench: BenchInfo, run: Path, base: dict, variant: str) -> Path | None:
    input_mode, opts = VARIANTS[variant]
    lsb = int(base.get("counts_per_unit", 2048))
    cfg = hil_config(base, input_mode, lsb_per_g=lsb, **opts)
    if bench.virtual:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        root = bench.out / "vboard" / f"{bench.profile.name}-{variant}-{worker}"
        lock = _locked(root.parent / f".{root.name}.lock")
        try:
            return deploy_virtual(run, root, cfg, bench.profile.name, verify=False)
        finally:
            lock.close()
    from edgeloop.link.deploy import deploy, plan_deploy
    from edgeloop.link.serialport import SerialTransport

    with SerialTransport(bench.port, baudrate=bench.baud) as transport:
        plan = plan_deploy(run, bench.profile, virtual=False, config=cfg)
        if not bench.replace_model:
            _keep_users_model(transport, plan.model, run)
        deploy(transport, plan, verify=True)
    return None


def _keep_users_model(transport, bundle: bytes, run: Path) -> None:
    """A real board's deployed model is the user's: replaced only with --replace-model."""
    import hashlib

    from edgeloop.link.deploy import MODEL_PATH

    on_board = transport.fs_hash(MODEL_PATH)
    want = hashlib.sha256(bundle).hexdigest()
    if on_board is not None and on_board != want:
        pytest.exit(f"the board on {transport.port} holds another model ({MODEL_PATH} sha256 "
                    f"{on_board[:12]}); the bench would replace it with {run.name}'s "
                    f"({want[:12]}): pass --replace-model to allow it", returncode=2)


@pytest.fixture(scope="session")
def deployed(bench: BenchInfo, hil_run: Path, run_config: dict) -> dict[str, Path | None]:
    """Variant -> deployed board folder (virtual) or None (real board, deployed over serial)."""
    cache: dict[str, Path | None] = {}

    class _Lazy(dict):
        def __missing__(self, mode: str) -> Path | None:
            cache[mode] = _deploy(bench, hil_run, run_config, mode)
            self[mode] = cache[mode]
            return cache[mode]

    return _Lazy()


def _connect(bench: BenchInfo, deployed: dict, variant: str) -> FrameLink:
    from edgeloop.link.serialport import SerialTransport
    from edgeloop.link.virtual import VirtualTransport

    root = deployed[variant]
    if bench.virtual:
        assert root is not None
        profile = bench.profile
        if variant != "frames":
            profile = with_sim_heap(profile)  # register-level input: the simulated chips
        return FrameLink.open(VirtualTransport(root, profile))
    conn = FrameLink.open(SerialTransport(bench.port, baudrate=bench.baud, raw_repl=False))
    conn.reset()
    try:
        conn.await_hello(8.0)
    except HilError:  # no soft reboot (e.g. a stuck app): hard reset through RTS
        conn.reset(hard=True)
        conn.await_hello(20.0)
    return conn


@pytest.fixture
def board(bench: BenchInfo, deployed: dict) -> Iterator[FrameLink]:
    """The board under test: deployed, freshly reset, linked (frames input)."""
    conn = _connect(bench, deployed, "frames")
    yield conn
    conn.close()


@pytest.fixture
def i2c_board(bench: BenchInfo, deployed: dict) -> Iterator[FrameLink]:
    """Like `board`, but the samples enter at register level through the simulated MPU6050 on
    the fake I2C bus, so the real driver is in the loop (virtual board only)."""
    if not bench.virtual:
        pytest.skip("register-level input needs the virtual board's simulated I2C bus")
    conn = _connect(bench, deployed, "i2c")
    yield conn
    conn.close()


@pytest.fixture
def locked_board(bench: BenchInfo, deployed: dict) -> Iterator[FrameLink]:
    """Like `board`, with micropython.heap_lock() on after HELLO: the whole per-frame path
    (link, preprocessing, model, decision) must allocate nothing or the board crashes."""
    conn = _connect(bench, deployed, "heaplock")
    yield conn
    conn.close()


@pytest.fixture
def twin():
    """The rotating-machine twin (seed 0, breakdown ~60 s after a fault starts)."""
    from trainer.twins import RotatingMachine

    return RotatingMachine(seed=0, time_to_failure_s=60.0)


class Hil:
    """Runs closed-loop sessions for one scenario and records them for the reports."""

    def __init__(self, request: pytest.FixtureRequest, bench: BenchInfo, run_config: dict):
        self.request = request
        self.bench = bench
        self.run_config = run_config
        self.lsb_per_g = int(run_config.get("counts_per_unit", 2048))
        self.results: list[tuple[str, SessionResult]] = []

    def session(self, conn: FrameLink, input_mode: str = "frames") -> HilSession:
        return HilSession(conn, input_mode=input_mode, lsb_per_g=self.lsb_per_g)

    def run(self, conn: FrameLink, twin, duration_s: float, label: str = "",
            input_mode: str = "frames", **kw) -> SessionResult:
        rate = float(self.run_config.get("sample_rate", twin.sample_rate))
        if abs(rate - twin.sample_rate) > 1e-6:
            raise ValueError(
                f"the twin samples at {twin.sample_rate} Hz but the model was trained at {rate} Hz"
            )
        res = self.session(conn, input_mode).run(twin, duration_s, **kw)
        self.record(res, label)
        return res

    def record(self, res: SessionResult, label: str = "") -> None:
        name = self.request.node.name + (f"-{label}" if label else "")
        png, js = write_artifacts(res, self.bench.out, name)
        self.results.append((name, res))
        node = self.request.node
        node.stash.setdefault(_ARTIFACTS, []).append((name, png, js))
        for key, value in res.summary().items():
            if isinstance(value, int | float | str) or value is None:
                node.user_properties.append((f"{label or 'run'}.{key}", value))


_ARTIFACTS = pytest.StashKey[list]()



@pytest.fixture
def hil(request: pytest.FixtureRequest, bench: BenchInfo, run_config: dict) -> Hil:
    return Hil(request, bench, run_config)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        plugin.attach(item, report)  # criteria + key figures, for summary.json and the HTML
    report.user_properties = plugin.plain(report.user_properties)
    if report.when != "call":
        return
    arts = item.stash.get(_ARTIFACTS, [])
    if not arts:
        return
    try:
        from pytest_html import extras
    except ImportError:
        return
    extra = list(getattr(report, "extras", []))
    for name, png, js in arts:
        extra.append(extras.png(base64.b64encode(png.read_bytes()).decode(), name))
        extra.append(extras.text(json.dumps(json.loads(js.read_text()) | {
            "windows_detail": "see " + str(js)}, indent=1, default=str), f"{name} summary"))
    report.extras = extra
