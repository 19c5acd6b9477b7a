"""Hostile or malformed input: BAD responses, no crash, the daemon keeps serving."""

import os
import random
import socket
import time

import pytest

pytestmark = pytest.mark.timeout(120)


def assert_alive(gw):
    assert gw.running(), "pimapd died:\n" + gw.log()[-5000:]
    with gw.raw() as c:
        assert c.greeting.startswith(b"* OK"), c.greeting
        c.login("carol", "carolpw")
        _, t = c.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t


def test_100k_line_preauth(gateway):
    with gateway.raw() as c:
        c.send(b"a1 NOOP " + b"x" * (100 * 1024) + b"\r\n")
        _, t = c.read_tagged("a1")
        assert t.startswith(b"a1 BAD"), t
        _, t = c.cmd("a2", "NOOP")
        assert t.startswith(b"a2 OK"), t
        c.login("alice", "alicepw", tag="a3")
    assert_alive(gateway)


def test_100k_line_postauth(gateway):
    with gateway.raw() as c:
        c.login("bob", "bobpw")
        _, t = c.cmd("s", "SELECT INBOX")
        assert t.startswith(b"s OK"), t
        c.send(b"a1 SEARCH SUBJECT " + b"y" * (100 * 1024) + b"\r\n")
        _, t = c.read_tagged("a1")
        assert t.startswith(b"a1 BAD"), t
        _, t = c.cmd("a2", "NOOP")
        assert t.startswith(b"a2 OK"), t
    assert_alive(gateway)


def test_max_line_bytes_option(start_pimapd):
    gw = start_pimapd(extra=["--max-line-bytes", "2048"])
    with gw.raw() as c:
        _, t = c.cmd("a1", "NOOP " + "z" * 4000)
        assert t.startswith(b"a1 BAD"), t
        _, t = c.cmd("a2", "NOOP " + "z" * 1000)
        assert t.startswith(b"a2 BAD") or t.startswith(b"a2 OK"), t  # NOOP takes no args
        _, t = c.cmd("a3", "NOOP")
        assert t.startswith(b"a3 OK"), t


def test_huge_literal_announcement_is_refused(gateway):
    with gateway.raw() as c:
        # Pre-auth: synchronizing literal far over any limit -> BAD, no continuation.
        c.send(b"a1 LOGIN {999999999999}\r\n")
        line = c.readline(timeout=5)
        assert not line.startswith(b"+"), line
        assert line.startswith(b"a1 BAD") or line.startswith(b"* BAD"), line
        if not line.startswith(b"a1 "):
            _, line = c.read_tagged("a1")
            assert line.startswith(b"a1 BAD"), line
        _, t = c.cmd("a2", "NOOP")
        assert t.startswith(b"a2 OK"), t
        c.login("alice", "alicepw", tag="a3")
        # Post-auth APPEND with the same literal.
        c.send(b"a4 APPEND INBOX {999999999999}\r\n")
        line = c.readline(timeout=5)
        assert not line.startswith(b"+"), line
        _, t = (None, line) if line.startswith(b"a4 ") else c.read_tagged("a4")
        assert t.startswith(b"a4 BAD") or t.startswith(b"a4 NO"), t
        _, t = c.cmd("a5", "NOOP")
        assert t.startswith(b"a5 OK"), t
    assert_alive(gateway)


def test_unbalanced_parens_and_quotes(gateway):
    with gateway.raw() as c:
        _, t = c.cmd("a1", "LOGIN (alice alicepw")
        assert t.startswith(b"a1 BAD"), t
        _, t = c.cmd("a2", 'LOGIN "alice alicepw')
        assert t.startswith(b"a2 BAD"), t
        c.login("alice", "alicepw", tag="a3")
        _, t = c.cmd("a4", "SELECT INBOX")
        assert t.startswith(b"a4 OK"), t
        _, t = c.cmd("a5", "FETCH 1:* (FLAGS")
        assert t.startswith(b"a5 BAD"), t
        _, t = c.cmd("a6", "FETCH 1:* FLAGS))")
        assert t.startswith(b"a6 BAD"), t
        _, t = c.cmd("a7", "NOOP")
        assert t.startswith(b"a7 OK"), t
    assert_alive(gateway)


def test_missing_tag_and_empty_lines(gateway):
    with gateway.raw() as c:
        # An empty line (may be ignored or answered with * BAD), then a tag without command.
        c.send(b"\r\nNOOP\r\nx1 \r\n")
        untagged, t = c.cmd("a1", "NOOP")
        assert t.startswith(b"a1 OK"), t
        bad = [x for x in untagged if b" BAD" in x[:12]]
        assert any(x.startswith(b"NOOP BAD") or x.startswith(b"* BAD") for x in bad), untagged
        assert any(x.startswith(b"x1 BAD") or x.startswith(b"* BAD") for x in bad), untagged


