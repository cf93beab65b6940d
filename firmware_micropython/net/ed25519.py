# Ed25519 signature verification (RFC 8032, section 5.1.7) in plain MicroPython.
#
# The board holds only the fleet's public key and checks that an over-the-air bundle's manifest
# was signed with the matching private key (`edgeloop fleet keygen` on the host). Stock ESP32
# firmware has no signature check and no SHA-512, so both are done here with Python's big ints
# (net/sha512.py when hashlib has no sha512). Verification only: no secret ever touches the board,
# so constant time does not matter here.
#
# The check is cofactorless, as OpenSSL's and libsodium's: encode([S]B - [k]A) == R, with
# k = SHA-512(R || A || M) mod L, S < L and A a valid point encoding.
try:
    from hashlib import sha512
except ImportError:
    from net.sha512 import sha512

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
D2 = 16295367250680780974490674513165176452449235426866156013048779062215315747161  # 2*D mod P
SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960
BASE = (_BX, _BY, 1, _BX * _BY % P)
_ZERO = (0, 1, 1, 0)


class BadSignature(ValueError):
    pass


def _add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    p = P
    a = (y1 - x1) * (y2 - x2) % p
    b = (y1 + x1) * (y2 + x2) % p
    c = t1 * D2 * t2 % p
    d = 2 * z1 * z2 % p
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def _double(p1):
    x1, y1, z1, _ = p1
    p = P
    a = x1 * x1 % p
    b = y1 * y1 % p
    c = 2 * z1 * z1 % p
    h = a + b
    s = x1 + y1
    e = h - s * s % p
    g = a - b
    f = c + g
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def _neg(pt):
    x, y, z, t = pt
    return ((-x) % P, y, z, (-t) % P)


def _decode(s):
    """A point from its 32-byte encoding, or BadSignature if it is none."""
    if len(s) != 32:
        raise BadSignature("point must be 32 bytes")
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        raise BadSignature("point y out of range")
    p = P
    u = (y * y - 1) % p
    v = (D * y * y + 1) % p
    v3 = v * v * v % p
    x = u * v3 * pow(u * v3 * v3 * v % p, (p - 5) // 8, p) % p
    vx2 = v * x * x % p
    if vx2 == u:
        pass
    elif vx2 == (-u) % p:
        x = x * SQRT_M1 % p
    else:
        raise BadSignature("not a point on the curve")
    if x == 0 and sign:
        raise BadSignature("non-canonical point")
    if (x & 1) != sign:
        x = p - x
    return (x, y, 1, x * y % p)


def _encode(pt):
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x = x * zi % P
    y = y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _double_mul(s, k, a):
    """[s]BASE + [k]a, both scalars in one pass of doublings (Straus-Shamir)."""
    both = _add(BASE, a)
    table = (None, BASE, a, both)
    acc = _ZERO
    for i in range(252, -1, -1):  # both scalars are < L < 2**253
        acc = _double(acc)
        sel = ((s >> i) & 1) | (((k >> i) & 1) << 1)
        if sel:
            acc = _add(acc, table[sel])
    return acc


def verify(public_key, message, signature):
    """True when signature (64 bytes) is public_key's (32 bytes) Ed25519 signature of message;
    raises BadSignature with the reason otherwise."""
    if len(signature) != 64:
        raise BadSignature("signature must be 64 bytes, got %d" % len(signature))
    a = _decode(bytes(public_key))
    r = bytes(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        raise BadSignature("signature scalar out of range")
    h = sha512(r)
    h.update(bytes(public_key))
    h.update(bytes(message))
    k = int.from_bytes(h.digest(), "little") % L
    if _encode(_double_mul(s, k, _neg(a))) != r:
        raise BadSignature("signature does not match")
    return True
