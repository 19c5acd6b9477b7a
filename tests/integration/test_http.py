"""The HTTP binding of P-IMAP (--http-listen / --https-listen): POST batches,
cookie sessions, long-poll push, HTTP-level errors, resume across bindings.

Clients are curl (a real HTTP client, HTTP/1.1 and TLS with ALPN) and, where a
test needs to hold a response open or send bytes curl would not, a small HTTP/1.1
client on a raw socket (http_client.HttpClient).
"""

import re
import socket
import ssl
import subprocess
import time

import pytest

import harness
from harness import (HOST, USERS, ensure_messages, make_message, quote,
                     sasl_plain, wait_until)
from http_client import (EXISTS, PATH, TYPE, HttpClient, curl, exists_of,
                         http_session, login_line)

pytestmark = pytest.mark.timeout(120)

PUSH_WAIT = 10.0
SETTLE = 3.0


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture
def http_gateway(start_pimap_gateway, tls_cert):
    """pimapd with --http-listen and --https-listen, 2 shards."""
    ports = harness.free_ports(2)

    def start(extra=(), **kwargs):
        p = start_pimap_gateway(tls=tls_cert, notification_filter="ALL", extra=[
            "--http-listen", "%s:%d" % (HOST, ports[0]),
            "--https-listen", "%s:%d" % (HOST, ports[1])] + list(extra), **kwargs)
        p.http_port, p.https_port = ports
        wait_until(lambda: harness.port_is_open(ports[0]), 5, what="http port")
        return p

    return start


# ----------------------------------------------------------------------------- batches

def test_batch_in_one_post_sets_a_cookie_and_answers_in_order(http_gateway, dovecot):
    ensure_messages(dovecot, "alice", 2)
    gw = http_gateway()
    with HttpClient(gw.http_port) as c:
        r = c.post("c CAPABILITY\r\n" + login_line("L", "alice", "h1") +
                   "s SELECT INBOX\r\nf FETCH 1:* (UID FLAGS)\r\n")
        assert r.status == 200
        assert r.header("content-type") == TYPE
        assert r.header("cache-control") == "no-store"
        value, attrs = r.cookie()
        assert value and re.match(r"^\d+-[0-9a-f]{32}$", value), attrs
        assert "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/pimap" in attrs
        assert "Secure" not in attrs  # plain listener
        lines = r.lines()
        tags = [x.split(b" ")[0] for x in lines if x and not x.startswith(b"*")]
        assert tags == [b"c", b"L", b"s", b"f"], r.body
        for t in ("c", "L", "s", "f"):
            assert r.tagged(t).startswith(t.encode() + b" OK"), r.body
        n = exists_of(r.body)
        assert n is not None and n >= 2
        assert len([x for x in lines if b" FETCH (" in x]) == n
        # Pre-login capabilities over HTTP: no STARTTLS (HTTP has its own TLS).
        caps = [x for x in lines if x.startswith(b"* CAPABILITY")][0]
        assert b"STARTTLS" not in caps and b"IMAP4rev1" in caps

        # The cookie carries the session: a later POST runs in it.
        r = c.post("n NOOP\r\nf2 FETCH 1 (UID)\r\n")
        assert r.status == 200
        assert r.tagged("n").startswith(b"n OK") and r.tagged("f2").startswith(b"f2 OK"), r.body
        assert r.cookie() == (None, None)  # set once

        # LOGOUT ends it and clears the cookie; the cookie is then refused.
        cookie = c.cookie
        r = c.post("o LOGOUT\r\n")
        assert b"* BYE" in r.body and r.tagged("o").startswith(b"o OK"), r.body
        assert "Max-Age=0" in r.cookie()[1]
    with HttpClient(gw.http_port) as c:
        c.cookie = cookie
        r = c.post("n NOOP\r\nx SELECT INBOX\r\n")
        assert r.status == 200
        assert r.tagged("n").startswith(b"n OK"), r.body
        assert r.tagged("x").startswith(b"x NO [AUTHENTICATIONFAILED]"), r.body


