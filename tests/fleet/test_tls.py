"""TLS to the broker: a real Mosquitto on a TLS-only listener with a CA and server certificate
made here (`cryptography`), the host client trusting that CA (mqtts://...?ca=ca.pem), and a
virtual fleet board connecting over TLS with the CA deployed to it (where the board's port has
`ssl`: the PyPI unix port does; the ESP32-arithmetic build has none)."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edgeloop.fleet.broker import MosquittoBroker, mosquitto_executable, parse_broker
from edgeloop.fleet.errors import FleetError
from edgeloop.fleet.serve import connect_or_fail, host_client
from edgeloop.vboard import micropython_executable

pytestmark = pytest.mark.skipif(mosquitto_executable() is None,
                                reason="TLS listener test needs Mosquitto (apt-get install mosquitto)")


def _cert(subject: str, key, issuer_name, issuer_key, ca: bool) -> x509.Certificate:  # type: ignore[no-untyped-def]
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                          False), critical=True)
    else:  # the name the clients dial: the loopback address (an IP SAN, and as DNS for mbedTLS)
        b = b.add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("127.0.0.1"),
            x509.DNSName("localhost")]), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


def _pem(path: Path, obj) -> Path:  # type: ignore[no-untyped-def]
    if isinstance(obj, x509.Certificate):
        path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(obj.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return path


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A CA, a broker certificate it signed, and a second CA that signed nothing here."""
    d = tmp_path / "pki"
    d.mkdir()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("EdgeLoop test CA", ca_key, None, None, True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = _cert("127.0.0.1", srv_key, ca.subject, ca_key, False)
    other_key = ec.generate_private_key(ec.SECP256R1())
    return {"ca": _pem(d / "ca.pem", ca), "cert": _pem(d / "server.pem", srv),
            "key": _pem(d / "server.key", srv_key),
            "other_ca": _pem(d / "other.pem", _cert("Another CA", other_key, None, None, True))}


@pytest.fixture
def tls_broker(fleet, pki):  # type: ignore[no-untyped-def]
    b = MosquittoBroker(fleet.broker_dir / "tls", fleet.users(), fleet.acl(),
                        tls=(pki["ca"], pki["cert"], pki["key"]))
    b.start()
    yield b
    b.stop()


def test_host_client_over_tls_trusts_the_given_ca_only(fleet, tls_broker, pki) -> None:  # type: ignore[no-untyped-def]
    addr = tls_broker.address
    assert addr.tls and addr.url.startswith("mqtts://127.0.0.1:") and "?ca=" in addr.url
    assert parse_broker(addr.url) == addr  # what `--broker` takes back
    host = host_client(fleet, addr, "tls-host")
    got: list[bytes] = []
    arrived = threading.Event()

    def on_message(c, u, m):  # type: ignore[no-untyped-def]
        got.append(bytes(m.payload))
        arrived.set()

    host.on_message = on_message
    connect_or_fail(host, addr)
    host.subscribe("el/d1/cmd", 1)
    time.sleep(0.3)
    host.publish("el/d1/cmd", b"over tls", qos=1).wait_for_publish(5)
    assert arrived.wait(5) and got == [b"over tls"]
    host.loop_stop()
    host.disconnect()
    # a CA that did not sign the broker's certificate, or plain MQTT on the TLS port: refused
    wrong = parse_broker(f"mqtts://127.0.0.1:{addr.port}?ca={pki['other_ca']}")
    with pytest.raises(FleetError, match="certificate verify failed"):
        connect_or_fail(host_client(fleet, wrong, "tls-wrong"), wrong, timeout=5)
    plain = parse_broker(f"mqtt://127.0.0.1:{addr.port}")
    with pytest.raises(FleetError):
        connect_or_fail(host_client(fleet, plain, "tls-plain"), plain, timeout=5)


def test_broker_url_ca_option_is_checked(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="no CA certificate file"):
        parse_broker(f"mqtts://h?ca={tmp_path / 'missing.pem'}")
    with pytest.raises(FleetError, match="use mqtts://"):
        parse_broker(f"mqtt://h?ca={tmp_path}")
    with pytest.raises(FleetError, match="only option is"):
        parse_broker("mqtts://h?cafile=x")


def _board_has_ssl() -> bool:
    r = subprocess.run([micropython_executable(), "-c", "import ssl; ssl.SSLContext"],
                       capture_output=True, timeout=30)
    return r.returncode == 0


def test_virtual_board_reports_over_tls(fleet, tls_broker, pki, model_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edgeloop.fleet.virtual import lay_out_board

    if not _board_has_ssl():
        pytest.skip("this virtual board's MicroPython has no ssl module (the ESP32-arithmetic "
                    "build); stock ESP32 firmware has it")
    addr = tls_broker.address
    host = host_client(fleet, addr, "tls-watch")
    seen = threading.Event()
    host.on_message = lambda c, u, m: seen.set()
    connect_or_fail(host, addr)
    host.subscribe("el/d1/status", 0)
    board = lay_out_board(fleet, "d1", model_file, addr, tmp_path / "boards" / "d1")
    import ssl

    der = ssl.PEM_cert_to_DER_cert(Path(addr.ca).read_text())
    assert (board.root / "ca.der").read_bytes() == der  # the CA, as MicroPython takes it
    board.start()
    try:
        assert seen.wait(60), board.console()
    finally:
        board.stop()
    # a board given another CA does not take the broker's certificate: it never gets through
    from dataclasses import replace

    seen.clear()
    wrong = replace(addr, ca=str(pki["other_ca"]))
    other = lay_out_board(fleet, "d1", model_file, wrong, tmp_path / "boards" / "d1-wrong-ca")
    other.start()
    try:
        assert not seen.wait(15), other.console()
        assert other.alive and other.resets == 0, other.console()  # it keeps trying (with backoff), never crashes
    finally:
        other.stop()
        host.loop_stop()
        host.disconnect()
