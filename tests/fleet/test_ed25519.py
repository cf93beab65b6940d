"""The board's Ed25519 verification and SHA-512 against the host's vetted `cryptography`:
in CPython over many random cases (the device code is plain Python), then on the selected
virtual board (EDGELOOP_MICROPYTHON; make test-esp32sem: the ESP32's 32-bit arithmetic) over a
batch that includes every kind of forgery."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from factory.hostimport import import_device_file
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeloop.firmware import FIRMWARE_DIR
from edgeloop.vboard import micropython_executable

sha512_mod = import_device_file(FIRMWARE_DIR / "net" / "sha512.py", "net.sha512")
ed = import_device_file(FIRMWARE_DIR / "net" / "ed25519.py", "net.ed25519")


def _raw(pub) -> bytes:  # type: ignore[no-untyped-def]
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 300))
def test_sha512_matches_hashlib(data: bytes, cut: int) -> None:
    h = sha512_mod.sha512(data[:cut])
    h.update(data[cut:])
    assert h.digest() == hashlib.sha512(data).digest()


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 63), st.integers(0, 7))
def test_verify_accepts_real_and_refuses_flipped(msg: bytes, byte: int, bit: int) -> None:
    key = Ed25519PrivateKey.generate()
    pub = _raw(key.public_key())
    sig = key.sign(msg)
    assert ed.verify(pub, msg, sig)
    bad = bytearray(sig)
    bad[byte] ^= 1 << bit
    with pytest.raises(ed.BadSignature):
        ed.verify(pub, msg, bytes(bad))
    with pytest.raises(ed.BadSignature):
        ed.verify(pub, msg + b"x", sig)


def test_rfc8032_vector() -> None:
    pub = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = bytes.fromhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8"
                        "821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    assert ed.verify(pub, b"", sig)


def _cases() -> list[tuple[str, str, str, bool]]:
    """(public key, message, signature) hex, and whether it must verify."""
    k1, k2 = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    p1 = _raw(k1.public_key())
    msg = json.dumps({"version": 3, "sha256": "ab" * 32, "test": "cd" * 200}).encode()
    sig = k1.sign(msg)
    s_over_l = sig[:32] + (int.from_bytes(sig[32:], "little") + ed.L).to_bytes(32, "little")
    cases = [
        (p1, msg, sig, True),
        (p1, b"", k1.sign(b""), True),
        (p1, msg * 3, k1.sign(msg * 3), True),  # several SHA-512 blocks
        (p1, msg.replace(b"3", b"4", 1), sig, False),  # tampered manifest
        (p1, msg, k2.sign(msg), False),  # signed by another key
        (p1, msg, bytes(64), False),  # unsigned (zero signature)
        (p1, msg, s_over_l, False),  # malleated S + L
        (bytes(31) + b"\x80", msg, sig, False),  # not a valid key encoding
    ]
    return [(p.hex(), m.hex(), s.hex(), ok) for p, m, s, ok in cases]


_BOARD = """
import binascii, time
from net import ed25519
cases = %r
times = []
for pk, m, s, want in cases:
    u = binascii.unhexlify
    t0 = time.ticks_us()
    try:
        got = ed25519.verify(u(pk), u(m), u(s))
    except ed25519.BadSignature:
        got = False
    times.append(time.ticks_diff(time.ticks_us(), t0))
    print("CASE", got == want)
print("US", times[0])
"""


def test_verify_on_the_virtual_board(tmp_path) -> None:  # type: ignore[no-untyped-def]
    exe = micropython_executable()  # the selected board: make test-esp32sem runs it 32-bit
    (tmp_path / "net").mkdir()
    for name in ("ed25519.py", "sha512.py"):
        (tmp_path / "net" / name).write_bytes((FIRMWARE_DIR / "net" / name).read_bytes())
    (tmp_path / "net" / "__init__.py").write_text("")
    (tmp_path / "run.py").write_text(_BOARD % (_cases(),))
    env = dict(os.environ, MICROPYPATH=str(tmp_path))
    out = subprocess.run([exe, "-X", "heapsize=100K", "run.py"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    results = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("CASE")]
    assert results == ["True"] * 8, out.stdout
