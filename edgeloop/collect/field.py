"""Field windows pulled from a deployed board into the dataset layout, ready to be labelled.

The board app keeps the raw windows its model was least sure of and every window that raised an
alarm in a ring it persists in place (firmware_micropython/field.py: field.bin, and
field.prev.bin for the model before). Pulling reads those files through the Transport: on the
virtual board straight from its folder while the app runs; on a real board mpremote's raw REPL
pauses the app for the read and a reset starts it again, its ring restored from the file.

Each new window becomes OUT/unlabelled/<board>-<stamp>-<n>.csv (the dataset CSV layout: a
timestamp column in ms, then the run's channels in their physical units, exact to the count)
and a sidecar <same>.json (see FIELD_KEYS). A window is known by its uid (the ring file's random
id, the app's boot and the window's index in that boot): a window already under OUT, labelled
or not, is never written twice.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgeloop.errors import EdgeLoopError
from edgeloop.link.deploy import SIM_SAMPLES_PATH, SIM_TRUTH_PATH
from edgeloop.link.transport import LinkError, Transport

FIELD_FILE = "field.bin"
TRUTH_FILE = SIM_TRUTH_PATH  # the simulated sensor's ground truth (edgeloop.twins)
SAMPLES_FILE = SIM_SAMPLES_PATH
UNLABELLED = "unlabelled"

MAGIC = b"ELFW"
VERSION = 1
HDR_FMT = "<4sHHIHHHHHBhhIIIIIIHff32s"  # firmware_micropython/field.py _HDR_FMT
HDR = struct.calcsize(HDR_FMT)
META = 24  # bytes of a slot's head: 12 int16 (gen lo/hi, kind, doubt, boot, window, t_ms, end)
KINDS = {1: "uncertain", 2: "alarm"}

# What every sidecar holds (the shared format of OWNERS.md first, then provenance).
FIELD_KEYS = ("model_sha256", "outputs", "guess", "margin", "reason", "t_ms", "window_index",
              "board", "uid", "labels", "classes", "channels", "sample_rate", "counts_per_unit",
              "outputs_q", "boot", "sample_end", "pulled_utc", "source", "twin")


class FieldError(EdgeLoopError):
    """A field file or sidecar that cannot be read; the message names it."""


@dataclass(frozen=True)
class FieldHeader:
    slot_bytes: int
    base: int  # where the first slot begins (after the header and the board's index)
    uncertain: int
    alarms: int
    n_out: int
    window: int
    channels: int
    anomaly: bool
    threshold_q: int
    output_zero_point: int
    file_id: int
    boot: int
    kept: int
    alarms_seen: int
    overwritten: int
    output_scale: float
    sample_rate: float
    model_sha256: str


@dataclass
class FieldWindow:
    """One kept window as the board stored it: raw counts [window, channels], int8 outputs."""

    slot: int
    reason: str
    boot: int
    window_index: int
    t_ms: int
    end: int  # the sensor's sample count (since the app started) just after the window
    doubt_q: int  # top-2 margin or distance to the threshold, int8 output units
    outputs_q: np.ndarray
    raw: np.ndarray
    file_id: int

    @property
    def uid(self) -> str:
        return f"{self.file_id:08x}-{self.boot}-{self.window_index}"


@dataclass
class FieldFile:
    header: FieldHeader
    windows: list[FieldWindow]
    torn: list[int]  # slots being written while read


def slot_bytes(n_out: int, window: int, channels: int) -> int:
    return META + ((n_out + 3) & ~3) + 2 * window * channels + 4


def _u32(words: np.ndarray, i: int) -> int:
    return int(words[i]) | (int(words[i + 1]) << 16)


def parse_field_file(data: bytes, source: str) -> FieldFile:
    """The header and kept windows of a field file; FieldError naming `source` if malformed."""
    if len(data) < HDR:
        raise FieldError(f"{source}: {len(data)} bytes, shorter than a field file header ({HDR})")
    h = struct.unpack_from(HDR_FMT, data, 0)
    if h[0] != MAGIC:
        raise FieldError(f"{source}: not a field file (magic {h[0]!r}, expected {MAGIC!r})")
    if h[1] != VERSION:
        raise FieldError(f"{source}: field file version {h[1]}; this edgeloop reads version "
                         f"{VERSION}: update edgeloop or redeploy the app")
    hdr = FieldHeader(slot_bytes=h[3], uncertain=h[4], alarms=h[5], n_out=h[6], window=h[7],
                      channels=h[8], anomaly=bool(h[9]), threshold_q=h[10],
                      output_zero_point=h[11], file_id=h[12], boot=h[13], kept=h[14],
                      alarms_seen=h[15], overwritten=h[16], output_scale=float(h[19]),
                      sample_rate=float(h[20]), model_sha256=h[21].hex(), base=h[2])
    want = slot_bytes(hdr.n_out, hdr.window, hdr.channels)
    if hdr.slot_bytes != want or hdr.n_out < 1 or hdr.window < 1 or hdr.channels < 1:
        raise FieldError(f"{source}: inconsistent header (slot {hdr.slot_bytes} bytes for "
                         f"{hdr.n_out} outputs, window {hdr.window} x {hdr.channels})")
    n = hdr.uncertain + hdr.alarms
    if hdr.base != (HDR + 3 * n + 3) & ~3:
        raise FieldError(f"{source}: inconsistent header (slots at {hdr.base} for {n} slots)")
    if len(data) < hdr.base + n * hdr.slot_bytes:
        raise FieldError(f"{source}: {len(data)} bytes, {n} slots need "
                         f"{hdr.base + n * hdr.slot_bytes} (truncated)")
    pad = (hdr.n_out + 3) & ~3
    size = hdr.window * hdr.channels
    windows, torn = [], []
    for i in range(n):
        off = hdr.base + i * hdr.slot_bytes
        meta = np.frombuffer(data, "<u2", META // 2, off)
        gen = _u32(meta, 0)
        gen_end = _u32(np.frombuffer(data, "<u2", 2, off + hdr.slot_bytes - 4), 0)
        kind = int(meta[2])
        if gen != gen_end:
            torn.append(i)
            continue
        if kind == 0:
            continue
        if KINDS.get(kind) != ("alarm" if i >= hdr.uncertain else "uncertain"):
            raise FieldError(f"{source}: slot {i} holds kind {kind}, not a window of its part")
        o = off + META
        outputs = np.frombuffer(data, np.int8, hdr.n_out, o).copy()
        raw = np.frombuffer(data, "<i2", size, o + pad).astype(np.int16)
        windows.append(FieldWindow(
            slot=i, reason=KINDS[kind], boot=_u32(meta, 4), window_index=_u32(meta, 6),
            t_ms=_u32(meta, 8), end=_u32(meta, 10), doubt_q=int(meta[3].astype(np.int16)),
            outputs_q=outputs, raw=raw.reshape(hdr.window, hdr.channels), file_id=hdr.file_id))
    return FieldFile(hdr, windows, torn)


# -- the twin's ground truth ---------------------------------------------------------------------
@dataclass(frozen=True)
class Truth:
    """Which twin state produced each sample of the simulated sensor's file."""

    starts: np.ndarray  # first sample of each segment, increasing, starts[0] == 0
    labels: list[str]
    total: int
    loop: bool

    def of_window(self, end: int, window: int) -> dict | None:
        """{"label", "purity", "labels"} for samples [end - window, end), or None outside."""
        pos = np.arange(end - window, end)
        if pos[0] < 0:
            return None
        if self.loop:
            pos %= self.total
        elif pos[-1] >= self.total:
            return None
        seg = np.searchsorted(self.starts, pos, side="right") - 1
        counts = np.bincount(seg, minlength=len(self.labels))
        by_label: dict[str, int] = {}
        for k, c in enumerate(counts):
            if c:
                by_label[self.labels[k]] = by_label.get(self.labels[k], 0) + int(c)
        label = max(by_label, key=by_label.__getitem__)
        return {"label": label, "purity": round(by_label[label] / window, 4), "labels": by_label}


