"""The four-channel group paths of the MAC-heavy viper kernels, and the conv/depthwise geometry.

Each group macro (`#@CONV4()`, `#@DW4()`, `#@FC4()` in kernels_viper.tpl) writes the loop that
computes four output channels per pass over the input, unrolled, so each input byte is loaded
once for four filters. They are given the inline requantization blocks (tools/kernel_macros.py)
as arguments, so this module builds loops and nothing else.
"""

from __future__ import annotations

import textwrap


def taps(ind, axis):
    """The in-bounds filter taps of one output position along `y` (rows ky0..ky1 of the window
    starting at input row iy0) or `x` (columns kx0..kx1 from ix0): the border-pixel bounds
    shared by the conv and depthwise kernels."""
    bounds = {"y": ("ky", "iy0", "kh", "dh", "ih"), "x": ("kx", "ix0", "kw", "dw", "iw")}
    k, i, n, d, lim = bounds[axis]
    s = f"""\
{k}0 = 0
while {k}0 < {n} and {i} + {d} * {k}0 < 0:
    {k}0 += 1
{k}1 = {n}
while {k}1 > {k}0 and {i} + {d} * ({k}1 - 1) >= {lim}:
    {k}1 -= 1
"""
    return textwrap.indent(s, " " * ind)


def geometry(ind, channels):
    """Unpark the conv/depthwise geometry from _A[6..20] (`channels`: the input depth's name)."""
    names = ["batches", "ih", "iw", channels, "oh", "ow", "oc", "kh", "kw", "sh", "sw", "dh",
             "dw", "pt", "pl"]
    lines = [f"{v} = int(a[{j}])" for j, v in enumerate(names, start=6)]
    return textwrap.indent("\n".join(lines) + "\n", " " * ind)


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
    pw_at = len(L)
    L.append("        while oy < oh:")
    L.append("            iy0 = oy * sh - pt")
    L.append(taps(12, "y").rstrip("\n"))
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
    run_at = len(L)  # the interior's dot-product runs, reused by the pointwise path
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
    runs = [ln[12:] for ln in L[run_at:]]
    L.append("                            j += 1")
    L.append("                        ky += 1")
    for k in K:
        a = "acc" if k == 0 else f"acc{k}"
        L.append(f"                    {a} = {a} + bi{k}")
    L.append("                else:")
    L.append(taps(20, "x").rstrip("\n"))
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
        L.append(f"                                {a} += ((pw[0] ^ 128) - 128) * x0")
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
    # Pointwise (1x1, stride 1, no padding: every pixel interior, one run of ic bytes): the
    # pixels in one flat loop, no window bounds or row/column loops.
    P = ["        if pw1:", "            xa = xa0", "            wa = fo", "            oidx = ob"]
    P += ["            while oy < npx:"]
    P += [f"                {'acc' if k == 0 else f'acc{k}'} = 0" for k in K]
    P += ["                xs = xa"]
    P += [ln.replace("frl", "ic") for ln in runs]
    for k in K:
        a = "acc" if k == 0 else f"acc{k}"
        P.append(f"                {a} = {a} + bi{k}")
        P.append(rq(16, a, "r", f"c{k}").rstrip("\n"))
        P.append("                r = r + ooff")
        P.append(clamp(16, "r", f"po[oidx + {k}]").rstrip("\n"))
    P += ["                xa = xs + ic", "                wa = fo", "                oidx += oc",
          "                oy += 1", "            oy = oh  # the row loop below is skipped"]
    L[pw_at:pw_at] = P
    return textwrap.indent("\n".join(L) + "\n", " " * ind)


