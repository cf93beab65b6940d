"""Golden executor: numpy run of a bundle with exactly the device's integer arithmetic.

It reads everything from the bundle bytes (so it validates the bundle too) and executes the ops
on one shared arena laid out by the offline plan, as the board does, so a wrong memory plan shows
up as wrong outputs. Used by the tests (vs the tflite-micro runtime) and the HIL bench (to predict a
board's outputs without a board).
"""

from __future__ import annotations

import numpy as np

from converters import bundle as B
from converters.errors import ConvertError
from converters.luts import MEAN_INT_4D, MEAN_QUANTIZED, MEAN_SAME_QUANT, softmax_row
from converters.quant import mbqm


def _cdiv(a: np.ndarray, n) -> np.ndarray:
    """C integer division (toward zero)."""
    q = np.abs(a) // np.abs(n)
    return np.where((a >= 0) == (np.asarray(n) >= 0), q, -q)


class _Exec:
    def __init__(self, bun: B.Bundle):
        self.b = bun
        self.arena = np.zeros(max(bun.arena_bytes, 4), np.uint8)
        self.consts = {}
        for i, t in enumerate(bun.tensors):
            if t.kind == B.KIND_CONST:
                self.consts[i] = np.frombuffer(t.data, B.DTYPE_NP[t.dtype]).reshape(t.shape)

    def get(self, tid: int) -> np.ndarray:
        t = self.b.tensors[tid]
        if t.kind == B.KIND_CONST:
            return self.consts[tid]
        raw = self.arena[t.offset : t.offset + t.nbytes]
        return raw.view(B.DTYPE_NP[t.dtype]).reshape(t.shape)

    def put(self, tid: int, value: np.ndarray) -> None:
        t = self.b.tensors[tid]
        if t.kind != B.KIND_ARENA:
            raise ConvertError(f"op writes to constant tensor {tid}")
        dt = B.DTYPE_NP[t.dtype]
        data = np.ascontiguousarray(np.asarray(value).astype(dt)).view(np.uint8).reshape(-1)
        if data.size != t.nbytes:
            raise ConvertError(f"tensor {tid}: op produced {data.size} bytes, expected {t.nbytes}")
        self.arena[t.offset : t.offset + t.nbytes] = data

    def run(self) -> None:
        for k, op in enumerate(self.b.ops):
            fn = getattr(self, f"op_{B.OPCODE_NAMES[op.opcode].lower()}")
            try:
                fn(op, op.p())
            except ConvertError:
                raise
            except Exception as e:
                raise ConvertError(f"golden: op {k} ({op.name}) failed: {e}") from e

    # -- ops ---------------------------------------------------------------------------------
    def _requant(self, acc, op, p, axis_c):
        mult = self.get(op.tensors[3]).astype(np.int64)
        shift = self.get(op.tensors[4]).astype(np.int64)
        shape = [1] * acc.ndim
        shape[axis_c] = -1
        out = mbqm(acc, mult.reshape(shape), shift.reshape(shape)) + p["output_offset"]
        return np.clip(out, p["act_min"], p["act_max"])

    def op_fully_connected(self, op, p):
        x = self.get(op.tensors[0]).reshape(p["batches"], p["accum_depth"]).astype(np.int64)
        w = self.get(op.tensors[1]).astype(np.int64)
        bias = self.get(op.tensors[2]).astype(np.int64)
        acc = x @ w.T + bias
        self.put(op.tensors[5], self._requant(acc, op, p, 1))

    def _patches(self, op, p):
        """Input padded with input_zero_point, gathered as [n, oh, ow, kh, kw, c] int64."""
        x = self.get(op.tensors[0]).astype(np.int64)
        x = x.reshape(p["batches"], p["in_h"], p["in_w"], p["in_c"])
        kh, kw, dh, dw = p["k_h"], p["k_w"], p["dil_h"], p["dil_w"]
        sh, sw, oh, ow = p["stride_h"], p["stride_w"], p["out_h"], p["out_w"]
        need_h = (oh - 1) * sh + (kh - 1) * dh + 1
        need_w = (ow - 1) * sw + (kw - 1) * dw + 1
        ph0, pw0 = p["pad_top"], p["pad_left"]
        ph1 = max(need_h - p["in_h"] - ph0, 0)
        pw1 = max(need_w - p["in_w"] - pw0, 0)
        xp = np.pad(x, ((0, 0), (ph0, ph1), (pw0, pw1), (0, 0)),
                    constant_values=p["input_zero_point"])
        iy = (np.arange(oh) * sh)[:, None] + (np.arange(kh) * dh)[None, :]  # [oh, kh]
        ix = (np.arange(ow) * sw)[:, None] + (np.arange(kw) * dw)[None, :]  # [ow, kw]
        return xp[:, iy[:, None, :, None], ix[None, :, None, :], :]  # [n, oh, ow, kh, kw, c]

    def op_conv_2d(self, op, p):
        pat = self._patches(op, p)
        w = self.get(op.tensors[1]).astype(np.int64)  # [oc, kh, kw, ic]
        n, oh, ow = pat.shape[:3]
        acc = pat.reshape(n * oh * ow, -1) @ w.reshape(w.shape[0], -1).T
        acc = acc.reshape(n, oh, ow, -1) + self.get(op.tensors[2]).astype(np.int64)
        self.put(op.tensors[5], self._requant(acc, op, p, 3))

    def op_depthwise_conv_2d(self, op, p):
        pat = self._patches(op, p)  # [n, oh, ow, kh, kw, ic]
        dm = p["depth_multiplier"]
        pat = np.repeat(pat, dm, axis=5)  # channel oc = ic*dm + m
        w = self.get(op.tensors[1]).astype(np.int64)  # [kh, kw, oc]
        acc = np.einsum("nyxhwc,hwc->nyxc", pat, w)
        acc = acc + self.get(op.tensors[2]).astype(np.int64)
        self.put(op.tensors[5], self._requant(acc, op, p, 3))

    def _pool(self, op, p, kind):
        x = self.get(op.tensors[0]).astype(np.int64)
        x = x.reshape(p["batches"], p["in_h"], p["in_w"], p["channels"])
        out = np.zeros((p["batches"], p["out_h"], p["out_w"], p["channels"]), np.int64)
        for oy in range(p["out_h"]):
            y0 = oy * p["stride_h"] - p["pad_top"]
            ys = slice(max(y0, 0), min(y0 + p["filter_h"], p["in_h"]))
            for ox in range(p["out_w"]):
                x0 = ox * p["stride_w"] - p["pad_left"]
                xs = slice(max(x0, 0), min(x0 + p["filter_w"], p["in_w"]))
                win = x[:, ys, xs, :]
                if kind == "max":
                    out[:, oy, ox, :] = win.max(axis=(1, 2))
                else:
                    s = win.sum(axis=(1, 2))
                    cnt = win.shape[1] * win.shape[2]
                    out[:, oy, ox, :] = np.where(s > 0, _cdiv(s + cnt // 2, cnt),
                                                 _cdiv(s - cnt // 2, cnt))
        self.put(op.tensors[1], np.clip(out, p["act_min"], p["act_max"]))

    def op_max_pool_2d(self, op, p):
        self._pool(op, p, "max")

    def op_average_pool_2d(self, op, p):
        self._pool(op, p, "avg")

    def op_mean(self, op, p):
        x = self.get(op.tensors[0]).astype(np.int64).reshape(p["outer"], p["reduce"], p["inner"])
        n = p["reduce"]
        s = x.sum(axis=1)
        if p["mode"] == MEAN_SAME_QUANT:
            out = _cdiv(s, n)
        elif p["mode"] == MEAN_QUANTIZED:
            out = mbqm(s - p["input_zero_point"] * n, p["multiplier"], p["shift"])
            out = np.clip(out + p["output_zero_point"], -128, 127)
        elif p["mode"] == MEAN_INT_4D:
            acc = mbqm(s - p["input_zero_point"] * n, p["multiplier"], p["shift"])
            acc = np.where(acc > 0, _cdiv(acc + n // 2, n), _cdiv(acc - n // 2, n))
            out = np.clip(acc + p["output_zero_point"], -128, 127)
        else:
            raise ConvertError(f"MEAN mode {p['mode']} unknown")
        self.put(op.tensors[1], out)

    def _bcast(self, op, p):
        d = [p["d0"], p["d1"], p["d2"], p["d3"]]
        xs = []
        for j, key in ((0, "s1"), (1, "s2")):
            flat = self.get(op.tensors[j]).reshape(-1).astype(np.int64)
            idx = np.zeros(d, np.int64)
            for k in range(4):
                shape = [1, 1, 1, 1]
                shape[k] = d[k]
                idx = idx + np.arange(d[k]).reshape(shape) * p[f"{key}_{k}"]
            xs.append(flat[idx])
        return xs

    def _scaled_inputs(self, op, p):
        """ADD's and SUB's inputs rescaled to the common scale (TFLM's scaled_input*_val)."""
        a, b = self._bcast(op, p)
        a = mbqm((a + p["input1_offset"]) << p["left_shift"], p["input1_multiplier"],
                 p["input1_shift"])
        b = mbqm((b + p["input2_offset"]) << p["left_shift"], p["input2_multiplier"],
                 p["input2_shift"])
        return a, b

    def _add_sub_out(self, op, p, raw):
        out = mbqm(raw, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
        self.put(op.tensors[2], np.clip(out, p["act_min"], p["act_max"]))

    def op_add(self, op, p):
        a, b = self._scaled_inputs(op, p)
        self._add_sub_out(op, p, a + b)

    def op_sub(self, op, p):
        a, b = self._scaled_inputs(op, p)
        self._add_sub_out(op, p, a - b)

    def op_mul(self, op, p):
        a, b = self._bcast(op, p)
        prod = (a + p["input1_offset"]) * (b + p["input2_offset"])
        out = mbqm(prod, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
        self.put(op.tensors[2], np.clip(out, p["act_min"], p["act_max"]))

    def op_softmax(self, op, p):
        x = self.get(op.tensors[0]).reshape(p["outer"], p["depth"])
        exp_lut, acc_lut = self.get(op.tensors[1]), self.get(op.tensors[2])
        out = np.stack([softmax_row(row, exp_lut, acc_lut) for row in x])
        self.put(op.tensors[3], out)

    def op_lut(self, op, p):
        x = self.get(op.tensors[0]).reshape(-1).astype(np.int64)
        self.put(op.tensors[2], self.get(op.tensors[1])[x + 128])

    def op_dequantize(self, op, p):
        x = self.get(op.tensors[0]).reshape(-1).astype(np.int64)
        self.put(op.tensors[2], self.get(op.tensors[1])[x + 128])

    def op_quantize_f32(self, op, p):
        x = self.get(op.tensors[0]).reshape(-1).astype(np.float32)
        scale = np.array([p["scale_f32_bits"]], np.int32).view(np.float32)[0]
        v = x / scale  # float32, as TFLM: TfLiteRound(x / scale), half away from zero
        a = np.abs(v)
        n = np.floor(a)
        r = np.copysign(n + (a - n >= 0.5), v)  # exact; floor(a + 0.5) rounds in float32
        self.put(op.tensors[1], np.clip(r + p["zero_point"], -128, 127))

    def op_concatenation(self, op, p):
        k = p["n_inputs"]
        parts = [self.get(op.tensors[j]).reshape(p["outer"], -1) for j in range(k)]
        self.put(op.tensors[k], np.concatenate(parts, axis=1))

    def op_pad(self, op, p):
        d = [p[f"d{k}"] for k in range(4)]
        x = self.get(op.tensors[0]).reshape(d)
        widths = [(p[f"b{k}"], p[f"a{k}"]) for k in range(4)]
        self.put(op.tensors[1], np.pad(x, widths, constant_values=p["pad_value"]))


def _sample_shape(t: B.Tensor) -> tuple[int, ...]:
    return t.shape[1:] if len(t.shape) > 1 and t.shape[0] == 1 else t.shape


def run_bundle(bundle: bytes, x: np.ndarray) -> np.ndarray | list[np.ndarray]:
    """Run a batch: x's first axis is the batch, the rest the model input shape (a leading 1 of
    the model shape may be omitted). Returns an array (B, *output_shape without its leading 1);
    a list of such arrays when the model has several inputs is not supported, several outputs
    give a list."""
    bun = B.parse_bundle(bundle)
    if len(bun.inputs) != 1:
        raise ConvertError(f"run_bundle supports one model input, bundle has {len(bun.inputs)}")
    tin = bun.tensors[bun.inputs[0]]
    per = int(np.prod(tin.shape))
    x = np.asarray(x)
    if x.size % per or x.ndim < 1 or x.size // per != x.shape[0]:
        raise ConvertError(f"input batch shape {x.shape} does not match model input {tin.shape}")
    want = B.DTYPE_NP[tin.dtype]
    if x.dtype != want:
        raise ConvertError(f"input dtype {x.dtype}, model wants {np.dtype(want)}")
    ex = _Exec(bun)
    outs: list[list[np.ndarray]] = [[] for _ in bun.outputs]
    for sample in x.reshape(x.shape[0], -1):
        ex.put(bun.inputs[0], sample.reshape(tin.shape))
        ex.run()
        for j, tid in enumerate(bun.outputs):
            outs[j].append(ex.get(tid).reshape(_sample_shape(bun.tensors[tid])).copy())
    res = [np.stack(o) for o in outs]
    return res[0] if len(res) == 1 else res
