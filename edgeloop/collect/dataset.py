"""The output folder: the trainer's dataset layout, written one whole recording at a time.

OUT/<label>/<label>.<stamp>.<n>.csv (timestamp in ms on the board's clock, one column a
channel, in the channel's unit) beside <same>.json (where it came from: board, sequence
numbers, the rate measured on the board's clock), and OUT/edgeloop.toml (rate, channels,
counts per unit, the sensors) which `edgeloop train --data OUT` reads. A recording is written
under a temporary name and renamed into place, so OUT only ever holds complete recordings;
a folder collected into again keeps its edgeloop.toml, which must agree with this sensor.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgeloop.collect.errors import CollectError
from edgeloop.collect.recorder import Take

TOML = "edgeloop.toml"
_MARK = "# Written by `edgeloop collect`"
RATE_TOLERANCE = 0.05  # as trainer.data: a recording's rate vs its dataset's


def _cpu(cfg) -> np.ndarray:
    return np.broadcast_to(np.asarray(cfg.counts_per_unit, np.float64), (len(cfg.channels),))


def units(cfg) -> list[str]:
    """Each channel's unit, from its sensor's driver (counts when no sensor says)."""
    found = {c: u for s in cfg.sensors for c, u in zip(s.channels, s.units, strict=True)}
    return [found.get(c, "counts/counts_per_unit") for c in cfg.channels]


def dataset_toml(cfg, healthy: str | None, measured: str) -> str:
    """edgeloop.toml for the collected data: the sensor part of `cfg` (channels, rate, counts,
    [[sensors]], preprocessing defaults); the classes are the label folders (not fixed here,
    so later labels join), `healthy` when one of them is named so."""
    from trainer.config import DecisionSpec, to_toml

    d = cfg.decision
    out = replace(cfg, classes=None, healthy=healthy, name=f"{cfg.name}-collected",
                  decision=DecisionSpec((), d.threshold, d.n, d.m, d.action))
    head = [f"{_MARK} from {cfg.source}.",
            "# Channels and units: " + ", ".join(f"{c} [{u}]" for c, u in
                                                 zip(cfg.channels, units(cfg), strict=True)),
            f"# sample_rate is the rate the sensor was set to; {measured}.",
            "# Each recording's timestamps (ms) and <name>.json give its rate measured on the"
            " board's clock.", ""]
    return "\n".join(head) + to_toml(out)


class Dataset:
    """OUT as the trainer's CSV layout; `write(take)` adds one complete recording."""

    def __init__(self, out: Path, cfg, board: str, extra: dict | None = None) -> None:
        self.out = Path(out)
        self.cfg = cfg
        self.board = board
        self.extra = dict(extra or {})
        self.stamp = time.strftime("%Y%m%d-%H%M%S")
        self.written: list[Path] = []
        if self.out.exists() and not self.out.is_dir():
            raise CollectError(f"--out {self.out} is a file; give a folder for the dataset")
        self.existing = self._check_existing()

    def _check_existing(self):
        """The edgeloop.toml already in OUT, checked against this sensor (None: none yet)."""
        path = self.out / TOML
        if not path.is_file():
            if self.out.is_dir() and any(self.out.rglob("*.csv")):
                raise CollectError(f"--out {self.out} holds CSV files but no {TOML}: collect "
                                   "into a new folder (or add the dataset's edgeloop.toml)")
            return None
        from trainer.config import load_config
        from trainer.errors import TrainerError

        try:
            have = load_config(path)
        except TrainerError as exc:
            raise CollectError(str(exc)) from None
        c = self.cfg
        why = []
        if tuple(have.channels) != tuple(c.channels):
            why.append(f"channels {list(have.channels)} vs {list(c.channels)}")
        if abs(have.sample_rate - c.sample_rate) > RATE_TOLERANCE * c.sample_rate:
            why.append(f"sample_rate {have.sample_rate:g} Hz vs {c.sample_rate:g} Hz")
        if not np.allclose(_cpu(have), _cpu(c)):
            why.append(f"counts_per_unit {have.counts_per_unit} vs {c.counts_per_unit}")
        if why:
            raise CollectError(f"{path} describes other data ({'; '.join(why)}): collect into "
                               "another folder, or make the sensor config agree")
        return have

    def path_for(self, label: str) -> Path:
        folder = self.out / label
        n = len(self.written) + 1
        while True:
            path = folder / f"{label}.{self.stamp}.{n:03d}.csv"
            if not path.exists():
                return path
            n += 1

    def write(self, take: Take, meta: dict | None = None) -> Path:
        """The take as OUT/<label>/<name>.csv + .json, each renamed into place whole."""
        from trainer.twins import write_csv_recording

        check_label(take.label)
        path = self.path_for(take.label)
        path.parent.mkdir(parents=True, exist_ok=True)
        cpu = _cpu(self.cfg)
        t_ms = np.arange(len(take.samples)) * (1000.0 / take.rate_hz)
        tmp = path.with_name(f".{path.name}.part")
        info = {"board": self.board, "label": take.label, "samples": int(len(take.samples)),
                "first_seq": int(take.first_seq), "rate_hz_measured": round(take.rate_hz, 6),
                "rate_hz_nominal": take.nominal_hz, "mode": take.mode, "lost": 0,
                "channels": list(self.cfg.channels), "units": units(self.cfg),
                "counts_per_unit": cpu.tolist(), "collected": time.strftime(
                    "%Y-%m-%dT%H:%M:%S%z")} | self.extra | (meta or {})
        jtmp = path.with_name(f".{path.stem}.json.part")
        try:
            # counts / counts-per-unit with 9 digits: the trainer reads back the exact counts
            write_csv_recording(tmp, self.cfg.channels, take.samples / cpu, t_ms, digits=9,
                                ts_decimals=4)
            jtmp.write_text(json.dumps(info, indent=1) + "\n")
            self._toml(take)
            os.replace(tmp, path)  # the recording first: a .json is never without its .csv
            os.replace(jtmp, path.with_suffix(".json"))
        finally:
            for p in (tmp, jtmp):
                p.unlink(missing_ok=True)
        self.written.append(path)
        return path

    def _toml(self, take: Take) -> None:
        """Written with the first recording; written again (only if collect wrote it) when the
        first recording of a healthy-named label arrives, so the trainer knows what is healthy."""
        from trainer.train import HEALTHY_NAMES

        healthy = take.label if take.label.lower() in HEALTHY_NAMES else None
        path = self.out / TOML
        if self.existing is not None and not (
                healthy and self.existing.healthy is None
                and path.read_text().startswith(_MARK)):
            return
        measured = (f"measured on the board's clock in this session: {take.rate_hz:.6g} Hz"
                    f" ({take.nominal_hz:g} Hz set)")
        tmp = self.out / f".{TOML}.part"
        tmp.write_text(dataset_toml(self.cfg, healthy, measured))
        os.replace(tmp, path)
        from trainer.config import load_config

        self.existing = load_config(path)


def check_label(label: str) -> str:
    """A label is a folder name: no path separators, no leading dot, not `unlabelled`."""
    bad = not label or label != label.strip() or any(c in label for c in '/\\:*?"<>|') or \
        label.startswith(".") or label == "unlabelled"
    if bad:
        raise CollectError(f"label {label!r} cannot be a dataset folder name (no / \\ : * ? \" "
                           "< > |, no leading dot or spaces; 'unlabelled' is for field windows)")
    return label