def dw4(ind, rq, rqsetup, clamp):
    """Four adjacent channels per pass (depth_multiplier 1): shared addressing and loop
    overhead; the channels' taps are adjacent bytes in both input and filter. A 3x3 filter's
    signed taps are read once per group into locals (w<tap><channel>), so an interior pixel
    loads only its 36 input bytes; a (k, 1) filter runs down one column."""
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
    # a 3x3 filter's 36 signed taps of the four channels, loaded once per group (locals)
    L.append("    if k33:")
    for t in range(9):
        L.append(f"        pw = ptr8(fa0 + o + {t} * oc)")
        for k in K:
            L.append(f"        w{t}{k} = (pw[{k}] ^ 128) - 128")
    L.append("    b = 0")
    L.append("    while b < batches:")
    L.append("        xa0 = xbase + b * isz + o")
    L.append("        ob = b * osz + o")
    L.append("        oy = 0")
    L.append("        while oy < oh:")
    L.append("            iy0 = oy * sh - pt")
    L.append(taps(12, "y").rstrip("\n"))
    L.append("            rowin = ky0 == 0 and ky1 == kh")
    L.append("            ox = 0")
    L.append("            while ox < ow:")
    L.append("                ix0 = ox * sw - pl")
    L.append("                if rowin and ix0 >= 0 and ix0 + dw * (kw - 1) < iw:")
    for a in A:
        L.append(f"                    {a} = 0")
    # a (k, 1) filter (the streaming wake-word model's temporal taps): one run down the column
    L.append("                    if k33:")
    L.append("                        ra = xa0 + (iy0 * iw + ix0) * icn")
    for ky in range(3):
        if ky:
            L.append("                        ra = ra + ystep")
        L.append("                        px = ptr8(ra)")
        L.append("                        pr = ptr8(ra + xstep)")
        L.append("                        pq = ptr8(ra + xstep2)")
        for k, a in enumerate(A):
            t = 3 * ky
            op = "=" if ky == 0 else "+="
            L.append(f"                        {a} {op} ((px[{k}] ^ 128) * w{t}{k} + (pr[{k}] ^ 128) * w{t + 1}{k}")
            L.append(f"                                + (pq[{k}] ^ 128) * w{t + 2}{k})")
    L.append("                        ky = kh  # every row done: the row loop below is skipped")
    L.append("                    elif kw == 1:")
    L.append("                        px = ptr8(xa0 + (iy0 * iw + ix0) * icn)")
    L.append("                        pw = ptr8(fa0 + o)")
    L.append("                        xi = 0")
    L.append("                        wi = 0")
    L.append("                        k = 0")
    L.append("                        while k < kh:")
    for k, a in enumerate(A):
        L.append(
            f"                            {a} += ((pw[wi + {k}] ^ 128) - 128) * (px[xi + {k}] ^ 128)"
        )
    L.append("                            xi += ystep")
    L.append("                            wi += oc")
    L.append("                            k += 1")
    L.append("                        ky = kh")
    L.append("                    else:")
    L.append("                        ky = 0")
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
    L.append(taps(20, "x").rstrip("\n"))
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


def fc4(ind, rq, rqsetup, clamp):
    """Four output channels per pass over a batch row of _fully_connected: each input byte is
    loaded and sign-extended once for four weight rows (the head's 8-wide runs use the
    unsigned-weight identity, the tail signed weights, as the one-channel loop). With one
    multiplier and shift for every output (uni: a per-tensor layer, TFLite's usual FC) the
    requantization parts were set up once, before the loop."""
    A = ["acc", "acc1", "acc2", "acc3"]
    L = []
    L.append("d2 = depth + depth")
    L.append("d3 = d2 + depth")
    L.append("while o + 3 < odepth:")
    L.append("    if uni == 0:")
    for k in range(4):
        L.append(rqsetup(8, f"c{k}", "pm", "ps", f"o + {k}").rstrip("\n"))
    for a in A:
        L.append(f"    {a} = 0")
    L.append("    xa = xb")
    L.append("    wa = wa0 + o * depth")
    L.append("    xe = xa + head")
    L.append("    while xa < xe:")
    L.append("        px = ptr8(xa)")
    L.append("        pw = ptr8(wa)")
    L.append("        p1 = ptr8(wa + depth)")
    L.append("        p2 = ptr8(wa + d2)")
    L.append("        p3 = ptr8(wa + d3)")
    for i in range(8):
        L.append(f"        x{i} = (px[{i}] ^ 128) - 128")
    for k, (a, pk) in enumerate(zip(A, ["pw", "p1", "p2", "p3"], strict=True)):
        terms = [f"({pk}[{i}] ^ 128) * x{i}" for i in range(8)]  # x a right operand: no spill
        L.append(f"        {a} += ({terms[0]} + {terms[1]}")
        for i in range(2, 8, 2):
            tail = ")" if i + 2 >= 8 else ""
            L.append(f"                + {terms[i]} + {terms[i + 1]}{tail}")
        del k
    L.append("        xa += 8")
    L.append("        wa += 8")
    L.append("    px = ptr8(xa)")
    L.append("    pw = ptr8(wa)")
    L.append("    p1 = ptr8(wa + depth)")
    L.append("    p2 = ptr8(wa + d2)")
    L.append("    p3 = ptr8(wa + d3)")
    L.append("    n = depth - head")
    L.append("    i = 0")
    L.append("    while i < n:")
    L.append("        x0 = (px[i] ^ 128) - 128")
    for a, pk in zip(A, ["pw", "p1", "p2", "p3"], strict=True):
        L.append(f"        {a} += (({pk}[i] ^ 128) - 128) * x0")
    L.append("        i += 1")
    for k, a in enumerate(A):
        L.append(f"    bo = pb[o + {k}]")
        L.append("    if bo & sgn:")
        L.append("        bo = (bo & msk) + sgn")
        L.append(f"    {a} = {a} - sx + bo")
        L.append(rq(4, a, "r", f"c{k}").rstrip("\n"))
        L.append("    r = r + ooff")
        L.append(clamp(4, "r", f"po[o_i + {k}]").rstrip("\n"))
    L.append("    o_i += 4")
    L.append("    o += 4")
    return textwrap.indent("\n".join(L) + "\n", " " * ind)
