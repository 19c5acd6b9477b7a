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


# ---- Issue 14: the TLS policy (TLS 1.2+, ECDHE + AEAD only) and ALPN "imap"

@pytest.fixture(scope="module")
def rsa_cert(tmp_path_factory):
    """An RSA certificate: with it a server could negotiate static RSA key
    exchange, which the policy must refuse (an EC certificate never could)."""
    d = tmp_path_factory.mktemp("rsa-cert")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
         "-out", cert, "-days", "30", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    return cert, key


def _tls12_client(ciphers, alpn=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3 suites cannot be limited
    ctx.set_ciphers(ciphers)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def _handshake(port, ctx):
    """(negotiated cipher name, ALPN protocol) or the ssl.SSLError raised."""
    with socket.create_connection((harness.HOST, port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.recv(1)  # the handshake is complete once the greeting arrives
                return s.cipher()[0], s.selected_alpn_protocol()
        except ssl.SSLError as e:
            return e


def test_tls_policy_is_ecdhe_aead_only(start_pimapd, rsa_cert, tls_cert):
    p = start_pimapd(tls=rsa_cert, plaintext=False)
    for ciphers in (
            # CBC suites, with and without forward secrecy.
            "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA256",
            "AES128-SHA:AES256-SHA:AES128-SHA256",
            # Static RSA key exchange, even with an AEAD.
            "AES128-GCM-SHA256:AES256-GCM-SHA384"):
        got = _handshake(p.imaps_port, _tls12_client(ciphers))
        assert isinstance(got, ssl.SSLError), "%s: handshake succeeded with %r" % (ciphers, got)
    # ECDHE with an AEAD works, in TLS 1.2 and 1.3.
    got = _handshake(p.imaps_port, _tls12_client("ECDHE-RSA-AES128-GCM-SHA256"))
    assert got[0] == "ECDHE-RSA-AES128-GCM-SHA256", got
    got = _handshake(p.imaps_port, _tls12_client("ECDHE-RSA-CHACHA20-POLY1305"))
    assert got[0] == "ECDHE-RSA-CHACHA20-POLY1305", got
    ctx = ssl.create_default_context()  # a normal client: TLS 1.3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((harness.HOST, p.imaps_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.recv(64).startswith(b"* OK"), "no greeting"
            assert s.version() == "TLSv1.3", s.version()
    # STARTTLS has the same policy.
    with p.raw() as c:
        _, t = c.cmd("s1", "STARTTLS")
        assert t.startswith(b"s1 OK"), t
        with pytest.raises(ssl.SSLError):
            _tls12_client("AES128-GCM-SHA256").wrap_socket(c.sock, server_hostname="localhost")
    # The EC certificate of the other tests: ECDHE-ECDSA suites.
    q = start_pimapd(tls=tls_cert, plaintext=False)
    got = _handshake(q.imaps_port, _tls12_client("ECDHE-ECDSA-AES256-GCM-SHA384"))
    assert got[0] == "ECDHE-ECDSA-AES256-GCM-SHA384", got
    got = _handshake(q.imaps_port, _tls12_client("ECDHE-ECDSA-AES128-SHA"))
    assert isinstance(got, ssl.SSLError), got


def test_alpn_imap_on_imaps_and_starttls(start_pimapd, tls_cert):
    p = start_pimapd(tls=tls_cert, plaintext=False)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["imap"])
    with socket.create_connection((harness.HOST, p.imaps_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "imap"
            assert s.recv(64).startswith(b"* OK")
    with p.raw() as c:
        _, t = c.cmd("s1", "STARTTLS")
        assert t.startswith(b"s1 OK"), t
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
        assert c.sock.selected_alpn_protocol() == "imap"
        _, t = c.cmd("n1", "NOOP")
        assert t.startswith(b"n1 OK"), t
    # A client offering only an HTTP protocol gets none on the IMAP port.
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection((harness.HOST, p.imaps_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() is None


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_sessions_resume_for_reconnect_storms(start_pimapd, tls_cert, version):
    """Issue 14, item 6: a reconnecting device resumes its TLS session (no full handshake):
    BoringSSL's session tickets, whose keys it rotates itself, and its session cache."""
    gw = start_pimapd(tls=tls_cert, plaintext=True, shards=2)
    ctx = harness.client_tls_context(tls_cert[0])
    ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
    session = None
    reused = []
    for _ in range(4):  # the shards take turns: every one must accept the ticket
        with socket.create_connection((harness.HOST, gw.imaps_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
                s.settimeout(10)
                greeting = s.recv(4096)  # after the handshake (TLS 1.3 tickets come now)
                assert greeting.startswith(b"* OK"), greeting
                s.sendall(b"n NOOP\r\n")
                assert b"n OK" in s.recv(4096)
                reused.append(s.session_reused)
                session = s.session
    assert reused[0] is False
    assert all(reused[1:]), reused