def test_command_continues_in_the_next_post_and_literals_need_no_round_trip(
        http_gateway, dovecot):
    gw = http_gateway()
    box = harness.unique_name("Hx")
    msg = make_message("over http").replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
    c, _ = http_session(gw.http_port, "alice", "h2")
    with c:
        r = c.post('m CREATE %s\r\na APPEND %s {%d}\r\n' % (box, box, len(msg)))
        # The APPEND waits for its literal: only CREATE is answered.
        assert r.tagged("m").startswith(b"m OK"), r.body
        assert not [x for x in r.lines() if x.startswith((b"a ", b"+"))], r.body
        r = c.post(msg + b"\r\nsx STATUS %s (MESSAGES)\r\n" % box.encode())
        assert r.tagged("a").startswith(b"a OK"), r.body
        assert b"(MESSAGES 1)" in r.body, r.body
        # A synchronising literal is taken as LITERAL+ would be.
        r = c.post(b'a2 APPEND %s {%d}\r\n' % (box.encode(), len(msg)) + msg + b"\r\n")
        assert r.tagged("a2").startswith(b"a2 OK"), r.body


def test_pipelined_requests_are_answered_in_order(http_gateway):
    gw = http_gateway()
    c, _ = http_session(gw.http_port, "bob", "h3")
    with c:
        c.send_raw(c.request_bytes("a NOOP\r\n") + c.request_bytes("b CHECK\r\n") +
                   c.request_bytes("c NOOP\r\n"))
        for t in ("a", "b", "c"):
            r = c.read_response()
            assert r.status == 200
            assert r.tagged(t).startswith(t.encode() + b" OK"), r.body


def test_logins_of_users_on_every_shard_are_served_from_any_connection(http_gateway):
    """Two shards: whichever accepts the connection, a login runs on its user's shard
    (the request moves there) and the cookie brings later requests to it."""
    gw = http_gateway()
    for i in range(6):
        for user in ("alice", "bob", "carol"):
            c, _ = http_session(gw.http_port, user, "hs%d" % i)
            with c:
                r = c.post("n NOOP\r\n")
                assert r.tagged("n").startswith(b"n OK"), r.body
                c.post("o LOGOUT\r\n")


def test_login_needs_a_device_and_auth_needs_sasl_ir(http_gateway):
    gw = http_gateway()
    with HttpClient(gw.http_port) as c:
        r = c.post("L LOGIN alice %s\r\n" % quote(USERS["alice"]))
        assert r.tagged("L").startswith(b"L NO [CANNOT]"), r.body
        r = c.post("a AUTHENTICATE PLAIN\r\n")
        assert r.tagged("a").startswith(b"a NO [CANNOT]"), r.body
        r = c.post("t STARTTLS\r\n")
        assert r.tagged("t").startswith(b"t BAD"), r.body
        r = c.post("L2 LOGIN %s wrong\r\n" % quote("alice#h4"))
        assert r.tagged("L2").startswith(b"L2 NO"), r.body
        assert r.cookie() == (None, None)
        r = c.post("a2 AUTHENTICATE PLAIN %s\r\nn NOOP\r\n" % sasl_plain("alice#h4",
                                                                      USERS["alice"]))
        assert r.tagged("a2").startswith(b"a2 OK"), r.body
        assert r.cookie()[0]


# ----------------------------------------------------------------------------- push

def test_idle_becomes_a_long_poll_that_streams_new_mail(http_gateway, dovecot):
    gw = http_gateway()
    c, r = http_session(gw.http_port, "alice", "h5")
    n0 = exists_of(r.body)
    with c:
        c.send_raw(c.request_bytes("i IDLE\r\n"))
        poll = c.read_head()
        assert poll.status == 200 and poll.header("transfer-encoding") == "chunked"
        assert c.read_until(poll, lambda b: b"+ " in b, 5), poll.body
        dovecot.deliver("alice", make_message("http long poll"))
        assert c.read_until(poll, lambda b: exists_of(b) is not None, PUSH_WAIT), poll.body
        assert exists_of(poll.body) == n0 + 1
        # A request on another connection (DONE) ends the long poll.
        with HttpClient(gw.http_port) as d:
            d.cookie = c.cookie
            d.send_raw(d.request_bytes("DONE\r\nn NOOP\r\n"))
            assert c.read_until(poll, lambda b: b"i OK" in b, 10), poll.body
            c.finish(poll)
            r = d.read_response()
            assert r.tagged("n").startswith(b"n OK"), r.body
        # A POST without DONE ends an open long poll too (the gateway inserts it).
        c.cookie = d.cookie
        c.send_raw(c.request_bytes("i2 IDLE\r\n"))
        poll = c.read_head()
        assert c.read_until(poll, lambda b: b"+ " in b, 5)
        with HttpClient(gw.http_port) as d:
            d.cookie = c.cookie
            r_next = d.request_bytes("n2 NOOP\r\n")
            d.send_raw(r_next)
            assert c.read_until(poll, lambda b: b"i2 OK" in b, 10), poll.body
            c.finish(poll)
            r = d.read_response()
            assert r.tagged("n2").startswith(b"n2 OK"), r.body