def parse_truth(data: bytes, source: str, samples_sha256: str | None) -> Truth | None:
    """The truth file (edgeloop.twins.truth_json); None when it describes another samples file."""
    try:
        doc = json.loads(data)
        segs = doc["segments"]
        starts = np.asarray([int(s) for s, _ in segs], np.int64)
        labels = [str(lab) for _, lab in segs]
        total = int(doc["total"])
    except (ValueError, KeyError, TypeError) as exc:
        raise FieldError(f"{source}: not a twin truth file ({exc})") from None
    if not len(starts) or starts[0] != 0 or (np.diff(starts) <= 0).any():
        raise FieldError(f"{source}: segments must start at sample 0 and increase")
    if samples_sha256 is not None and doc.get("samples_sha256") not in (None, samples_sha256):
        return None  # the samples were replaced since: this truth is not theirs
    return Truth(starts, labels, total, bool(doc.get("loop", False)))


# -- pulling --------------------------------------------------------------------------------------
@dataclass
class PullResult:
    """What a pull did: new windows written, known ones skipped, and what the board lost."""

    out: Path
    written: list[Path] = field(default_factory=list)  # the new windows' CSV files
    duplicates: int = 0
    torn: int = 0  # slots still mid-write after every attempt (pulled next time)
    overwritten: int = 0  # alarm windows the board overwrote (all boots of each file)
    files: dict[str, FieldHeader] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # field files not on the board
    truth: str = "none"  # "twin" when the twin's ground truth went into the sidecars

    def to_json(self) -> dict:
        return {"out": str(self.out), "written": [str(p) for p in self.written],
                "new": len(self.written), "duplicates": self.duplicates, "torn": self.torn,
                "overwritten": self.overwritten, "truth": self.truth,
                "files": {k: {"model_sha256": h.model_sha256, "boot": h.boot, "kept": h.kept,
                              "alarms": h.alarms_seen, "slots": h.uncertain + h.alarms}
                          for k, h in self.files.items()},
                "missing": self.missing}


