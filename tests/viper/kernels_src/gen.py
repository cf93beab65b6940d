"""Expand kernels_viper.tpl into the viper kernel modules firmware_micropython/elrt/kv_*.py.

MicroPython has no macros and a viper call would box its int arguments (a heap allocation on a
32-bit board), so the requantization block, the clamps and the 4-channel group paths are
written once here and inlined wherever a kernel needs them. A template line `#@NAME(args)`
becomes NAME's text at that line's indentation.

The template is one file split into modules at its `#%module NAME` lines (one op family each):
elrt imports only the families a model needs, because on an ESP32 every imported viper module's
machine code is copied into the small executable IRAM. The text before the first `#%module` is
the common header of every module. tests/viper/test_generated.py checks that the committed
kv_*.py files are exactly this expansion.

    python tests/viper/kernels_src/gen.py        (rewrites elrt/kv_*.py, removes stale ones)
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "kernels_viper.tpl"
TARGET_DIR = HERE.parents[2] / "firmware_micropython" / "elrt"
PREFIX = "kv_"  # every generated module's name starts with it (and nothing else in elrt/ does)
# Modules only the tests use (the reference requantization): written beside the tests, so they
# are never deployed to a board.
TEST_ONLY = {"kv_requant.py"}
TEST_DIR = HERE.parent


def target(name: str) -> Path:
    """Where a generated module lives: elrt/ for the board, tests/viper/ for test-only ones."""
    return (TEST_DIR if name in TEST_ONLY else TARGET_DIR) / name


def rq(ind, x, r, p):
    """Inline MultiplyByQuantizedMultiplier(x) -> r with precomputed parts prefixed p:
    {p}m, {p}mh, {p}ml, {p}lb (1<<(31-s) or 0), {p}sl (left shift), {p}e (right), {p}rm, {p}rt."""
    s = f"""\
# {r} = MultiplyByQuantizedMultiplier({x}, {p}m, shift) on 16-bit halves
xq = {x}
if {p}lb:
    hib = xq & {p}lb
    xq = (xq & ({p}lb - 1)) << {p}sl
    if hib:
        xq = xq + sgn
if xq == sgn:
    {r} = 0 - {p}m
else:
    u = xq
    if xq < 0:
        u = 0 - xq
    uh = u >> 16
    ul = u & 0xFFFF
    bb = uh * {p}ml
    cc = ul * {p}mh
    q = ul * ({p}ml >> 1)
    t = (q & 0x7FFF) << 1
    if {p}ml & 1:
        t = t + ul
    mid = (bb & 0xFFFF) + (cc & 0xFFFF) + (q >> 15) + (t >> 16)
    top = uh * {p}mh + (bb >> 16) + (cc >> 16) + (mid >> 16)
    rr = ((mid & 0x7FFF) << 16) + (t & 0xFFFF)
    {r} = (top << 1) + ((mid >> 15) & 1)
    if xq < 0:
        if rr > half:
            {r} = {r} + 1
        {r} = 0 - {r}
    elif rr >= half:
        {r} = {r} + 1
if {p}e:
    thr = {p}rt
    if {r} < 0:
        thr = thr + 1
    rem = {r} & {p}rm
    {r} = {r} >> {p}e
    if rem > thr:
        {r} = {r} + 1
"""
    return textwrap.indent(s, " " * ind)


def rqsetup(ind, p, pm, ps, idx):
    s = f"""\
{p}m = {pm}[{idx}]
{p}mh = {p}m >> 16
{p}ml = {p}m & 0xFFFF
{p}sl = {ps}[{idx}]
if {p}sl & sgn:
    {p}sl = ({p}sl & msk) + sgn
{p}lb = 0
{p}e = 0
{p}rm = 0
{p}rt = 0
if {p}sl > 0:
    {p}lb = 1
    {p}lb = {p}lb << (31 - {p}sl)
elif {p}sl < 0:
    {p}e = 0 - {p}sl
    {p}rm = -1 - (-1 << {p}e)
    {p}rt = {p}rm >> 1
"""
    return textwrap.indent(s, " " * ind)


def consts(ind=4):
    s = """\
