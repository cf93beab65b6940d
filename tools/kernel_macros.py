"""The inline blocks of the viper kernel template (`#@NAME(args)` lines of kernels_viper.tpl).

MicroPython has no macros and a viper call would box its int arguments (a heap allocation on a
32-bit board), so TFLM's requantization (MultiplyByQuantizedMultiplier on 16-bit halves), the
clamps, the argument parking of the MAC-heavy kernels and the ADD/SUB body are written once here
and inlined by tools/gen_kernels.py. Each macro takes the indentation of its template line first
and returns the text to put there. The four-channel group paths and the conv/depthwise geometry
are in tools/kernel_groups.py.
"""

from __future__ import annotations

import textwrap


def rdbpot(r, p):
    """RoundingDivideByPOT(r, {p}e) in place, branch-free (see rq()): one line."""
    return f"{r} = ({r} >> {p}e) + ((({p}rt + (({r} >> 31) & 1) - ({r} & {p}rm)) >> 31) & 1)"


def rq(ind, x, r, p):
    """Inline MultiplyByQuantizedMultiplier(x) -> r with precomputed parts prefixed p:
    {p}m, {p}mh, {p}ml (the multiplier's 16-bit halves, ml signed: m = mh * 2**16 + ml),
    {p}lb (1<<(31-s) or 0), {p}sl (left shift), {p}e (right), {p}rm, {p}rt.

    SaturatingRoundingDoublingHighMul(x, m) for 0 <= m < 2**31 is floor((x * m + 2**30) /
    2**31) for either sign of the product (TFLM's nudge 1 - 2**30 and truncation toward zero of
    a negative product give the same), so it is computed on the signed halves of x and m
    (x = xh * 2**16 + xl, 0 <= xl < 2**16) without abs() or a branch; every partial product
    and sum stays within int32 (|xh * ml| <= 2**30, xl * mh < 2**31). RoundingDivideByPOT is
    branch-free too: it adds 1 when the remainder exceeds rt (+1 for a negative r), i.e. when
    rt + neg - rem < 0, read off that difference's sign bit (e = 0: rm = rt = 0 adds nothing)."""
    s = f"""\
# {r} = MultiplyByQuantizedMultiplier({x}, {p}m, shift) on 16-bit halves
xq = {x}
if {p}lb:
    hib = xq & {p}lb
    xq = (xq & ({p}lb - 1)) << {p}sl
    if hib:
        xq = xq + sgn
xl = xq & 0xFFFF
xh = xq >> 16
cc = xl * {p}mh
{r} = ((xh * {p}mh) << 1) + ((cc >> 15) + ((xh * {p}ml + (cc & 0x7FFF) + ((xl * {p}ml) >> 16)
                                           + 16384) >> 15))
{rdbpot(r, p)}
"""
    return textwrap.indent(s, " " * ind)


def rqsetup(ind, p, pm, ps, idx):
    """The per-channel parts rq() uses, from the multiplier and shift words (0 <= m < 2**31):
    the low half is taken signed (ml in [-2**15, 2**15), mh <= 2**15) so that no partial
    product of rq() leaves int32."""
    s = f"""\
{p}m = {pm}[{idx}]
{p}mh = {p}m >> 16
{p}ml = {p}m & 0xFFFF
if {p}ml & 0x8000:
    {p}ml = {p}ml - 65536
    {p}mh = {p}mh + 1
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


def add_sub(op):
    """The body of the ADD (op "+") and SUB (op "-") kernels: TFLM's Add/SubElementwise with
    broadcasting; the two differ only in how the rescaled inputs combine. It is template text
    (it uses the other macros): the generator expands it before indenting it."""
    if op not in ("+", "-"):
        raise ValueError(f"#@ADD_SUB({op}): the operator must be + or -")
    s = f"""\
