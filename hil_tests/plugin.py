"""The bench's reporting plugin: OUT/summary.json (hil_tests/summary.py), the HTML report's title
and pass-criteria column, and the long-run scenarios that only run when asked for.

Registered by hil_tests/conftest.py (configure()); its hooks run in the pytest process that
writes the reports (the xdist controller when -n is given), fed by the reports of every worker.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest

from hil_tests.summary import RunSummary, criteria_of, figures, sha256_file

LONG = "long"  # marker of scenarios that run for simulated hours: only with -k/-m naming it


def addoptions(group: Any) -> None:
    group.addoption("--hil-run", default=None,
                    help="run folder (from `edgeloop train`) whose model and config the bench "
                    "tests; default: the bench's own cached model (hil_tests/model.py)")
    group.addoption("--replace-model", action="store_true", default=False,
                    help="a real board: allow the bench to replace the model deployed on it")
    group.addoption("--hil-board-identity", default=None,
                    help="(set by `edgeloop hil`) JSON facts of the board, probed beforehand")


def configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{LONG}: runs for simulated hours; only run when -k or "
                            "-m names it (edgeloop hil -k long, make bench)")
    config.addinivalue_line("markers", "criteria(text): the scenario's pass criteria")
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        config.pluginmanager.register(ReportPlugin(config), "edgeloop-hil-report")


def model_facts(run: Path | None, cached: bool) -> dict[str, Any]:
    """What the summary says about the model: file, sha256, source run, cached or not."""
    facts: dict[str, Any] = {"source_run": str(run) if run else None, "bench_cache": cached}
    if run is not None:
        for name in ("model_int8.tflite", "model.elb"):
            f = Path(run) / name
            if f.is_file():
                facts |= {"file": str(f), "sha256": sha256_file(f)}
                break
        for name, keys in (("report.json", ("int8_accuracy",)), ("config.json", ("labels",))):
            try:
                doc = json.loads((Path(run) / name).read_text())
            except (ValueError, OSError):
                continue
            facts |= {k: doc.get(k) for k in keys}
    return facts


class ReportPlugin:
    def __init__(self, config: pytest.Config) -> None:
        from edgeloop.boards import get_board
        from hil_tests.model import cached_run_path

        self.config = config
        port = config.getoption("--board")
        virtual = port == "virtual"
        name = config.getoption("--board-profile") or ("virtual" if virtual else "esp32")
        board: dict[str, Any] = {"board": "virtual" if virtual else "real", "profile": name,
                                 "port": None if virtual else port}
        try:
            get_board(name)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        given = config.getoption("--hil-board-identity")
        if given:
            board |= json.loads(given)
        elif virtual:
            from edgeloop.vboard import identify

            board |= identify().as_dict()
        run = config.getoption("--hil-run")
        self.run = Path(run).resolve() if run else cached_run_path()
        self.cached = run is None
        self.interrupted: str | None = None
        self.html_report: Any = None
        self.summary = RunSummary(Path(config.getoption("--hil-out")) / "summary.json", board)
        self.summary.set_model(model_facts(self.run, self.cached))

    # -- collection: long scenarios only on request --------------------------------------------
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list) -> None:
        asked = f"{config.getoption('keyword') or ''} {config.getoption('markexpr') or ''}"
        if LONG in asked:
            return
        keep, drop = [], []
        for item in items:
            (drop if item.get_closest_marker(LONG) else keep).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    # -- per scenario ----------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not hasattr(report, "hil_criteria"):
            return  # not a scenario (e.g. the unit tests of `pytest tests hil_tests`)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = report.outcome
            if report.when == "setup" and report.failed:
                outcome = "error"
            message = ""
            if report.failed:
                message = str(getattr(report.longrepr, "reprcrash", None) or report.longrepr)
                message = message.strip().splitlines()[-1][:500] if message.strip() else ""
            elif report.skipped and isinstance(report.longrepr, tuple):
                message = str(report.longrepr[2])
            self.summary.scenario({
                "name": report.nodeid.split("::", 1)[-1],
                "nodeid": report.nodeid,
                "criteria": getattr(report, "hil_criteria", ""),
                "outcome": outcome,
                "duration_s": round(report.duration, 2),
                "message": message,
                "figures": getattr(report, "hil_figures", {}),
            })

    def pytest_keyboard_interrupt(self, excinfo) -> None:
        self.interrupted = "interrupted by Ctrl-C (KeyboardInterrupt)"

    def pytest_internalerror(self, excrepr, excinfo) -> None:
        self.interrupted = f"crashed: internal error {excinfo.typename}: {excinfo.value}"

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.interrupted is None and int(exitstatus) in (2, 3):
            self.interrupted = f"the run stopped early (pytest exit status {int(exitstatus)})"
        if session.shouldstop and self.interrupted is None and not session.shouldfail:
            self.interrupted = f"the run stopped early: {session.shouldstop}"
        self.summary.set_model(model_facts(self.run, self.cached))  # trained by now
        self.summary.finish(int(exitstatus), self.interrupted)
        if self.html_report is not None:  # pytest-html renders once more after this hook
            self.html_report.title = self.title()

    # -- HTML report (pytest-html) ---------------------------------------------------------------
    def title(self) -> str:
        b = self.summary.data["board"]
        m = self.summary.data["model"] or {}
        where = "virtual board" if b.get("board") == "virtual" else b.get("port")
        bits = f", {b['word_bits']}-bit" if b.get("word_bits") else ""
        model = (Path(m["source_run"]).name if m.get("source_run") else "?")
        model += " (bench cache)" if m.get("bench_cache") else ""
        sha = f" sha256 {m['sha256'][:12]}" if m.get("sha256") else ""
        tail = " [INTERRUPTED]" if self.interrupted else ""
        return f"EdgeLoop HIL: {where} ({b.get('profile')}{bits}), model {model}{sha}{tail}"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report) -> None:
        self.html_report = report  # its title is set at the start; finished at the end
        report.title = self.title()

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix, summary, postfix) -> None:
        if self.interrupted:
            prefix.append(f"<p><b>INTERRUPTED</b>: {html.escape(self.interrupted)}; the results "
                          "below are partial.</p>")

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells) -> None:
        cells.insert(2, "<th>Pass criteria</th>")

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report, cells) -> None:
        cells.insert(2, f"<td>{html.escape(getattr(report, 'hil_criteria', ''))}</td>")


def plain(value: Any) -> Any:
    """Figures as plain Python values, all the way down: under xdist a report crosses to the
    controller through execnet, which cannot send numpy scalars, and one in a report killed
    the worker mid-test (xdist's INTERNALERROR 'crashitem')."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalar
        value = value.item()
    if value is None or type(value) in (bool, int, float, str):
        return value
    return str(value)


def attach(item: pytest.Item, report: pytest.TestReport) -> None:
    """On the process that ran the scenario: its criteria and figures onto its report (they
    travel to the controller with it)."""
    report.hil_criteria = criteria_of(item)
    hil = getattr(item, "funcargs", {}).get("hil")
    results = getattr(hil, "results", None) or []
    try:
        report.hil_figures = figures([(name, res.summary()) for name, res in results])
    except Exception as exc:  # a broken summary must fail its test, not end the run
        report.hil_figures = {"error": f"figures could not be computed: {type(exc).__name__}: {exc}"}
        if report.passed:
            report.outcome = "failed"
            report.longrepr = f"the scenario's figures could not be computed: {exc!r}"
    # figures a scenario records itself (record_property), beyond its sessions' summaries
    own = {k: v for k, v in plain(report.user_properties)
           if "." not in k and isinstance(v, int | float | str | None)}
    if own:
        report.hil_figures["recorded"] = own
    report.hil_figures = plain(report.hil_figures)