sgn = -1
sgn = sgn << 31
msk = -1 - sgn
half = 1
half = half << 30
"""
    return textwrap.indent(s, " " * ind)


def clamp_store(ind, r, store):
    s = f"""\
if {r} < amin:
    {r} = amin
if {r} > amax:
    {r} = amax
{store} = {r}
"""
    return textwrap.indent(s, " " * ind)


def rqsetup2(ind, p, mbuf, sh):
    s = rqsetup(0, p, f"ptr32({mbuf})", "_", "0")
    s = s.replace(f"{p}sl = _[0]\n", f"{p}sl = {sh}\n")
    return textwrap.indent(s, " " * ind)


def srdhm(ind, a, b, r):
    """Inline general SaturatingRoundingDoublingHighMul(a, b) -> r (any signs)."""
    s = f"""\
# {r} = SaturatingRoundingDoublingHighMul({a}, {b}) on 16-bit halves
if {a} == sgn:
    if {b} == sgn:
        {r} = msk
    else:
        {r} = 0 - {b}
elif {b} == sgn:
    {r} = 0 - {a}
else:
    neg = 0
    u = {a}
    if u < 0:
        u = 0 - u
        neg = 1
    mm = {b}
    if mm < 0:
        mm = 0 - mm
        neg = neg ^ 1
    uh = u >> 16
    ul = u & 0xFFFF
    mh = mm >> 16
    ml = mm & 0xFFFF
    bb = uh * ml
    cc = ul * mh
    q = ul * (ml >> 1)
    t = (q & 0x7FFF) << 1
    if ml & 1:
        t = t + ul
    mid = (bb & 0xFFFF) + (cc & 0xFFFF) + (q >> 15) + (t >> 16)
    top = uh * mh + (bb >> 16) + (cc >> 16) + (mid >> 16)
    rr = ((mid & 0x7FFF) << 16) + (t & 0xFFFF)
    {r} = (top << 1) + ((mid >> 15) & 1)
    if neg:
        if rr > half:
            {r} = {r} + 1
        {r} = 0 - {r}
    elif rr >= half:
        {r} = {r} + 1