def known_uids(out: Path) -> set[str]:
    """uids of every field window under out (unlabelled or labelled)."""
    uids = set()
    for p in out.rglob("*.json"):
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError):
            continue  # not ours, or damaged: the labeller names damaged sidecars
        if isinstance(doc, dict) and isinstance(doc.get("uid"), str):
            uids.add(doc["uid"])
    return uids


def board_name(transport: Transport) -> str:
    """A file-name-safe id: the chip's unique id on a real board, the folder on the virtual one."""
    root = getattr(transport, "root", None)
    if root is not None:
        return _safe(f"virtual-{Path(root).name}")
    try:
        uid = transport.eval("__import__('binascii').hexlify(__import__('machine').unique_id())"
                             ".decode()")
    except LinkError:
        return "board"
    return _safe(str(uid)) or "board"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", name).strip("._") or "board"


def _read(transport: Transport, path: str, listing: set[str]) -> bytes | None:
    return transport.fs_read(path) if path in listing else None


def _read_field(transport: Transport, path: str, source: str, attempts: int) -> FieldFile:
    """Read until no slot is mid-write (the app writes in place while the virtual board runs)."""
    parsed = parse_field_file(transport.fs_read(path), source)
    for _ in range(attempts - 1):
        if not parsed.torn:
            break
        parsed = parse_field_file(transport.fs_read(path), source)
    return parsed


def _config(transport: Transport) -> dict:
    listing = set(transport.fs_listdir(""))
    if "config.json" not in listing:
        raise FieldError(f"{transport.name}: no config.json: deploy a run to the board first")
    try:
        return json.loads(transport.fs_read("config.json"))
    except ValueError as exc:
        raise FieldError(f"{transport.name}: config.json is not valid JSON ({exc})") from None


def pull_field(
    transport: Transport,
    out: Path | str,
    board: str | None = None,
    now: datetime | None = None,
    attempts: int = 5,
) -> PullResult:
    """Every kept window not yet under `out` into out/unlabelled/ as CSV + JSON sidecar."""
    out = Path(out)
    cfg = _config(transport)
    listing = set(transport.fs_listdir(""))
    fcfg = cfg.get("field") if isinstance(cfg.get("field"), dict) else {}
    main_file = str(fcfg.get("file", FIELD_FILE))
    prev_file = main_file.replace(".bin", "") + ".prev.bin"
    result = PullResult(out)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    pulled_utc = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    name = _safe(board) if board else board_name(transport)
    truth = _board_truth(transport, cfg, listing)
    result.truth = "twin" if truth is not None else "none"
    known = known_uids(out) if out.is_dir() else set()
    n = 0
    for path in (prev_file, main_file):
        if path not in listing:
            result.missing.append(path)
            continue
        source = f"{transport.name}: {path}"
        parsed = _read_field(transport, path, source, attempts)
        hdr = parsed.header
        result.files[path] = hdr
        result.torn += len(parsed.torn)
        result.overwritten += hdr.overwritten
        labels = _labels(cfg, hdr)
        for w in sorted(parsed.windows, key=lambda w: (w.boot, w.window_index)):
            if w.uid in known:
                result.duplicates += 1
                continue
            base = out / UNLABELLED / f"{name}-{stamp}-{n}"
            while base.with_suffix(".csv").exists():  # two pulls in one second
                n += 1
                base = out / UNLABELLED / f"{name}-{stamp}-{n}"
            sidecar = _sidecar(w, hdr, cfg, labels, name, pulled_utc, path)
            if truth is not None and path == main_file:
                sidecar["twin"] = truth.of_window(w.end, hdr.window)
            write_window(base, w.raw, sidecar)
            known.add(w.uid)
            result.written.append(base.with_suffix(".csv"))
            n += 1
    return result