def test_long_poll_keeps_alive_and_ends_after_idle_max(http_gateway):
    gw = http_gateway(extra=["--http-idle-max", "3s", "--idle-keepalive", "1s"])
    c, _ = http_session(gw.http_port, "bob", "h6")
    with c:
        c.send_raw(c.request_bytes("i IDLE\r\n"))
        poll = c.read_head()
        # The session's IDLE keepalive flows down the long poll (NATs stay open).
        assert c.read_until(poll, lambda b: b"* OK Still here" in b, 5), poll.body
        assert c.read_until(poll, lambda b: b"i OK" in b, 10), poll.body
        c.finish(poll)
        r = c.post("n NOOP\r\n")
        assert r.tagged("n").startswith(b"n OK"), r.body


def test_session_resumes_across_tcp_and_http(http_gateway, dovecot):
    """One P-IMAP session (alice#x1): logged in over TCP, left; mail arrives; a LOGIN
    over HTTP resumes it with what was missed; and back to TCP the same way."""
    gw = http_gateway()
    ensure_messages(dovecot, "alice", 1)
    with gw.raw() as t:
        harness.pimap_login(t, "alice#x1")
        untagged, tag = t.cmd("s", "SELECT INBOX")
        assert tag.startswith(b"s OK")
        n0 = exists_of(b"\r\n".join(untagged))
    dovecot.deliver("alice", make_message("missed while away"))
    time.sleep(SETTLE)
    with HttpClient(gw.http_port) as c:
        r = c.post(login_line("L", "alice", "x1"))
        assert r.tagged("L").startswith(b"L OK"), r.body
        state, folder, events = harness.resume_parts(r.lines())
        assert (state, folder) == ("SELECTED", "INBOX"), r.body
        assert exists_of(b"\r\n".join(events)) == n0 + 1, r.body
        r = c.post("n NOOP\r\n")
        assert r.tagged("n").startswith(b"n OK"), r.body
    # The connection closed with every response complete: the session is
    # detached again and a TCP login takes it back, with the mail since.
    dovecot.deliver("alice", make_message("missed again"))
    time.sleep(SETTLE)
    with gw.raw() as t:
        untagged = harness.pimap_login(t, "alice#x1")
        state, folder, events = harness.resume_parts(untagged)
        assert (state, folder) == ("SELECTED", "INBOX"), untagged
        assert exists_of(b"\r\n".join(x.rstrip(b"\r\n") for x in events)) == n0 + 2, untagged


# ----------------------------------------------------------------------------- HTTP layer