"""
    return textwrap.indent(s, " " * ind)


def conv4(ind, rq, rqsetup, clamp):
    """Four output channels per pass over the input (group path of _conv_2d)."""
    K = range(4)
    L = []
    L.append("ks0 = 0")
    L.append("ks1 = ksz")
    L.append("ks2 = ksz + ksz")
    L.append("ks3 = ks2 + ksz")
    L.append("while o + 3 < oc:")
    L.append("    fo = fa0 + o * ksz")
    for k in K:
        L.append(f"    pf = ptr8(fo + {k} * ksz)")
        L.append(f"    fs{k} = 0")
        L.append("    i = 0")
        L.append("    while i < ksz:")
        L.append(f"        fs{k} += (pf[i] ^ 128) - 128")
        L.append("        i += 1")
        L.append(f"    bo = pb[o + {k}]")
        L.append("    if bo & sgn:")
        L.append("        bo = (bo & msk) + sgn")
        L.append(f"    bb{k} = bo + zp * fs{k}")
        L.append(f"    bi{k} = bo - (fs{k} << 7)")
        L.append(rqsetup(4, f"c{k}", "pm", "ps", f"o + {k}").rstrip("\n"))
    L.append("    b = 0")
    L.append("    while b < batches:")
    L.append("        xa0 = xbase + b * isz")
    L.append("        ob = b * osz + o")
    L.append("        oy = 0")
    L.append("        while oy < oh:")
    L.append("            iy0 = oy * sh - pt")
    L.append("            ky0 = 0")
    L.append("            while ky0 < kh and iy0 + dh * ky0 < 0:")
    L.append("                ky0 += 1")
    L.append("            ky1 = kh")
    L.append("            while ky1 > ky0 and iy0 + dh * (ky1 - 1) >= ih:")
    L.append("                ky1 -= 1")
    L.append("            rowin = fast and ky0 == 0 and ky1 == kh")
    L.append("            ox = 0")
    L.append("            while ox < ow:")
    L.append("                ix0 = ox * sw - pl")
    L.append("                if rowin and ix0 >= 0 and ix0 + dw * (kw - 1) < iw:")
    for k in K:
        L.append(f"                    {'acc' if k == 0 else f'acc{k}'} = 0")
    L.append("                    ky = 0")
    L.append("                    while ky < kh:")
    L.append("                        xs = xa0 + ((iy0 + dh * ky) * iw + ix0) * ic")
    L.append("                        ws = fo + ky * kw * ic")
    L.append("                        j = 0")
    L.append("                        while j < fnrun:")
    L.append("                            xa = xs + j * xstep")
    L.append("                            wa = ws + j * ic")
    for width, first in ((8, True), (4, False)):
        if first:
            L.append(f"                            xe = xa + frl - {width - 1}")
            L.append("                            while xa < xe:")
        else:
            L.append("                            xe = xe + 4")
            L.append("                            if xa < xe:")
        L.append("                                px = ptr8(xa)")
        for k in K:
            L.append(
                f"                                p{k} = ptr8(wa + ks{k})"
                if k
                else "                                p0 = ptr8(wa)"
            )
        for i in range(width):
            L.append(f"                                x{i} = px[{i}] ^ 128")
        for k in K:
            a = "acc" if k == 0 else f"acc{k}"
            terms = [f"((p{k}[{i}] ^ 128) - 128) * x{i}" for i in range(width)]
            L.append(f"                                {a} += ({terms[0]} + {terms[1]}")
            for i in range(2, width, 2):
                tail = ")" if i + 2 >= width else ""
                L.append(f"                                    + {terms[i]} + {terms[i + 1]}{tail}")
        L.append(f"                                xa += {width}")
        L.append(f"                                wa += {width}")
    L.append("                            xe = xe + 3")
    L.append("                            while xa < xe:")
    L.append("                                px = ptr8(xa)")
    L.append("                                x0 = px[0] ^ 128")
    for k in K:
        a = "acc" if k == 0 else f"acc{k}"
        L.append(f"                                pw = ptr8(wa + ks{k})")
        L.append(f"                                {a} += ((pw[0] ^ 128) - 128) * x0")
    L.append("                                xa += 1")
    L.append("                                wa += 1")
    L.append("                            j += 1")
    L.append("                        ky += 1")
    for k in K:
        a = "acc" if k == 0 else f"acc{k}"
        L.append(f"                    {a} = {a} + bi{k}")
    L.append("                else:")
    L.append("                    kx0 = 0")
    L.append("                    while kx0 < kw and ix0 + dw * kx0 < 0:")
    L.append("                        kx0 += 1")
    L.append("                    kx1 = kw")
    L.append("                    while kx1 > kx0 and ix0 + dw * (kx1 - 1) >= iw:")
    L.append("                        kx1 -= 1")
    L.append("                    if dw == 1:")
    L.append("                        nrun = 1")
    L.append("                        rl = (kx1 - kx0) * ic")
    L.append("                    else:")
    L.append("                        nrun = kx1 - kx0")
    L.append("                        rl = ic")
    for k in K:
        a = "acc" if k == 0 else f"acc{k}"
        L.append(f"                    {a} = bb{k}")
    L.append("                    ky = ky0")
    L.append("                    while ky < ky1:")
    L.append("                        xs = xa0 + ((iy0 + dh * ky) * iw + ix0 + dw * kx0) * ic")
    L.append("                        ws = fo + (ky * kw + kx0) * ic")
    L.append("                        j = 0")
    L.append("                        while j < nrun:")
    L.append("                            xa = xs + j * xstep")
    L.append("                            wa = ws + j * ic")
    L.append("                            xe = xa + rl")
    L.append("                            while xa < xe:")
    L.append("                                px = ptr8(xa)")
    L.append("                                x0 = (px[0] ^ 128) + offm")
    for k in K:
        a = "acc" if k == 0 else f"acc{k}"
        L.append(f"                                pw = ptr8(wa + ks{k})")
        L.append(f"                                {a} += x0 * ((pw[0] ^ 128) - 128)")
    L.append("                                xa += 1")
    L.append("                                wa += 1")
    L.append("                            j += 1")
    L.append("                        ky += 1")
    L.append("                oidx = ob + (oy * ow + ox) * oc")
    for k in K:
        a = "acc" if k == 0 else f"acc{k}"
        L.append(rq(16, a, "r", f"c{k}").rstrip("\n"))
        L.append("                r = r + ooff")
        L.append(clamp(16, "r", f"po[oidx + {k}]").rstrip("\n"))
    L.append("                ox += 1")
    L.append("            oy += 1")
    L.append("        b += 1")
    L.append("    o += 4")
    return textwrap.indent("\n".join(L) + "\n", " " * ind)


def dw4(ind, rq, rqsetup, clamp):
    """Four adjacent channels per pass (depth_multiplier 1): shared addressing and loop
    overhead; the channels' taps are adjacent bytes in both input and filter."""
    K = range(4)
    A = ["acc", "acc1", "acc2", "acc3"]
    L = []
    L.append("while dm == 1 and o + 3 < oc:")
    for k in K:
        L.append(f"    pw = ptr8(fa0 + o + {k})")
        L.append(f"    fs{k} = 0")
        L.append("    i = 0")
        L.append("    while i < kall:")
        L.append(f"        fs{k} += (pw[i] ^ 128) - 128")
        L.append("        i += oc")
        L.append(f"    bo = pb[o + {k}]")
        L.append("    if bo & sgn:")
        L.append("        bo = (bo & msk) + sgn")
        L.append(f"    bb{k} = bo + zp * fs{k}")
        L.append(f"    bi{k} = bo - (fs{k} << 7)")
        L.append(rqsetup(4, f"c{k}", "pm", "ps", f"o + {k}").rstrip("\n"))
    L.append("    b = 0")
    L.append("    while b < batches:")
    L.append("        xa0 = xbase + b * isz + o")
    L.append("        ob = b * osz + o")
    L.append("        oy = 0")
    L.append("        while oy < oh:")
    L.append("            iy0 = oy * sh - pt")
    L.append("            ky0 = 0")
    L.append("            while ky0 < kh and iy0 + dh * ky0 < 0:")
    L.append("                ky0 += 1")
    L.append("            ky1 = kh")
    L.append("            while ky1 > ky0 and iy0 + dh * (ky1 - 1) >= ih:")
    L.append("                ky1 -= 1")
    L.append("            rowin = ky0 == 0 and ky1 == kh")
    L.append("            ox = 0")
    L.append("            while ox < ow:")
    L.append("                ix0 = ox * sw - pl")
    L.append("                if rowin and ix0 >= 0 and ix0 + dw * (kw - 1) < iw:")
    for a in A:
        L.append(f"                    {a} = 0")
    L.append("                    ky = 0")
    L.append("                    while ky < kh:")
    L.append("                        px = ptr8(xa0 + ((iy0 + dh * ky) * iw + ix0) * icn)")
    L.append("                        pw = ptr8(fa0 + ky * kw * oc + o)")
    L.append("                        if kw3:")
    for k, a in enumerate(A):
        terms = [
            f"((pw[{k}] ^ 128) - 128) * (px[{k}] ^ 128)",
            f"((pw[oc + {k}] ^ 128) - 128) * (px[xstep + {k}] ^ 128)",
            f"((pw[oc2 + {k}] ^ 128) - 128) * (px[xstep2 + {k}] ^ 128)",
        ]
        L.append(f"                            {a} += ({terms[0]}")
        L.append(f"                                    + {terms[1]}")
        L.append(f"                                    + {terms[2]})")
    L.append("                        else:")
    L.append("                            xi = 0")
    L.append("                            wi = 0")
    L.append("                            k = 0")
    L.append("                            while k < kw:")
    for k, a in enumerate(A):
        L.append(
            f"                                {a} += ((pw[wi + {k}] ^ 128) - 128) * (px[xi + {k}] ^ 128)"
        )
    L.append("                                xi += xstep")
    L.append("                                wi += oc")
    L.append("                                k += 1")
    L.append("                        ky += 1")
    for k, a in enumerate(A):
        L.append(f"                    {a} = {a} + bi{k}")
    L.append("                else:")
    L.append("                    kx0 = 0")
    L.append("                    while kx0 < kw and ix0 + dw * kx0 < 0:")
    L.append("                        kx0 += 1")
    L.append("                    kx1 = kw")
    L.append("                    while kx1 > kx0 and ix0 + dw * (kx1 - 1) >= iw:")
    L.append("                        kx1 -= 1")
    L.append("                    n = kx1 - kx0")
    for k, a in enumerate(A):
        L.append(f"                    {a} = bb{k}")
    L.append("                    ky = ky0")
    L.append("                    while ky < ky1:")
    L.append(
        "                        px = ptr8(xa0 + ((iy0 + dh * ky) * iw + ix0 + dw * kx0) * icn)"
    )
    L.append("                        pw = ptr8(fa0 + (ky * kw + kx0) * oc + o)")
    L.append("                        xi = 0")
    L.append("                        wi = 0")
    L.append("                        k = 0")
    L.append("                        while k < n:")
    for k, a in enumerate(A):
        L.append(
            f"                            {a} += ((px[xi + {k}] ^ 128) + offm) * ((pw[wi + {k}] ^ 128) - 128)"
        )
    L.append("                            xi += xstep")
    L.append("                            wi += oc")
    L.append("                            k += 1")
    L.append("                        ky += 1")
    L.append("                oidx = ob + (oy * ow + ox) * oc")
    for k, a in enumerate(A):
        L.append(rq(16, a, "r", f"c{k}").rstrip("\n"))
        L.append("                r = r + ooff")
        L.append(clamp(16, "r", f"po[oidx + {k}]").rstrip("\n"))
    L.append("                ox += 1")
    L.append("            oy += 1")
    L.append("        b += 1")
    L.append("    o += 4")
    return textwrap.indent("\n".join(L) + "\n", " " * ind)