def _labels(cfg: dict, hdr: FieldHeader) -> list[str]:
    labels = [str(x) for x in cfg.get("labels") or []]
    if hdr.anomaly and hdr.n_out == 1:
        return [str(cfg.get("healthy", "normal")), "anomaly"]
    if len(labels) != hdr.n_out:  # a field file of an earlier model with other classes
        return [str(i) for i in range(hdr.n_out)]
    return labels


def _sidecar(w: FieldWindow, hdr: FieldHeader, cfg: dict, labels: list[str], board: str,
             pulled_utc: str, path: str) -> dict:
    scale, zp = hdr.output_scale, hdr.output_zero_point
    outputs = [round((int(q) - zp) * scale, 6) for q in w.outputs_q]
    if hdr.anomaly:
        guess = labels[-1] if int(w.outputs_q[0]) >= hdr.threshold_q else labels[0]
    else:
        guess = labels[int(np.argmax(w.outputs_q))]
    return {
        "model_sha256": hdr.model_sha256, "outputs": outputs, "guess": guess,
        "margin": round(w.doubt_q * scale, 6), "reason": w.reason, "t_ms": w.t_ms,
        "window_index": w.window_index, "board": board, "uid": w.uid, "labels": labels,
        "classes": [str(c) for c in cfg.get("labels") or labels],
        "channels": _channels(cfg, hdr.channels), "sample_rate": hdr.sample_rate,
        "counts_per_unit": _cpu(cfg, hdr.channels), "outputs_q": [int(q) for q in w.outputs_q],
        "boot": w.boot, "sample_end": w.end, "pulled_utc": pulled_utc, "source": path,
        "twin": None,
    }


def _channels(cfg: dict, n: int) -> list[str]:
    ch = cfg.get("channels")
    if isinstance(ch, list) and len(ch) == n:
        return [str(c) for c in ch]
    return ["ax", "ay", "az"][:n] if n <= 3 else [f"ch{i}" for i in range(n)]


def _cpu(cfg: dict, n: int) -> list[float]:
    cpu = cfg.get("counts_per_unit", 1)
    vals = cpu if isinstance(cpu, list) else [cpu] * n
    if len(vals) != n:
        raise FieldError(f"config.json counts_per_unit {cpu} does not give {n} channels")
    return [float(v) for v in vals]


def _board_truth(transport: Transport, cfg: dict, listing: set[str]) -> Truth | None:
    data = _read(transport, TRUTH_FILE, listing)
    if data is None:
        return None
    sha = transport.fs_hash(SAMPLES_FILE) if SAMPLES_FILE in listing else None
    truth = parse_truth(data, f"{transport.name}: {TRUTH_FILE}", sha)
    if truth is not None and cfg.get("sensor", {}).get("loop"):
        truth = Truth(truth.starts, truth.labels, truth.total, True)
    return truth


def write_window(base: Path, raw: np.ndarray, sidecar: dict) -> None:
    """base.csv (the dataset layout, as `edgeloop collect` writes it) and base.json, each
    renamed into place whole; the JSON last, so a window is never seen without its CSV."""
    from trainer.twins import write_csv_recording

    base.parent.mkdir(parents=True, exist_ok=True)
    cpu = np.asarray(sidecar["counts_per_unit"], np.float64)
    t_ms = np.arange(len(raw)) * (1000.0 / float(sidecar["sample_rate"]))
    tmp = base.with_name(f".{base.name}.csv.part")
    write_csv_recording(tmp, tuple(sidecar["channels"]), raw.astype(np.float64) / cpu, t_ms,
                        digits=9)
    os.replace(tmp, base.with_suffix(".csv"))
    jtmp = base.with_name(f".{base.name}.json.part")
    jtmp.write_text(json.dumps(sidecar, indent=1) + "\n")
    os.replace(jtmp, base.with_suffix(".json"))


def iter_unlabelled(out: Path) -> Iterator[Path]:
    """The CSV files waiting in out/unlabelled/, oldest name first."""
    folder = Path(out) / UNLABELLED
    if folder.is_dir():
        yield from sorted(folder.glob("*.csv"))
