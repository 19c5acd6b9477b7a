"""Issue 14, item 6: several certificates chosen by SNI (--tls-sni-cert) on every TLS
listener, and the certificates re-read on SIGHUP without dropping connections."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

import harness
from harness import HOST, wait_until

pytestmark = pytest.mark.timeout(180)


def make_cert(directory, stem, cn, sans, subj=None):
    """A fresh self-signed EC certificate and key: (cert, key) paths."""
    cert = os.path.join(directory, stem + ".pem")
    key = os.path.join(directory, stem + ".key")
    args = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
            "-days", "30", "-subj", subj or "/CN=" + cn]
    if sans:
        args += ["-addext", "subjectAltName=" + ",".join(sans)]
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=30)
    return cert, key


def der(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def any_cert_ctx(alpn=None):
    """A client that takes whatever certificate comes: the tests compare it byte for byte."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def peer(port, sni, alpn=None):
    """(DER certificate, ALPN) a TLS client asking for `sni` (None: no SNI) gets."""
    with socket.create_connection((HOST, port), timeout=10) as raw:
        with any_cert_ctx(alpn).wrap_socket(raw, server_hostname=sni) as s:
            return s.getpeercert(binary_form=True), s.selected_alpn_protocol()


def starttls_peer(port, sni):
    with harness.RawImap(HOST, port) as c:
        _, t = c.cmd("s1", "STARTTLS")
        assert t.startswith(b"s1 OK"), t
        c.sock = any_cert_ctx().wrap_socket(c.sock, server_hostname=sni)
        _, t = c.cmd("n1", "NOOP")
        assert t.startswith(b"n1 OK"), t
        return c.sock.getpeercert(binary_form=True)


def reloads(gw, result):
    m = re.search(r'^pimap_tls_reloads_total\{result="%s"\} (\d+)$' % result,
                  gw.metrics_text(), re.M)
    assert m, "no pimap_tls_reloads_total{result=%s}" % result
    return int(m.group(1))


@pytest.fixture
def certs(tmp_path):
    d = str(tmp_path)
    return {
        "default": make_cert(d, "default", "default.test", ["DNS:default.test"]),
        "a": make_cert(d, "a", "a.test", ["DNS:a.test"]),
        "b": make_cert(d, "b", "b.test", ["DNS:b.test", "DNS:*.b.test"]),
        "dir": d,
    }


def sni_args(*pairs):
    out = []
    for cert, key in pairs:
        out += ["--tls-sni-cert", "%s,%s" % (cert, key)]
    return out


def test_sni_selects_the_certificate_on_imaps_starttls_and_https(start_pimapd, certs):
    https_port = harness.free_ports(1)[0]
    gw = start_pimapd(tls=certs["default"], shards=2, extra=sni_args(certs["a"], certs["b"]) + [
        "--https-listen", "%s:%d" % (HOST, https_port)])
    wait_until(lambda: harness.port_is_open(https_port), 5, what="https port")
    want = {k: der(certs[k][0]) for k in ("default", "a", "b")}
    for sni, name in (("a.test", "a"), ("A.TEST", "a"), ("b.test", "b"), ("X.b.test", "b"),
                      ("y.x.b.test", "default"), ("other.test", "default"),
                      ("default.test", "default"), (None, "default")):
        for _ in range(2):  # the shards take turns accepting
            got, alpn = peer(gw.imaps_port, sni, alpn=["imap"])
            assert got == want[name], "IMAPS, SNI %r: not the %s certificate" % (sni, name)
            assert alpn == "imap", alpn
        got, alpn = peer(https_port, sni, alpn=["h2", "http/1.1"])
        assert got == want[name], "HTTPS, SNI %r: not the %s certificate" % (sni, name)
        assert alpn == "h2", alpn
    assert starttls_peer(gw.imap_port, "a.test") == want["a"]
    assert starttls_peer(gw.imap_port, "other.test") == want["default"]