#@CONSTS()
p1 = ptr8(input1)
p2 = ptr8(input2)
po = ptr8(output)
amin = output_activation_min
amax = output_activation_max
pbc = ptr32(broadcast)
d0 = pbc[0]
d1 = pbc[1]
d2 = pbc[2]
d3 = pbc[3]
a0 = pbc[4]
a1 = pbc[5]
a2 = pbc[6]
a3 = pbc[7]
b0 = pbc[8]
b1 = pbc[9]
b2 = pbc[10]
b3 = pbc[11]
#@RQSETUP2(a, input1_multiplier, input1_shift)
#@RQSETUP2(b, input2_multiplier, input2_shift)
#@RQSETUP2(c, output_multiplier, output_shift)
# The rescaled inputs are MBQM(v << left_shift) with |v| = |x + offset| <= 255. For 15 <=
# left_shift <= 22 and input shifts <= 0 (TFLM's int8 ADD/SUB: 20, multipliers below one)
# SaturatingRoundingDoublingHighMul(v << L, m) is exactly (v * mh << (L - 15)) + ((v * ml +
# 2**(30 - L)) >> (31 - L)) on m's unsigned 16-bit halves: two small products per input.
fast = 0
ls15 = 0
rs = 0
rnd = 0
amhu = am >> 16
amlu = am & 0xFFFF
bmhu = bm >> 16
bmlu = bm & 0xFFFF
if left_shift >= 15 and left_shift <= 22 and alb == 0 and blb == 0:
    fast = 1
    ls15 = left_shift - 15
    rs = 31 - left_shift
    rnd = 1
    rnd = rnd << (30 - left_shift)
o_i = 0
i0 = 0
while i0 < d0:
    i1 = 0
    while i1 < d1:
        i2 = 0
        while i2 < d2:
            j1 = i0 * a0 + i1 * a1 + i2 * a2
            j2 = i0 * b0 + i1 * b1 + i2 * b2
            k = 0
            while k < d3:
                va = ((p1[j1] ^ 128) - 128) + input1_offset
                vb = ((p2[j2] ^ 128) - 128) + input2_offset
                if fast:
                    ra = ((va * amhu) << ls15) + ((va * amlu + rnd) >> rs)
                    {rdbpot("ra", "a")}
                    rb = ((vb * bmhu) << ls15) + ((vb * bmlu + rnd) >> rs)
                    {rdbpot("rb", "b")}
                else:
                    va = va << left_shift
                    vb = vb << left_shift
                    #@RQ(va, ra, a)
                    #@RQ(vb, rb, b)
                vs = ra {op} rb
                #@RQ(vs, r, c)
                r = r + output_offset
                #@CLAMP(r, po[o_i])
                o_i += 1
                j1 += a3
                j2 += b3
                k += 1
            i2 += 1
        i1 += 1
    i0 += 1
"""
    return s


PARK_AREA = """\
# The three MAC-heavy kernels are a thin public wrapper that parks its arguments in _A and calls
# a zero-argument implementation: viper keeps a function's first locals in machine registers and
# arguments come first, so with 12-26 arguments no loop variable would get one. The
# implementations declare their hottest locals (accumulator, two addresses) first. _A is
# preallocated; storing into it allocates nothing. Kernels never run concurrently.
_A = [0] * 26
"""


def park_area(ind):
    """The argument parking list of the MAC-heavy kernels (fc, conv, dw) and why it exists."""
    return textwrap.indent(PARK_AREA, " " * ind)


def parked_call(ind, impl, *, params):
    """The public wrapper's body: park every argument in _A, call impl, drop the buffers."""
    if not 6 <= len(params) <= 26:
        raise ValueError(f"#@PARKED_CALL({impl}): {len(params)} arguments do not fit _A")
    lines = ["a = _A", *(f"a[{i}] = {p}" for i, p in enumerate(params)), f"{impl}()",
             "a[0] = 0  # drop the buffer references: _A must not keep an unloaded model's "
             "memory alive", *(f"a[{i}] = 0" for i in range(1, 6))]
    return textwrap.indent("\n".join(lines) + "\n", " " * ind)
