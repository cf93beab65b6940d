"""Per-op timing tables from an on-board profile (`edgeloop infer --profile`).

The board times every invoke() step with time.ticks_us (elrt Model.invoke_timed) and keeps, per
step, the sum and the fastest over the batch (a shared host preempts some steps; a board does
not); here each step is mapped to its bundle op, the op's MACs are computed from
its bundle params, and the result is one row per op and one per kernel family (the viper
module the op runs on: fc, conv, dw, ...), in ms per inference and M MAC/s.
"""

from __future__ import annotations

from typing import Any

from converters.bundle import Op, parse_bundle
from converters.registry import BY_NAME, OP_FAMILY

_FC, _CONV, _DW = (BY_NAME[n].opcode for n in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"))


def op_macs(op: Op) -> int:
    """Multiply-accumulates of one bundle op (0 for ops without a dot product)."""
    p = op.params
    if op.opcode == _FC:
        return p[0] * p[1] * p[2]  # batches * accum_depth * output_depth
    if op.opcode == _CONV:  # batches * out_h * out_w * out_c * k_h * k_w * in_c
        return p[0] * p[4] * p[5] * p[6] * p[7] * p[8] * p[3]
    if op.opcode == _DW:  # batches * out_h * out_w * out_c * k_h * k_w
        return p[0] * p[4] * p[5] * p[6] * p[7] * p[8]
    return 0


def profile_tables(bundle: bytes, stats: dict[str, Any]) -> dict[str, Any]:
    """{"ops": [...], "families": {...}, "total_ms": ...} from an infer run's stats (its
    profile_us, plan_ops and the number of inferences timed)."""
    steps, plan_ops = stats.get("profile_us"), stats.get("plan_ops")
    if not steps or plan_ops is None:
        raise ValueError("these stats hold no per-op profile (run with op_profile=True)")
    n = max(1, len(stats.get("latency_ms") or [1]))
    mins = stats.get("profile_min_us") or [u / n for u in steps]
    bun = parse_bundle(bundle)
    per_op = [0.0] * len(bun.ops)  # fastest inference, step by step: what a quiet board takes
    mean = [0.0] * len(bun.ops)
    for us, lo, k in zip(steps, mins, plan_ops, strict=True):
        per_op[k] += lo / 1000.0
        mean[k] += us / 1000.0 / n
    total = sum(per_op)
    ops, fams = [], {}
    for k, op in enumerate(bun.ops):
        fam = OP_FAMILY.get(op.opcode, "?")
        macs = op_macs(op)
        ms = per_op[k]
        ops.append({"index": k, "op": op.name, "family": fam, "ms": ms, "mean_ms": mean[k],
                    "share": ms / total if total else 0.0, "macs": macs,
                    "mmac_per_s": macs / ms / 1000.0 if ms > 0 and macs else None})
        f = fams.setdefault(fam, {"ms": 0.0, "macs": 0, "ops": 0})
        f["ms"] += ms
        f["macs"] += macs
        f["ops"] += 1
    for f in fams.values():
        f["share"] = f["ms"] / total if total else 0.0
        f["mmac_per_s"] = f["macs"] / f["ms"] / 1000.0 if f["ms"] > 0 and f["macs"] else None
    return {"ops": ops, "families": fams, "total_ms": total, "mean_total_ms": sum(mean),
            "inferences": n}


def format_profile(tables: dict[str, Any]) -> str:
    """Plain-text tables: per op, then per family (ms per inference, share, M MAC/s)."""
    def rate(v: float | None) -> str:
        return f"{v:8.1f}" if v else f"{'-':>8s}"

    lines = [f"{'#':>3s} {'op':20s} {'family':8s} {'ms':>9s} {'share':>6s} {'MACs':>10s} "
             f"{'MMAC/s':>8s} {'mean ms':>9s}"]
    for r in tables["ops"]:
        lines.append(f"{r['index']:3d} {r['op']:20s} {r['family']:8s} {r['ms']:9.4f} "
                     f"{r['share']:6.1%} {r['macs']:10d} {rate(r['mmac_per_s'])} "
                     f"{r['mean_ms']:9.4f}")
    lines.append(f"{'':3s} {'per family':20s}")
    for fam, f in sorted(tables["families"].items(), key=lambda kv: -kv[1]["ms"]):
        lines.append(f"{'':3s} {fam + ' (' + str(f['ops']) + ' ops)':20s} {'':8s} "
                     f"{f['ms']:9.4f} {f['share']:6.1%} {f['macs']:10d} "
                     f"{rate(f['mmac_per_s'])}")
    lines.append(f"total {tables['total_ms']:.4f} ms per inference: each op's fastest of "
                 f"{tables['inferences']} inferences (board ticks_us; mean "
                 f"{tables['mean_total_ms']:.4f} ms)")
    return "\n".join(lines)
