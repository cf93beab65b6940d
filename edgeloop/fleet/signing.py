"""Signed OTA bundles: the host signs with Ed25519 (`cryptography`), the board verifies.

Bundle layout (read by firmware_micropython/net/ota.py):

    b"ELOT" | u16 format (1) | u16 manifest_len | manifest JSON | Ed25519 signature (64) | model

The signature covers the manifest; the manifest pins the model by size, crc32 and sha256, and
carries the monotonic version and a test vector (input, and the exact output the golden executor
gives), so a board can run its new model once before it acknowledges the update.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import struct
import time
from dataclasses import dataclass

import numpy as np

from edgeloop.fleet.errors import FleetError

MAGIC = b"ELOT"
FORMAT = 1
MAX_MANIFEST = 4096  # the board refuses larger manifests (its SHA-512 is pure Python)


def generate_key() -> tuple[bytes, bytes]:
    """A new signing key: (PKCS#8 PEM private key, raw 32-byte public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pem, pub


def _private_key(pem: bytes):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise FleetError("the fleet signing key is not an Ed25519 key")
    return key


def sign(pem: bytes, message: bytes) -> bytes:
    return _private_key(pem).sign(message)


def public_key_of(pem: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return _private_key(pem).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def test_vector(model: bytes, seed: int = 0) -> tuple[bytes, bytes]:
    """A seeded int8 input (extremes included) and the golden executor's exact output."""
    from converters.bundle import parse_bundle
    from converters.golden import run_bundle

    bun = parse_bundle(model)
    in_shape = tuple(bun.tensors[bun.inputs[0]].shape)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=in_shape, dtype=np.int8)
    flat = x.reshape(-1)
    flat[:2] = (-128, 127)
    batch = x if (len(in_shape) > 1 and in_shape[0] == 1) else x[np.newaxis]
    y = np.asarray(run_bundle(model, batch)).astype(np.int8).reshape(-1)
    return x.tobytes(), y.tobytes()


@dataclass
class Bundle:
    data: bytes
    manifest: dict

    @property
    def version(self) -> int:
        return int(self.manifest["version"])


def make_bundle(model: bytes, version: int, pem: bytes, run: str = "",
                vector: tuple[bytes, bytes] | None = None) -> Bundle:
    """Sign model as version `version` (must grow: boards refuse anything not newer)."""
    x, y = vector if vector is not None else test_vector(model)
    manifest = {
        "format": FORMAT,
        "version": int(version),
        "run": run,
        "size": len(model),
        "crc32": binascii.crc32(model) & 0xFFFFFFFF,
        "sha256": hashlib.sha256(model).hexdigest(),
        "test": {"input": x.hex(), "output": y.hex()},
        "signed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    mbytes = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
    if len(mbytes) > MAX_MANIFEST:
        raise FleetError(
            f"the OTA manifest is {len(mbytes)} bytes (board limit {MAX_MANIFEST}): the model's "
            "input is too large for a test vector in the manifest"
        )
    sig = sign(pem, mbytes)
    data = MAGIC + struct.pack("<HH", FORMAT, len(mbytes)) + mbytes + sig + model
    return Bundle(data, manifest)


def read_bundle(data: bytes) -> tuple[dict, bytes, bytes, bytes]:
    """(manifest, manifest bytes, signature, model) of a bundle; FleetError if malformed."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise FleetError("not an EdgeLoop OTA bundle (no ELOT header)")
    fmt, mlen = struct.unpack_from("<HH", data, 4)
    mbytes = data[8:8 + mlen]
    sig = data[8 + mlen:8 + mlen + 64]
    if fmt != FORMAT or len(mbytes) != mlen or len(sig) != 64:
        raise FleetError("OTA bundle header is damaged")
    return json.loads(mbytes), mbytes, sig, data[8 + mlen + 64:]
