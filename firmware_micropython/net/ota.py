# Over-the-air model updates that cannot brick the board or be forged.
#
# A bundle (made and signed by `edgeloop fleet push` on the host) is:
#   b"ELOT" | u16 format | u16 manifest_len | manifest (JSON) | signature (64) | model bytes
# The Ed25519 signature covers the manifest, and the manifest names the model's size, sha256 and
# crc32, its monotonic version and a test vector (input and the exact output it must give).
#
# Steps on the board, each a separate state that survives a reset:
#   receive  chunks appended to ota.part by net/node.py (offset-checked, so a resent chunk is
#            harmless)
#   pending  ota_end: ota.pending written and the board resets, so what follows runs on a
#            fresh heap before the app is loaded
#   verify   signature, version > installed (else a replay), size, crc32 and sha256 of the model;
#            the model is copied to model.new
#   swap     ota.json {"phase": "swap"} written, model.elb -> model.old, model.new -> model.elb
#   test     the new model loaded and run on the test vector; its output must match exactly
#   commit   version.json written (tmp + rename: THE commit point), model.old kept as model.prev
#   probation the new version is on probation until the app has run on it (node confirms after
#            a few windows); an app that fails before that rolls back to model.prev at once
# recover() at boot finishes or undoes an interrupted swap: committed -> keep the new model,
# not committed -> put model.old back. So a board killed at any moment boots with the old model
# or the new one, never neither. The paths are relative to the board's working directory.
import binascii
import hashlib
import json
import os
import struct

MODEL = "model.elb"
NEW = "model.new"
OLD = "model.old"
PREV = "model.prev"  # the model before the last update, kept for a rollback
ROLLBACK = "ota.rollback"
PART = "ota.part"
PENDING = "ota.pending"
STATE = "ota.json"
VERSION = "version.json"
PUBKEY = "fleet_key.bin"
MAGIC = b"ELOT"
FORMAT = 1
MAX_MANIFEST = 4096

# Tests stop the board at a phase to kill it there: {"ota_pause_at": "after_old"} in config.json.
pause_at = None


class OTAError(ValueError):
    pass


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(obj))
    os.rename(tmp, path)  # replaces: atomic on littlefs and on the unix port


def _read_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def installed_version():
    return int(_read_json(VERSION, {}).get("version", 0))


def _phase(name, emit=None):
    if emit is not None:
        emit({"event": "ota_phase", "phase": name})
    if pause_at == name:
        import time

        print('{"event": "ota_paused", "phase": "%s"}' % name)
        while True:  # the test kills the board here
            time.sleep_ms(100)


def recover():
    """At boot: finish or undo an update cut off during its swap. Returns what was done."""
    state = _read_json(STATE, None)
    done = None
    if state and state.get("phase") == "swap":
        if installed_version() == state.get("version"):
            done = "committed"  # killed after the commit point: the new model stays
            if _exists(OLD):
                _remove(PREV)
                os.rename(OLD, PREV)
        elif _exists(OLD):
            _remove(MODEL)
            os.rename(OLD, MODEL)
            done = "rolled_back"
        _remove(OLD)
        _remove(STATE)
    elif state and state.get("phase") == "rollback":
        if _exists(MODEL):  # the previous model is in place: its version is the installed one
            _write_json_atomic(VERSION, state["restore"])
            _remove(OLD)
        elif _exists(OLD):
            os.rename(OLD, MODEL)
        done = "rollback"
        _remove(STATE)
    elif not _exists(MODEL) and _exists(OLD):
        os.rename(OLD, MODEL)
        done = "rolled_back"
    _remove(NEW)
    return done


def rollback():
    """Put the model before the last update back (host's command, or the app failed on the new
    model before it was confirmed). Returns the version now installed, or raises OTAError."""
    info = _read_json(VERSION, {})
    if not _exists(PREV) or "prev" not in info:
        raise OTAError("no previous model on the board")
    restore = info["prev"]
    _write_json_atomic(STATE, {"phase": "rollback", "restore": restore})
    _remove(OLD)
    os.rename(MODEL, OLD)
    os.rename(PREV, MODEL)
    _write_json_atomic(VERSION, restore)
    _remove(OLD)
    _remove(STATE)
    return int(restore.get("version", 0))


def confirm():
    """The app ran on the new model: it is no longer on probation."""
    info = _read_json(VERSION, {})
    if info.get("probation"):
        info["probation"] = False
        _write_json_atomic(VERSION, info)


def on_probation():
    return bool(_read_json(VERSION, {}).get("probation"))


def pending():
    """(id, size) of a received bundle waiting to be checked at boot, or None."""
    p = _read_json(PENDING, None)
    if not p or not _exists(PART):
        _remove(PENDING)
        return None
    return int(p["id"]), int(p["size"])


def verify_pending(size, emit=None):
    """All checks of the received bundle; on success the model waits in model.new."""
    _remove(PENDING)
    try:
        return _verify(size, emit)
    finally:
        _remove(PART)


