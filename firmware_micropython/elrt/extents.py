# Op params against tensor sizes, checked once when a bundle is loaded.
#
# The kernels trust their params (loop counts, strides, channel counts): viper kernels index raw
# pointers, so a param larger than its tensor reads or writes outside it and can crash the board.
# A bundle's CRC only says the bytes arrived; this says every op stays inside its tensors.
# converters/bundle.py (check_extents) makes the same checks on the host, word for word.


def check_extents(where, code, sizes, prm):
    """None, or what is wrong: a param that asks for more than its tensor holds.

    sizes: (dtype size in bytes, nbytes) per tensor of the op, in record order; prm: the op's
    params. Opcodes as in converters/registry.py (1 FULLY_CONNECTED .. 15 SUB); a new op adds
    its rule here (docs/adding-an-op.md), else only the generic checks cover it."""
    try:
        _check(where, code, sizes, prm)
    except ValueError as e:
        return str(e)
    except IndexError:  # fewer params or tensors than the op has: the arity checks say more
        return "%s: %d params/%d tensors do not fit the op" % (where, len(prm), len(sizes))
    return None


def _check(where, code, sizes, prm):
    if code not in (6, 7, 8, 14, 15):  # their params hold multipliers and float bits
        for v in prm:
            if v < -(1 << 24) or v >= (1 << 24):
                raise ValueError("%s: param %d out of range" % (where, v))
    n = [nb // (isz or 1) for isz, nb in sizes]
    need = None
    if code == 1:  # in, filter, bias, mult, shift, out: batches accum_depth output_depth
        b, a, o = prm[0], prm[1], prm[2]
        _pos(where, (b, a, o))
        need = (b * a, o * a, 4 * o, 4 * o, 4 * o, b * o)
        n = [n[0], n[1], sizes[2][1], sizes[3][1], sizes[4][1], n[5]]
    elif code == 2 or code == 3:  # conv / depthwise: b in_h in_w in_c out_h out_w out_c k_h k_w
        b, ih, iw, ic, oh, ow, oc, kh, kw = prm[:9]
        _pos(where, prm[:13])
        if min(prm[9:13]) < 1 or prm[13] < 0 or prm[14] < 0:
            raise ValueError("%s: stride/dilation must be >= 1 and padding >= 0" % where)
        if code == 3:
            dm = prm[15]
            if dm < 1 or ic * dm != oc:
                raise ValueError("%s: %d input channels x depth multiplier %d != %d output "
                                 "channels" % (where, ic, dm, oc))
            f = kh * kw * oc
        else:
            f = oc * kh * kw * ic
        need = (b * ih * iw * ic, f, 4 * oc, 4 * oc, 4 * oc, b * oh * ow * oc)
        n = [n[0], n[1], sizes[2][1], sizes[3][1], sizes[4][1], n[5]]
    elif code == 4 or code == 5:  # pools: b in_h in_w c out_h out_w f_h f_w s_h s_w pad_t pad_l
        _pos(where, prm[:10])
        if min(prm[6:10]) < 1 or prm[10] < 0 or prm[11] < 0:
            raise ValueError("%s: filter/stride must be >= 1 and padding >= 0" % where)
        b, ih, iw, c, oh, ow = prm[:6]
        need = (b * ih * iw * c, b * oh * ow * c)
    elif code == 6:  # mean: outer reduce inner
        _pos(where, prm[:3])
        need = (prm[0] * prm[1] * prm[2], prm[0] * prm[2])
    elif code == 7 or code == 8 or code == 15:  # add/mul/sub: last 12 params d0..d3, s1_*, s2_*
        br = prm[-12:]
        _pos(where, br)
        d = br[:4]
        total = d[0] * d[1] * d[2] * d[3]
        need = (_span(d, br[4:8], total), _span(d, br[8:12], total), total)
    elif code == 9:  # softmax: in, exp LUT, exp-sum LUT, out: outer depth
        _pos(where, prm[:2])
        need = (prm[0] * prm[1], 1024, 1024, prm[0] * prm[1])
        n = [n[0], sizes[1][1], sizes[2][1], n[3]]
    elif code == 10:  # lut: in, 256-entry table, out: n_elements
        _pos(where, prm[:1])
        need = (prm[0], 256, prm[0])
        n = [n[0], sizes[1][1], n[2]]
    elif code == 13:  # dequantize: in, 256 float32 table, out float32: n_elements
        _pos(where, prm[:1])
        need = (prm[0], 1024, prm[0])
        n = [n[0], sizes[1][1], n[2]]
    elif code == 14:  # quantize_f32: in float32, out int8: n_elements zero_point scale_bits
        _pos(where, prm[:1])
        need = (prm[0], prm[0])
    elif code == 11:  # concatenation: k inputs, out: n_inputs outer copy_0..copy_k-1
        k = prm[0]
        _pos(where, prm[1:])
        outer = prm[1]
        need = [outer * c for c in prm[2:2 + k]]
        total = 0
        for c in prm[2:2 + k]:
            total += c
        need.append(outer * total)
    elif code == 12:  # pad: d0..d3 b0..b3 a0..a3 pad_value
        _pos(where, prm[:12])
        d = prm[:4]
        o = 1
        for i in range(4):
            o *= d[i] + prm[4 + i] + prm[8 + i]
        need = (d[0] * d[1] * d[2] * d[3], o)
    if need is None:
        return
    for j in range(len(need)):
        if need[j] > n[j]:
            raise ValueError("%s: its params need %d of tensor %d (operand %d), which holds %d"
                             % (where, need[j], j, j, n[j]))


def _pos(where, vals):
    for v in vals:
        if v < 0:
            raise ValueError("%s: negative size or stride %d in its params" % (where, v))


def _span(d, s, total):
    # elements one broadcast input must hold: 1 + the largest offset the strides reach
    if total == 0:
        return 0
    m = 1
    for i in range(4):
        m += (d[i] - 1) * s[i]
    return m