@pytest.mark.parametrize("case", ["mismatched_key", "missing_file", "no_dns_name"])
def test_bad_sni_certificate_refuses_start_up(start_pimapd, certs, case):
    cert, key = certs["a"]
    if case == "mismatched_key":
        key = certs["b"][1]
        needle = "does not match certificate " + cert
    elif case == "missing_file":
        cert = os.path.join(certs["dir"], "absent.pem")
        needle = "cannot read TLS certificate " + cert
    else:
        cert, key = make_cert(certs["dir"], "anon", None, ["IP:127.0.0.1"], subj="/O=pimap")
        needle = "names no DNS host"
    p = start_pimapd(start=False, tls=certs["default"], extra=sni_args((cert, key)))
    r = subprocess.run(p.args, stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert needle in r.stderr.decode(), r.stderr
    assert b"PRIVATE KEY" not in r.stderr


def replace_cert(certs, name, cn, sans):
    """New certificate and key for `name`, moved over the old files (as an operator's
    tooling would: each file replaced whole)."""
    new_dir = os.path.join(certs["dir"], "new-%s-%d" % (name, time.monotonic_ns()))
    os.mkdir(new_dir)
    cert, key = make_cert(new_dir, name, cn, sans)
    os.replace(key, certs[name][1])
    os.replace(cert, certs[name][0])
    return der(certs[name][0])


def test_sighup_reloads_certificates_and_keeps_connections(start_pimapd, certs):
    gw = start_pimapd(tls=certs["default"], shards=2, admin=True, extra=sni_args(certs["a"]))
    old_a, old_default = der(certs["a"][0]), der(certs["default"][0])
    assert reloads(gw, "ok") == 0 and reloads(gw, "failed") == 0
    # A logged-in client idling over TLS (SNI a.test), and one over STARTTLS.
    idler = harness.RawImap(HOST, gw.imaps_port, tls_ctx=any_cert_ctx(), sni="a.test")
    assert idler.sock.getpeercert(binary_form=True) == old_a
    assert idler.greeting.startswith(b"* OK"), idler.greeting
    harness.pimap_login(idler, "alice")
    _, t = idler.cmd("s", "SELECT INBOX")
    assert t.startswith(b"s OK"), t
    idler.send(b"i IDLE\r\n")
    assert idler.readline().startswith(b"+"), "no IDLE continuation"
    with harness.RawImap(HOST, gw.imap_port) as st:
        st.starttls(any_cert_ctx(), host="localhost")
        harness.pimap_login(st, "bob")

        new_a = replace_cert(certs, "a", "a.test", ["DNS:a.test"])
        new_default = replace_cert(certs, "default", "default.test", ["DNS:default.test"])
        assert new_a != old_a
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: reloads(gw, "ok") == 1, 10, what="reload counted")
        for _ in range(2):  # every shard has the new certificates
            assert peer(gw.imaps_port, "a.test")[0] == new_a
            assert peer(gw.imaps_port, None)[0] == new_default
        assert starttls_peer(gw.imap_port, "a.test") == new_a
        assert gw.running()

        # A broken certificate file: the reload fails, the certificates in use stay.
        with open(certs["a"][0], "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: reloads(gw, "failed") == 1, 10, what="failed reload counted")
        assert reloads(gw, "ok") == 1
        for _ in range(2):
            assert peer(gw.imaps_port, "a.test")[0] == new_a
            assert peer(gw.imaps_port, None)[0] == new_default
        wait_until(lambda: "TLS reload failed" in gw.log(), 10, what="the reload warning")
        log = gw.log()
        assert "TLS reload failed" in log and certs["a"][0] in log, log
        assert "PRIVATE KEY" not in log

        # The connections opened before both reloads still work.
        _, t = st.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t
    idler.send(b"DONE\r\n")
    _, t = idler.read_tagged("i")
    assert t.startswith(b"i OK"), t
    _, t = idler.cmd("n", "NOOP")
    assert t.startswith(b"n OK"), t
    assert idler.sock.getpeercert(binary_form=True) == old_a
    idler.close()
    assert gw.running()