def _verify(size_total, emit):
    _phase("verify", emit)
    with open(PART, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or head[:4] != MAGIC:
            raise OTAError("not an EdgeLoop OTA bundle")
        fmt, mlen = struct.unpack("<HH", head[4:])
        if fmt != FORMAT:
            raise OTAError("bundle format %d, this board reads %d" % (fmt, FORMAT))
        if mlen > MAX_MANIFEST:
            raise OTAError("manifest too large")
        manifest_bytes = f.read(mlen)
        sig = f.read(64)
        if len(manifest_bytes) != mlen or len(sig) != 64:
            raise OTAError("truncated header")
        try:
            with open(PUBKEY, "rb") as k:
                key = k.read()
        except OSError:
            raise OTAError("no fleet public key on the board (%s)" % PUBKEY)
        from net import ed25519  # ~11 KB of code: imported at boot only, before the app

        try:
            ed25519.verify(key, manifest_bytes, sig)
        except ed25519.BadSignature as exc:
            raise OTAError("signature refused: %s" % exc)
        m = json.loads(manifest_bytes)
        version = int(m["version"])
        if version <= installed_version():
            raise OTAError("replay: version %d is not newer than installed %d"
                           % (version, installed_version()))
        size = int(m["size"])
        if 8 + mlen + 64 + size != size_total:
            raise OTAError("model size differs from the signed manifest")
        crc = 0
        sha = hashlib.sha256()
        buf = bytearray(512)
        mv = memoryview(buf)
        with open(NEW, "wb") as out:
            left = size
            while left:
                n = f.readinto(mv[:min(512, left)])
                if not n:
                    raise OTAError("truncated model")
                crc = binascii.crc32(mv[:n], crc)
                sha.update(mv[:n])
                out.write(mv[:n])
                left -= n
    if (crc & 0xFFFFFFFF) != int(m["crc32"]):
        _remove(NEW)
        raise OTAError("crc32 mismatch")
    if binascii.hexlify(sha.digest()).decode() != m["sha256"]:
        _remove(NEW)
        raise OTAError("sha256 mismatch")
    return m


def self_test(path, manifest):
    """Run the model at path on the signed test vector; True when the output is exact."""
    import elrt

    test = manifest.get("test")
    if not test:
        raise OTAError("the signed bundle carries no test vector")
    x = binascii.unhexlify(test["input"])
    want = binascii.unhexlify(test["output"])
    m = elrt.Model()
    m.load(path)
    mi = m.input
    if len(mi) != len(x):
        return False
    for i in range(len(x)):
        v = x[i]
        mi[i] = v - 256 if v > 127 else v
    m.invoke()
    got = bytes(m.output)
    return got == want


def apply(manifest, emit=None):
    """Swap model.new in, run the self-test, commit or roll back. Returns (ok, detail)."""
    version = int(manifest["version"])
    prev = installed_version()
    _phase("swap", emit)
    _write_json_atomic(STATE, {"phase": "swap", "version": version, "prev": prev})
    _remove(OLD)
    if _exists(MODEL):
        os.rename(MODEL, OLD)
    _phase("after_old", emit)
    os.rename(NEW, MODEL)
    _phase("after_new", emit)
    try:
        ok = self_test(MODEL, manifest)
        detail = "self-test output differs" if not ok else "ok"
    except Exception as exc:  # a model the runtime cannot load is a failed self-test
        ok = False
        detail = "self-test error: %r" % (exc,)
    if ok:
        before = _read_json(VERSION, {"version": prev})
        before.pop("prev", None)
        before["probation"] = False
        _write_json_atomic(VERSION, {"version": version, "run": manifest.get("run"),
                                     "sha256": manifest.get("sha256"), "probation": True,
                                     "prev": before})
        _phase("committed", emit)
        _remove(PREV)
        if _exists(OLD):
            os.rename(OLD, PREV)
        _remove(STATE)
        return True, detail
    _remove(MODEL)
    if _exists(OLD):
        os.rename(OLD, MODEL)
    _remove(STATE)
    return False, detail


def check_and_apply(node, xid, size):
    """At boot, before the app: verify the received bundle, swap it in, self-test, commit or
    roll back; each outcome is a QoS 1 event of node (net/node.py), flushed before the app."""
    import gc
    from time import ticks_diff, ticks_ms

    gc.collect()
    free = gc.mem_free()
    t0 = ticks_ms()
    try:
        m = verify_pending(size)
    except (OSError, ValueError, KeyError) as exc:
        node.event({"event": "ota_refused", "id": xid, "reason": str(exc),
                    "version": node.version})
        node.flush()
        return
    t1 = ticks_ms()
    node.event({"event": "ota_verified", "id": xid, "version": m["version"],
                "verify_ms": ticks_diff(t1, t0), "free": free})
    gc.collect()
    ok, detail = apply(m, node.event if m.get("trace") else None)
    if ok:
        node.version = installed_version()
        node.probation = on_probation()
        node.event({"event": "ota_done", "id": xid, "version": node.version,
                    "apply_ms": ticks_diff(ticks_ms(), t1)})
    else:
        node.event({"event": "ota_failed", "id": xid, "version": node.version,
                    "reason": detail})
    node.flush()