@pytest.mark.timeout(180)
def test_random_binary_garbage(gateway):
    rnd = random.Random(0xB10B)
    for round_ in range(20):
        with gateway.raw() as c:
            n = rnd.randint(1, 3000)
            junk = bytes(rnd.randrange(256) for _ in range(n)).replace(b"\r", b"").replace(
                b"\n", b"").replace(b"{", b"")
            junk = b"\0" + junk  # always at least one NUL
            if round_ % 2:
                c.login("bob", "bobpw", tag="L%d" % round_)
            c.send(b"g%d " % round_ + junk + b"\r\n")
            try:
                line = c.readline(timeout=5)
            except EOFError:
                pytest.fail("connection closed without a response to garbage (round %d)" % round_)
            assert b"BAD" in line or line.startswith(b"* BYE"), (round_, line)
            if not line.startswith(b"* BYE"):
                _, t = c.cmd("ok%d" % round_, "NOOP")
                assert t.startswith(b"ok%d OK" % round_), (round_, t)
    # Pure noise without line ends, then close abruptly.
    for _ in range(10):
        with gateway.raw() as c:
            c.send(os.urandom(rnd.randint(1, 65536)))
    assert_alive(gateway)


def test_garbage_during_idle_and_literal(gateway):
    with gateway.raw() as c:
        c.login("alice", "alicepw")
        _, t = c.cmd("s", "SELECT INBOX")
        assert t.startswith(b"s OK"), t
        c.send(b"i IDLE\r\n")
        assert c.readline().startswith(b"+")
        c.send(b"\0\xff\xfe not done\r\n")
        _, t = c.read_tagged("i")
        assert t.startswith(b"i BAD") or t.startswith(b"i OK") or t.startswith(b"i NO"), t
        _, t = c.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t
    # Literal announced, then the client disappears mid-literal.
    with gateway.raw() as c:
        c.login("alice", "alicepw")
        c.send(b"a APPEND INBOX {100000+}\r\n" + b"x" * 5000)
    assert_alive(gateway)


def test_login_deadline_is_absolute(start_pimapd):
    """Issue 14: a client that trickles a byte a second before login is dropped
    at --login-timeout from its accept, whatever it sends (each byte used to
    restart the timer)."""
    gw = start_pimapd(extra=["--login-timeout", "3s"])
    with gw.raw() as c:
        start = time.monotonic()
        closed = False
        got = b""
        # Never a whole line: every byte would count as activity.
        for _ in range(12):
            try:
                c.send(b"x")
                c.sock.settimeout(0.5)
                chunk = c.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
        elapsed = time.monotonic() - start
        assert closed, "still connected after %.1fs; got %r" % (elapsed, got)
        assert got.startswith(b"* BYE"), got
        assert elapsed < 3 + 2.5, elapsed
    # Complete commands do not extend it either.
    with gw.raw() as c:
        start = time.monotonic()
        with pytest.raises((EOFError, OSError)):
            for i in range(12):
                _, t = c.cmd("n%d" % i, "NOOP", timeout=5)
                assert t.startswith(b"n%d OK" % i), t
                time.sleep(0.5)
        assert time.monotonic() - start < 3 + 2.5
    assert_alive(gw)


# ----------------------------------------------------------------------------- catalogue
# Issue 14's bad-input catalogue: each input gets its documented answer (README, "Bad
# input") and a second client, logged in before the attack, is served meanwhile.

class Bystander:
    """A logged-in client that must keep being served while another misbehaves."""

    def __init__(self, gw):
        self.c = gw.raw()
        self.c.login("carol", "carolpw", tag="b0")
        self.n = 0

    def check(self):
        self.n += 1
        tag = "b%d" % self.n
        _, t = self.c.cmd(tag, "NOOP", timeout=10)
        assert t.startswith(tag.encode() + b" OK"), t

    def close(self):
        self.c.close()


@pytest.fixture
def bystander(gateway):
    b = Bystander(gateway)
    yield b
    b.close()


def test_deep_nesting_is_bad(gateway, bystander):
    """10,000 nested parentheses: BAD (the parser bounds nesting), before and after login."""
    depth = 10000
    with gateway.raw() as c:
        _, t = c.cmd("a1", "ID " + "(" * depth + ")" * depth)
        assert t.startswith(b"a1 BAD"), t
        bystander.check()
        c.login("alice", "alicepw", tag="a2")
        _, t = c.cmd("a3", "SELECT INBOX")
        assert t.startswith(b"a3 OK"), t
        # Relayed as it is: the store's answer stands (Dovecot takes it).
        _, t = c.cmd("a4", "SEARCH " + "(" * depth + "ALL" + ")" * depth)
        assert t.startswith(b"a4 OK") or t.startswith(b"a4 BAD"), t
        _, t = c.cmd("a5", "NOOP")
        assert t.startswith(b"a5 OK"), t
    bystander.check()
    # A P-IMAP session parses SEARCH itself (MSNs become UIDs): bounded there.
    with gateway.raw() as c:
        c.login("alice#nesting", "alicepw", tag="p1")
        _, t = c.cmd("p2", "SELECT INBOX")
        assert t.startswith(b"p2 OK"), t
        _, t = c.cmd("p3", "SEARCH " + "(" * depth + "ALL" + ")" * depth)
        assert t.startswith(b"p3 BAD"), t
        _, t = c.cmd("p4", "NOOP")
        assert t.startswith(b"p4 OK"), t
    bystander.check()


