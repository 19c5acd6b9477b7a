"""Plaintext-auth policy, STARTTLS and implicit TLS."""

import imaplib
import socket
import time
import ssl
import subprocess

import pytest

import harness
from harness import caps_from_line, forbidden_post_auth

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def strict(start_pimapd, tls_cert):
    """pimapd with TLS and WITHOUT --allow-plaintext-auth."""
    return start_pimapd(tls=tls_cert, plaintext=False)


def test_plaintext_login_refused_without_tls(strict):
    with strict.raw() as c:
        greet = caps_from_line(c.greeting)
        caps = c.capabilities()
        for cs in (greet, caps):
            assert "LOGINDISABLED" in cs, cs
            assert "STARTTLS" in cs, cs
        _, t = c.cmd("a1", 'LOGIN alice "alicepw"')
        assert t.startswith(b"a1 NO"), t
        assert b"[PRIVACYREQUIRED]" in t, t
        _, t = c.cmd("a2", "AUTHENTICATE PLAIN " + harness.sasl_plain("alice", "alicepw"))
        assert t.startswith(b"a2 NO"), t
        assert b"[PRIVACYREQUIRED]" in t, t
        # Connection stays usable.
        _, t = c.cmd("a3", "NOOP")
        assert t.startswith(b"a3 OK"), t
    m = strict.imap()
    with pytest.raises(imaplib.IMAP4.error):
        m.login("alice", "alicepw")
    m.shutdown()


def test_starttls_then_login(strict, tls_client_ctx):
    m = strict.imap()
    assert "STARTTLS" in m.capabilities
    typ, _ = m.starttls(ssl_context=tls_client_ctx)
    assert typ == "OK"
    assert m.sock.version() in ("TLSv1.2", "TLSv1.3"), m.sock.version()
    caps = set(m.capabilities)  # imaplib re-reads CAPABILITY after STARTTLS
    assert "LOGINDISABLED" not in caps, caps
    assert "STARTTLS" not in caps, caps
    assert "AUTH=PLAIN" in caps, caps
    assert m.login("alice", "alicepw")[0] == "OK"
    assert m.select("INBOX")[0] == "OK"
    typ, data = m.capability()
    post = set(data[0].decode().upper().split())
    assert not forbidden_post_auth(post), post
    assert m.logout()[0] == "BYE"


def test_starttls_raw_and_second_starttls_rejected(strict, tls_client_ctx):
    with strict.raw() as c:
        c.starttls(tls_client_ctx)
        caps = c.capabilities("c2")
        assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
        _, t = c.cmd("s2", "STARTTLS")
        assert t.startswith(b"s2 BAD") or t.startswith(b"s2 NO"), t
        _, t = c.cmd("a1", "AUTHENTICATE PLAIN " + harness.sasl_plain("bob#d", "bobpw"))
        assert t.startswith(b"a1 OK"), t


def test_starttls_with_unverified_context(strict):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = strict.imap()
    m.starttls(ssl_context=ctx)
    assert m.login("carol", "carolpw")[0] == "OK"
    m.logout()


def test_allow_plaintext_flag(start_pimapd, tls_cert):
    p = start_pimapd(tls=tls_cert, plaintext=True)
    with p.raw() as c:
        assert "LOGINDISABLED" not in caps_from_line(c.greeting)
        caps = c.capabilities()
        assert "LOGINDISABLED" not in caps and "STARTTLS" in caps, caps
        c.login("alice", "alicepw")


def test_plaintext_flag_without_tls(start_pimapd):
    p = start_pimapd(tls=None, plaintext=True)
    with p.raw() as c:
        caps = c.capabilities()
        assert "LOGINDISABLED" not in caps and "STARTTLS" not in caps, caps
        c.login("bob", "bobpw")


def test_implicit_tls(start_pimapd, tls_cert, tls_client_ctx):
    p = start_pimapd(tls=tls_cert, plaintext=False)
    m = p.imaps(tls_client_ctx)
    assert m.sock.version() in ("TLSv1.2", "TLSv1.3"), m.sock.version()
    caps = set(m.capabilities)
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
    assert m.login("alice#laptop", "alicepw")[0] == "OK"
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    assert m.noop()[0] == "OK"
    assert m.logout()[0] == "BYE"


def test_openssl_s_client_greeting(start_pimapd, tls_cert):
    p = start_pimapd(tls=tls_cert, plaintext=False)
    r = subprocess.run(
        ["openssl", "s_client", "-connect", "%s:%d" % (harness.HOST, p.imaps_port), "-quiet",
         "-CAfile", tls_cert[0], "-verify_return_error", "-servername", "localhost"],
        input=b"a LOGIN alice alicepw\r\nb LOGOUT\r\n", capture_output=True, timeout=20)
    out = r.stdout.decode(errors="replace")
    assert "* OK" in out and "pimap ready" in out, (out, r.stderr.decode(errors="replace"))
    assert "a OK" in out, out
    assert "* BYE" in out and "b OK" in out, out
    assert "verify error" not in r.stderr.decode(errors="replace")

    r = subprocess.run(
        ["openssl", "s_client", "-starttls", "imap", "-connect",
         "%s:%d" % (harness.HOST, p.imap_port), "-brief", "-ign_eof", "-CAfile", tls_cert[0]],
        input=b"a LOGIN bob bobpw\r\nb LOGOUT\r\n", capture_output=True, timeout=20)
    both = (r.stdout + r.stderr).decode(errors="replace")
    assert "CONNECTION ESTABLISHED" in both, both
    assert "Protocol version: TLSv1.2" in both or "Protocol version: TLSv1.3" in both, both
    assert "a OK" in both, both


def _tls_login_then_bad_record(port, user):
    """TLS handshake, then LOGIN and a record that fails its MAC in one segment:
    the login is handed over to the user's shard together with the bad record."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False)
    s = socket.create_connection((harness.HOST, port), timeout=5)
    try:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                data = out.read()
                if data:
                    s.sendall(data)
                inc.write(s.recv(65536))
        data = out.read()
        if data:
            s.sendall(data)
        time.sleep(0.1)
        obj.write(b"a LOGIN %s pw\r\n" % user.encode())
        bad = b"\x17\x03\x03\x00\x30" + b"\x41" * 48
        s.sendall(out.read() + bad)
        time.sleep(0.2)
    finally:
        s.close()


def test_handover_with_failing_tls_record_does_not_crash(start_pimapd, tls_cert):
    """A login handed over to another shard with a broken TLS record behind it:
    the connection is closed, the gateway lives on (regression: it crashed)."""
    p = start_pimapd(tls=tls_cert, plaintext=True, shards=4, admin=True)
    for i in range(16):  # different users spread over the 4 shards
        _tls_login_then_bad_record(p.imaps_port, "user%d" % i)
        assert p.proc.poll() is None, p.log()[-3000:]
    time.sleep(0.5)
    assert p.proc.poll() is None, p.log()[-3000:]
    m = imaplib.IMAP4_SSL(harness.HOST, p.imaps_port,
                          ssl_context=harness.client_tls_context(tls_cert[0]))
    assert m.login("alice", "alicepw")[0] == "OK"
    m.logout()