def test_http_errors_are_http_and_the_gateway_keeps_serving(http_gateway):
    gw = http_gateway(extra=["--http-max-body", "1K", "--http-request-timeout", "1s"])
    with HttpClient(gw.http_port) as c:
        r = c.post("n NOOP\r\n", path="/other")
        assert r.status == 404
        r = c.post("", method="GET")
        assert r.status == 405 and r.header("allow") == "POST"
        r = c.post("n NOOP\r\n", content_type="application/json")
        assert r.status == 415
        r = c.post("n NOOP\r\n", extra="Content-Encoding: compress\r\n")
        assert r.status == 415
        r = c.post("n NOOP\r\n")  # the connection still works
        assert r.status == 200 and r.tagged("n").startswith(b"n OK")
    with HttpClient(gw.http_port) as c:
        c.send_raw("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                   "Content-Length: 5000\r\n\r\n" % (PATH, TYPE))
        assert c.read_response().status == 413
    with HttpClient(gw.http_port) as c:
        c.send_raw("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n\r\n" % (PATH, TYPE))
        # No length: an empty body (RFC 9112 §6.3) runs nothing and answers 200 ...
        r = c.read_response()
        assert r.status in (200, 411), r.status
    with HttpClient(gw.http_port) as c:
        c.send_raw("POST %s HTTP/1.1\r\nHost x\r\n\r\n" % PATH)
        assert c.read_response().status == 400
        assert c.eof()
    with HttpClient(gw.http_port) as c:
        c.send_raw("POST %s HTTP/1.0\r\nContent-Type: %s\r\nContent-Length: 8\r\n\r\n"
                   "n NOOP\r\n" % (PATH, TYPE))
        assert c.read_head().status == 505
    # A slow sender gets 408 at the request deadline, however it trickles.
    with HttpClient(gw.http_port) as c:
        c.send_raw("POST %s HTTP/1.1\r\n" % PATH)
        t0 = time.monotonic()
        r = None
        for _ in range(40):
            try:
                c.send_raw("X-Slow: 1\r\n")
            except OSError:
                break
            time.sleep(0.1)
            c.sock.settimeout(0.01)
            try:
                c._fill()
            except socket.timeout:
                continue
            except (EOFError, OSError):
                break
            finally:
                c.sock.settimeout(30)
            if b"\r\n\r\n" in c.buf:
                break
        assert c.buf.startswith(b"HTTP/1.1 408 "), c.buf
        assert time.monotonic() - t0 < 3.5
    # Every failure above left the gateway serving: HTTP and IMAP.
    with HttpClient(gw.http_port) as c:
        assert c.post("n NOOP\r\n").status == 200
    with gw.raw() as t:
        _, tag = t.cmd("n", "NOOP")
        assert tag.startswith(b"n OK")


def test_curl_over_https_with_alpn_and_a_cookie_jar(http_gateway, tls_cert, workdir):
    gw = http_gateway()
    jar = "%s/jar-%s" % (workdir, harness.unique_name("c"))
    url = "https://localhost:%d%s" % (gw.https_port, PATH)
    common = ["--cacert", tls_cert[0], "--resolve", "localhost:%d:%s" % (gw.https_port, HOST),
              "--http1.1", "-H", "Content-Type: " + TYPE, "-c", jar, "-b", jar, "-v"]
    r, err = curl(*common, "--data-binary", "@-", url,
                  data=(login_line("L", "carol", "h7") + "s SELECT INBOX\r\n").encode())
    assert r.status == 200, r.body
    assert b"ALPN: server accepted http/1.1" in err or b"ALPN, server accepted" in err, err
    assert r.tagged("L").startswith(b"L OK") and r.tagged("s").startswith(b"s OK"), r.body
    assert "Secure" in r.cookie()[1]
    r, _ = curl(*common, "--data-binary", "@-", url, data=b"n NOOP\r\no LOGOUT\r\n")
    assert r.tagged("n").startswith(b"n OK"), r.body
    assert r.tagged("o").startswith(b"o OK"), r.body
    # Stock curl: 100-continue, then a body in chunks (no Content-Length).
    r, _ = curl(*common, "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", url,
                data=b"c CAPABILITY\r\n")
    assert r.status == 200 and r.tagged("c").startswith(b"c OK"), r.body


def test_metrics_count_http(http_gateway):
    gw = http_gateway()
    c, _ = http_session(gw.http_port, "bob", "h8")
    with c:
        c.post("n NOOP\r\n")
        m = gw.metrics()
        assert sum(m["pimap_http_requests_total"].values()) >= 2, m
        assert sum(m["pimap_http_sessions"].values()) >= 1, m
        assert sum(m["pimap_http_connections"].values()) >= 1, m
    # The admin endpoint reads requests with the same HTTP core.
    with HttpClient(gw.admin_port) as a:
        r = a.post("", method="GET", path="/elsewhere", content_type=None)
        assert r.status == 404
    with HttpClient(gw.admin_port) as a:
        r = a.post("x", path="/metrics")
        assert r.status == 405 and r.header("allow") == "GET, HEAD"


# ----------------------------------------------------------------------------- HTTP/2

def h2_common(gw, tls_cert, jar, port=None):
    port = port or gw.https_port
    return ["--cacert", tls_cert[0], "--resolve", "localhost:%d:%s" % (port, HOST),
            "-H", "Content-Type: " + TYPE, "-c", jar, "-b", jar]


def test_http2_over_https_batch_cookie_and_requests_on_one_connection(
        http_gateway, tls_cert, workdir):
    """ALPN h2; for each user (some on the other shard: the connection moves to
    the session's shard), a login batch and a cookie follow-up on the same
    connection (curl reuses it for the second URL)."""
    gw = http_gateway()
    url = "https://localhost:%d%s" % (gw.https_port, PATH)
    for user in ("alice", "bob", "carol"):
        jar = "%s/jar-%s" % (workdir, harness.unique_name("h2"))
        common = h2_common(gw, tls_cert, jar)
        p = subprocess.run(
            ["curl", "-sS", "--max-time", "30", "--http2", "-v"] + common +
            ["--data-binary", login_line("L", user, "h2a") + "s SELECT INBOX\r\n", url,
             "--next"] + common + ["--http2", "--data-binary", "n NOOP\r\n", url],
            capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert b"ALPN: server accepted h2" in p.stderr or b"ALPN, server accepted to use h2" \
            in p.stderr, p.stderr
        assert p.stderr.count(b"< HTTP/2 200") == 2, p.stderr
        # One connection for both requests.
        assert b"Re-using existing connection" in p.stderr or \
            b"Reusing existing connection" in p.stderr, p.stderr
        out = p.stdout
        assert b"L OK" in out and b"s OK" in out and b"n OK" in out, out


def test_http2_prior_knowledge_on_the_plain_port(http_gateway, workdir):
    gw = http_gateway()
    jar = "%s/jar-%s" % (workdir, harness.unique_name("h2c"))
    url = "http://%s:%d%s" % (HOST, gw.http_port, PATH)
    r, err = curl("--http2-prior-knowledge", "-H", "Content-Type: " + TYPE, "-c", jar,
                  "-b", jar, "--data-binary", "@-", url,
                  data=(login_line("L", "alice", "h2c") + "c CAPABILITY\r\n").encode())
    assert r.status == 200, (r.body, err)
    assert r.tagged("L").startswith(b"L OK") and r.tagged("c").startswith(b"c OK"), r.body
    assert r.cookie()[0]
    r, _ = curl("--http2-prior-knowledge", "-X", "GET", url)
    assert r.status == 405 and r.header("allow") == "POST"
    r, _ = curl("--http2-prior-knowledge", "--data-binary", "n NOOP\r\n", "-H",
                "Content-Type: application/json", url)
    assert r.status == 415
    r, _ = curl("--http2-prior-knowledge", "--data-binary", "n NOOP\r\n",
                "http://%s:%d/elsewhere" % (HOST, gw.http_port))
    assert r.status == 404


def test_http2_long_poll_streams_new_mail_and_ends_on_done(http_gateway, dovecot, tls_cert,
                                                           workdir):
    gw = http_gateway()
    jar = "%s/jar-%s" % (workdir, harness.unique_name("h2p"))
    url = "https://localhost:%d%s" % (gw.https_port, PATH)
    common = ["curl", "-sS", "--max-time", "60", "--http2"] + h2_common(gw, tls_cert, jar)
    p = subprocess.run(common + ["--data-binary", login_line("L", "alice", "h2p") +
                                 "s SELECT INBOX\r\n", url],
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and b"s OK" in p.stdout, p
    n0 = exists_of(p.stdout)
    poll = subprocess.Popen(common + ["-N", "--data-binary", "i IDLE\r\n", url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got = b""
        deadline = time.monotonic() + 10
        import select
        delivered = False
        while time.monotonic() < deadline:
            ready, _, _ = select.select([poll.stdout], [], [], 0.2)
            if ready:
                chunk = poll.stdout.read1(65536)
                if not chunk:
                    break
                got += chunk
            if b"+ " in got and not delivered:
                dovecot.deliver("alice", make_message("h2 long poll"))
                delivered = True
                deadline = time.monotonic() + PUSH_WAIT
            if exists_of(got) is not None:
                break
        assert exists_of(got) == n0 + 1, got
        done = subprocess.run(common + ["--data-binary", "DONE\r\nn NOOP\r\n", url],
                              capture_output=True, timeout=60)
        assert b"n OK" in done.stdout, done
        rest, err = poll.communicate(timeout=10)
        assert poll.returncode == 0, err
        assert b"i OK" in got + rest, got + rest
    finally:
        if poll.poll() is None:
            poll.kill()
            poll.communicate()


# ----------------------------------------------------------------------------- content coding

@pytest.mark.parametrize("accept,coding", [("zstd", "zstd"), ("gzip", "gzip")])
@pytest.mark.parametrize("version", ["--http1.1", "--http2"])
def test_curl_decodes_coded_responses(http_gateway, dovecot, tls_cert, workdir, accept,
                                      coding, version):
    ensure_messages(dovecot, "bob", 2)
    gw = http_gateway()
    jar = "%s/jar-%s" % (workdir, harness.unique_name("cc"))
    url = "https://localhost:%d%s" % (gw.https_port, PATH)
    r, err = curl(version, "--compressed", "-H", "Accept-Encoding: " + accept,
                  *h2_common(gw, tls_cert, jar), "--data-binary", "@-", url,
                  data=(login_line("L", "bob", "cc") + "s SELECT INBOX\r\n"
                        "f FETCH 1:* (UID FLAGS)\r\n").encode())
    assert r.status == 200, err
    assert r.header("content-encoding") == coding, r.headers
    assert r.tagged("L").startswith(b"L OK") and r.tagged("f").startswith(b"f OK"), r.body


def test_gzip_long_poll_events_decode_as_they_come(http_gateway, dovecot):
    import zlib
    gw = http_gateway()
    c, r = http_session(gw.http_port, "carol", "gz")
    n0 = exists_of(r.body)
    with c:
        c.send_raw(c.request_bytes("i IDLE\r\n", extra="Accept-Encoding: gzip\r\n"))
        poll = c.read_head()
        assert poll.header("content-encoding") == "gzip"
        inflater = zlib.decompressobj(31)
        plain = b""
        deadline = time.monotonic() + PUSH_WAIT
        delivered = False
        while time.monotonic() < deadline and exists_of(plain) is None:
            c.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = c.read_chunk()
            except socket.timeout:
                break
            # Every chunk decodes completely on arrival: nothing is held back.
            plain += inflater.decompress(chunk)
            if b"+ " in plain and not delivered:
                dovecot.deliver("carol", make_message("gzip long poll"))
                delivered = True
        assert exists_of(plain) == n0 + 1, plain
        c.sock.settimeout(30)
        with HttpClient(gw.http_port) as d:
            d.cookie = c.cookie
            assert d.post("DONE\r\n").status == 200
        while not inflater.eof:
            chunk = c.read_chunk()
            assert chunk, "body ended before the gzip trailer"
            plain += inflater.decompress(chunk)
        assert b"i OK" in plain, plain
        assert c.read_chunk() == b""


def test_coded_request_bodies_and_bombs(http_gateway):
    import gzip
    gw = http_gateway(extra=["--http-max-body", "1M"])
    with HttpClient(gw.http_port) as c:
        r = c.post(gzip.compress(b"c CAPABILITY\r\nn NOOP\r\n"),
                   extra="Content-Encoding: gzip\r\n")
        assert r.status == 200 and r.tagged("n").startswith(b"n OK"), r.body
        r = c.post(b"n NOOP\r\n", extra="Content-Encoding: br\r\n")
        assert r.status == 415
        r = c.post(b"not gzip at all", extra="Content-Encoding: gzip\r\n")
        assert r.status == 400
        # 64 MiB of zeros in ~64 KiB: decoding stops at the bound; 413 and close.
        bomb = gzip.compress(b"\0" * (64 << 20), 9)
        assert len(bomb) < (1 << 20)
        r = c.post(bomb, extra="Content-Encoding: gzip\r\n")
        assert r.status == 413
        assert c.eof()
    with HttpClient(gw.http_port) as c:  # still serving
        assert c.post("n NOOP\r\n").status == 200


# ----------------------------------------------------------------------------- persistent mode

def chunk(data):
    data = data.encode() if isinstance(data, str) else data
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
def test_persistent_chunked_mode_is_a_session_both_ways(http_gateway, dovecot, user):
    """R12 A.2: one POST whose chunked body carries a command per chunk and whose
    chunked response carries a response line per chunk, pushed events included.
    Users of either shard: the exchange moves to the user's shard at LOGIN."""
    ensure_messages(dovecot, user, 1)
    gw = http_gateway()
    with HttpClient(gw.http_port) as c:
        c.send_raw("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.lemonade\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n" % PATH)
        c.send_raw(chunk("1 CAPABILITY\r\n"))
        r = c.read_head()
        assert r.status == 200 and r.header("transfer-encoding") == "chunked", r.headers
        lines = []

        def until(pred, timeout=10):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                c.sock.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    piece = c.read_chunk()
                except socket.timeout:
                    break
                assert piece, "response ended early: %r" % lines
                # One line per chunk.
                assert piece.endswith(b"\r\n") and piece.count(b"\r\n") == 1, piece
                lines.append(piece.rstrip(b"\r\n"))
                if pred(lines[-1]):
                    return True
            return False

        assert until(lambda x: x.startswith(b"1 OK")), lines
        c.send_raw(chunk(login_line("L", user, "pm")))
        assert until(lambda x: x.startswith(b"L ")), lines
        assert lines[-1].startswith(b"L OK"), lines
        c.send_raw(chunk("s SELECT INBOX\r\n"))
        assert until(lambda x: x.startswith(b"s ")), lines
        n0 = exists_of(b"\r\n".join(lines))
        c.send_raw(chunk("i IDLE\r\n"))
        assert until(lambda x: x.startswith(b"+")), lines
        dovecot.deliver(user, make_message("persistent push"))
        assert until(lambda x: EXISTS.match(x) is not None, PUSH_WAIT), lines
        assert exists_of(b"\r\n".join(lines)) == n0 + 1
        c.send_raw(chunk("DONE\r\n"))
        assert until(lambda x: x.startswith(b"i ")), lines
        assert lines[-1].startswith(b"i OK"), lines
        # The request ends: so does the response, and the connection goes on.
        c.send_raw(b"0\r\n\r\n")
        c.sock.settimeout(10)
        assert c.read_chunk() == b""
        r = c.post("n NOOP\r\n")
        assert r.status == 200 and r.tagged("n").startswith(b"n OK"), r.body


# ----------------------------------------------------------------------------- review cases

def test_coded_login_batches_reach_every_shard(http_gateway):
    """A gzip-coded login batch for a user of either shard: decoded once, even when
    the request moves to the user's shard first."""
    import gzip
    gw = http_gateway()
    for user in ("alice", "bob", "carol"):
        with HttpClient(gw.http_port) as c:
            r = c.post(gzip.compress((login_line("L", user, "gzl") + "n NOOP\r\n").encode()),
                       extra="Content-Encoding: gzip\r\n")
            assert r.status == 200, r.body
            assert r.tagged("L").startswith(b"L OK"), r.body
            r = c.post(gzip.compress(b"n2 NOOP\r\n"), extra="Content-Encoding: gzip\r\n")
            assert r.status == 200 and r.tagged("n2").startswith(b"n2 OK"), r.body


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
def test_persistent_exchange_whose_body_ends_with_the_login(http_gateway, user):
    gw = http_gateway()
    with HttpClient(gw.http_port) as c:
        c.send_raw("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n" % (PATH, TYPE))
        c.send_raw(chunk(login_line("L", user, "pe")) + b"0\r\n\r\n")
        r = c.read_head()
        assert r.status == 200
        c.read_body(r)  # the response ends: its request did
        assert r.tagged("L").startswith(b"L OK"), r.body
        r = c.post("n NOOP\r\n")
        assert r.status == 200


def test_persistent_exchange_ended_by_logout_closes_cleanly(http_gateway):
    gw = http_gateway()
    with HttpClient(gw.http_port) as c:
        c.send_raw("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n" % (PATH, TYPE))
        c.send_raw(chunk(login_line("L", "alice", "plo")) + chunk("o LOGOUT\r\n"))
        r = c.read_head()
        c.read_body(r)
        assert b"* BYE" in r.body and r.tagged("o").startswith(b"o OK"), r.body
        # The rest of that request body cannot be told from a next request: the
        # connection closes instead of answering it with 400.
        c.send_raw(chunk("x NOOP\r\n"))
        assert c.eof(), c.buf
        assert b"HTTP/1.1 400" not in c.buf


def test_client_that_never_reads_is_dropped_and_others_are_served(http_gateway):
    """A persistent exchange floods pre-login commands and reads nothing: past the
    output bound the gateway drops it (no crash, no unbounded memory)."""
    import threading
    gw = http_gateway()
    c = HttpClient(gw.http_port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.send_raw("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" % (PATH, TYPE))
    burst = chunk("c CAPABILITY\r\n" * 2000)
    stop = threading.Event()

    def flood():
        try:
            for _ in range(400):
                if stop.is_set():
                    return
                c.sock.sendall(burst)
        except OSError:
            pass

    t = threading.Thread(target=flood)
    t.start()
    t.join(60)
    stop.set()
    # Dropped: the connection is reset or closed by the gateway.
    assert not t.is_alive()
    with HttpClient(gw.http_port) as d:
        assert d.post("n NOOP\r\n").status == 200
    with gw.raw() as t2:
        _, tag = t2.cmd("n", "NOOP")
        assert tag.startswith(b"n OK")
    assert gw.running()
    c.close()


def test_xzip_before_login_over_http(http_gateway):
    import gzip
    gw = http_gateway()
    with HttpClient(gw.http_port) as c:
        r = c.post("c CAPABILITY\r\nx XZIP c2 NOOP\r\n")
        assert b"XZIP" in r.lines()[0], r.body
        m = re.search(rb"\* \{(\d+)\}\r\n", r.body)
        assert m, r.body
        inner = gzip.decompress(r.body[m.end():m.end() + int(m.group(1))])
        assert inner.startswith(b"c2 OK"), inner
        assert r.tagged("x").startswith(b"x OK XZIP"), r.body


# ----------------------------------------------------------------------------- pre-auth bounds

def assert_refused(gw):
    over = HttpClient(gw.http_port)
    try:
        over.send_raw(over.request_bytes("", path="/nothing-here"))
        assert over.eof(), "not closed"
        assert over.buf.startswith(b"HTTP/1.1 503 "), over.buf
        assert b"not logged in" in over.buf, over.buf
    finally:
        over.close()


def test_connections_not_logged_in_are_bounded_per_ip(http_gateway, tls_client_ctx):
    """Issue 14 (resource exhaustion): HTTP connections not logged in count against the
    shard's pre-auth bounds like IMAP ones (--max-preauth-per-ip); past them a new one gets
    503 (plain port) or is closed (TLS port), and one whose session logs in stops counting."""
    gw = http_gateway(extra=["--max-preauth-per-ip", "2"], shards=1)
    held = [HttpClient(gw.http_port), HttpClient(gw.http_port)]
    try:
        for c in held:  # served (so accepted and counted), not logged in
            r = c.post("", path="/nothing-here")
            assert r.status == 404, r.body
        assert_refused(gw)
        with pytest.raises((ssl.SSLError, OSError)):
            HttpClient(gw.https_port, tls_ctx=tls_client_ctx, timeout=5.0).post(
                "", path="/nothing-here")
        assert gw.metrics()["pimap_preauth_refused_total"][None] >= 2
        # One logs in: its connection no longer counts, its IP gets a slot back.
        r = held[0].post(login_line("L", "alice", "preauth"))
        assert r.tagged("L").startswith(b"L OK"), r.body
        # A request carrying the session's cookie on a new connection leaves at once.
        again = HttpClient(gw.http_port)
        held.append(again)
        again.cookie = held[0].cookie
        r = again.post("n NOOP\r\n")
        assert r.tagged("n").startswith(b"n OK"), r.body
        last = HttpClient(gw.http_port)
        held.append(last)
        assert last.post("", path="/nothing-here").status == 404
        assert_refused(gw)  # held[1] and last count
    finally:
        for c in held:
            c.close()