def test_nul_bytes_are_bad(gateway, bystander):
    """NUL is not IMAP text (RFC 3501 §9: CHAR8 excludes it, also in literals)."""
    with gateway.raw() as c:
        _, t = c.cmd("a1", b'LOGIN "al\0ice" alicepw')
        assert t.startswith(b"a1 BAD"), t
        c.send(b"a2 LOGIN {6}\r\n")
        assert c.readline().startswith(b"+")
        c.send(b"al\0ice alicepw\r\n")
        _, t = c.read_tagged("a2")
        assert t.startswith(b"a2 BAD") or t.startswith(b"a2 NO"), t
        c.login("alice", "alicepw", tag="a3")
        _, t = c.cmd("a4", b"SELECT IN\0BOX")
        assert t.startswith(b"a4 BAD"), t
        _, t = c.cmd("a5", "NOOP")
        assert t.startswith(b"a5 OK"), t
    bystander.check()


def test_invalid_utf8_and_mutf7_mailbox_names(gateway, bystander):
    """8-bit bytes in a mailbox name without UTF8=ACCEPT, and broken modified UTF-7: NO or
    BAD, never a crash, and nothing is created."""
    with gateway.raw() as c:
        c.login("alice", "alicepw")
        for i, name in enumerate([b'"caf\xc3"', b'"\xff\xfe"', b'"&AOk"', b'"&-&Zm9v-"']):
            tag = "c%d" % i
            _, t = c.cmd(tag, b"CREATE " + name)
            assert t.startswith(tag.encode() + b" NO") or t.startswith(tag.encode() + b" BAD"), (
                name, t)
        untagged, t = c.cmd("l", 'LIST "" "*"')
        assert t.startswith(b"l OK"), t
        assert not [x for x in untagged if b"caf" in x or b"\xff" in x], untagged
    bystander.check()


def test_slowloris_after_login_holds_only_its_own_line(gateway, bystander):
    """After login a client that trickles a command byte by byte is an authenticated
    client like any other: served when its line completes (the line bound applies), and
    nobody else waits for it."""
    with gateway.raw() as c:
        c.login("alice", "alicepw")
        for b in b"slow NOOP":
            c.send(bytes([b]))
            bystander.check()
            time.sleep(0.1)
        c.send(b"\r\n")
        _, t = c.read_tagged("slow")
        assert t.startswith(b"slow OK"), t


@pytest.mark.parametrize("login", [False, True], ids=["preauth", "postauth"])
def test_ten_thousand_pipelined_commands_are_answered_in_order(gateway, bystander, login):
    """10,000 NOOPs in one burst: every one answered, in order (the gateway reads as fast
    as the answers drain, so its memory stays bounded)."""
    n = 10000
    with gateway.raw() as c:
        if login:
            c.login("bob", "bobpw")
        c.send(b"".join(b"p%d NOOP\r\n" % i for i in range(n)))
        for i in range(n):
            _, t = c.read_tagged("p%d" % i, timeout=30)
            assert t.startswith(b"p%d OK" % i), (i, t)
        bystander.check()


def test_tls_handshake_that_never_finishes_is_dropped(start_pimapd, tls_cert):
    """Nothing, or half a ClientHello, on the implicit-TLS port: closed at --login-timeout,
    and logged-in clients are served meanwhile."""
    gw = start_pimapd(tls=tls_cert, plaintext=True, extra=["--login-timeout", "2s"])
    by = Bystander(gw)
    try:
        hello = bytes.fromhex("16030100c8010000c40303") + os.urandom(20)  # cut short
        for first in (b"", hello):
            s = socket.create_connection(("127.0.0.1", gw.imaps_port), timeout=10)
            try:
                if first:
                    s.sendall(first)
                start = time.monotonic()
                by.check()
                s.settimeout(8)
                data = b""
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except ConnectionResetError:
                    pass
                assert time.monotonic() - start < 8, "not dropped"
                # At most a TLS alert: never IMAP text in clear.
                assert not data.startswith(b"*"), data
            finally:
                s.close()
        by.check()
    finally:
        by.close()