def conv4_macro(ind: int) -> str:
    return conv4(ind, rq, rqsetup, clamp_store)


def dw4_macro(ind: int) -> str:
    return dw4(ind, rq, rqsetup, clamp_store)


MACROS: dict[str, Callable[..., str]] = {
    "RQ": rq,
    "RQSETUP": rqsetup,
    "RQSETUP2": rqsetup2,
    "CONSTS": consts,
    "CLAMP": clamp_store,
    "SRDHM": srdhm,
    "CONV4": conv4_macro,
    "DW4": dw4_macro,
}


def _expand(m: re.Match) -> str:
    ind = len(m.group(1))
    name = m.group(2)
    args = [a.strip() for a in m.group(3).split(",")] if m.group(3).strip() else []
    if name not in MACROS:
        raise ValueError(f"kernels_viper.tpl: unknown macro #@{name}")
    return MACROS[name](ind, *args).rstrip("\n")


def render(template: str | None = None) -> str:
    """The macro-expanded text of a template (default: kernels_viper.tpl), not yet split."""
    src = TEMPLATE.read_text() if template is None else template
    return re.sub(r"^( *)#@(\w+)\((.*)\)$", _expand, src, flags=re.M)


def render_modules(template: str | None = None) -> dict[str, str]:
    """{file name: text} of every kernel module the template defines (kv_fc.py, ...)."""
    parts = re.split(r"^#%module (\w+)\n", render(template), flags=re.M)
    header, rest = parts[0], parts[1:]
    if not rest:
        raise ValueError("kernels_viper.tpl: no `#%module NAME` line")
    out: dict[str, str] = {}
    for name, body in zip(rest[0::2], rest[1::2], strict=True):
        if not name.startswith(PREFIX) or f"{name}.py" in out:
            raise ValueError(f"kernels_viper.tpl: module {name!r} repeated or not named {PREFIX}*")
        out[f"{name}.py"] = header + body.rstrip("\n") + "\n"
    return out


def main() -> int:
    modules = render_modules()
    for stale in sorted(TARGET_DIR.glob(f"{PREFIX}*.py")):
        if stale.name not in modules or stale.name in TEST_ONLY:
            stale.unlink()
            print(f"removed {stale}")
    for name, text in modules.items():
        target(name).write_text(text)
        print(f"wrote {target(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
