"""XTERSE (the P-IMAP R01 terse mode, [Modern] reading: status responses lose their text,
keep their response code; data responses never change) against the real store: a regular
session (the store's status lines rewritten on the way through, literals untouched), the
switch carried from before login into the session, a P-IMAP device's session, Python's
imaplib (which needs its tagged-response pattern relaxed: an empty resp-text is outside
RFC 3501's grammar), and the HTTP batch binding."""

import http.client
import imaplib
import re

import pytest

import harness
from harness import (HOST, USERS, caps_from_line, ensure_messages, make_message, ok,
                     pimap_login, quote, unique_name, wait_until)

pytestmark = pytest.mark.timeout(120)

# A status line in terse form: tag (or *), status, at most a response code, nothing else.
TERSE_STATUS = re.compile(rb"^(\*|[^ ]+) (OK|NO|BAD|BYE|PREAUTH)( \[[^\r\n]*\])?\r\n$")
STATUS = re.compile(rb"^(\*|[^ +][^ ]*) (OK|NO|BAD|BYE|PREAUTH)( |\r\n)")


def assert_terse(lines):
    for line in lines:
        if STATUS.match(line):
            assert TERSE_STATUS.match(line), line


def data_lines(lines):
    """The data responses (RECENT left out: only the first SELECT sees a message as new)."""
    return [x for x in lines if not STATUS.match(x) and not x.endswith(b" RECENT\r\n")]


def test_xterse_in_a_regular_session(gateway, dovecot):
    box = unique_name("xt")
    # A message whose body holds lines that look like status responses: they are
    # literal bytes and must pass untouched.
    body = b"A1 OK not a status line\r\n* BYE nor this one\r\n"
    with gateway.raw() as c:
        assert "XTERSE" in caps_from_line(c.greeting), c.greeting
        c.login("alice", USERS["alice"])
        assert "XTERSE" in c.capabilities()
        ok(c.cmd("C1", "CREATE %s" % box)[1], "C1")
        try:
            msg = make_message("terse", body_bytes=body)
            c.send("A0 APPEND %s {%d+}\r\n" % (box, len(msg)))
            c.send(msg + b"\r\n")
            ok(c.read_tagged("A0")[1], "A0")
            # Verbose first: the reference data (after a first SELECT that takes
            # \Recent away, so that both compared ones see the same flags).
            ok(c.cmd("S0", "SELECT %s" % box)[1], "S0")
            verbose_sel, t = c.cmd("S1", "SELECT %s" % box)
            ok(t, "S1")
            assert t != b"S1 OK [READ-WRITE]\r\n", t
            verbose_fetch, t = c.cmd("F1", "FETCH 1 (UID FLAGS BODY.PEEK[])")
            ok(t, "F1")
            assert body in b"".join(verbose_fetch)

            untagged, t = c.cmd("T1", "XTERSE ON")
            assert (untagged, t) == ([], b"T1 OK\r\n")
            terse_sel, t = c.cmd("S2", "SELECT %s" % box)
            assert t == b"S2 OK [READ-WRITE]\r\n", t
            assert_terse(terse_sel)
            assert b"* OK [UIDVALIDITY " in b"".join(terse_sel)
            assert data_lines(terse_sel) == data_lines(verbose_sel)
            terse_fetch, t = c.cmd("F2", "FETCH 1 (UID FLAGS BODY.PEEK[])")
            assert t == b"F2 OK\r\n", t
            assert terse_fetch == verbose_fetch  # literal and data untouched
            # The store's NO and BAD keep their codes only.
            _, t = c.cmd("N1", "SELECT %s" % unique_name("missing"))
            assert re.match(rb"^N1 NO( \[[A-Z]+\])?\r\n$", t), t
            _, t = c.cmd("B1", "FROBNICATE")
            assert t == b"B1 BAD\r\n", t
            msg2 = make_message("terse2")
            c.send("A1 APPEND %s {%d+}\r\n" % (box, len(msg2)))
            c.send(msg2 + b"\r\n")
            _, t = c.read_tagged("A1")
            assert re.match(rb"^A1 OK \[APPENDUID \d+ \d+\]\r\n$", t), t
            # Bad arguments: BAD (terse too, as the mode is on).
            assert c.cmd("T2", "XTERSE LOUDLY")[1] == b"T2 BAD\r\n"
            assert c.cmd("T3", "XTERSE OFF")[1] == b"T3 OK XTERSE OFF\r\n"
            _, t = c.cmd("N2", "NOOP")
            assert t.startswith(b"N2 OK ") and len(t) > len(b"N2 OK \r\n"), t
        finally:
            c.cmd("U1", "UNSELECT")
            ok(c.cmd("D1", "DELETE %s" % box)[1], "D1")


def test_xterse_before_login_carries_into_the_session(gateway):
    with gateway.raw() as c:
        assert c.cmd("T1", "XTERSE ON")[1] == b"T1 OK\r\n"
        _, t = c.cmd("N1", "NOOP")
        assert t == b"N1 OK\r\n", t
        # A failed login's answer is terse, and so is the next one's.
        _, t = c.cmd("L0", "LOGIN alice %s" % quote("wrong"))
        assert re.match(rb"^L0 NO( \[[A-Z]+\])?\r\n$", t), t
        _, t = c.cmd("L1", "LOGIN alice %s" % quote(USERS["alice"]))
        assert re.match(rb"^L1 OK \[CAPABILITY [^\]]+\]\r\n$", t), t
        _, t = c.cmd("N2", "NOOP")
        assert t == b"N2 OK\r\n", t


def test_xterse_in_a_pimap_session(pimap_gateway, dovecot):
    ensure_messages(dovecot, "alice", 2)
    device = "alice#%s" % unique_name("xt")
    with pimap_gateway.raw() as c:
        pimap_login(c, device)
        ok(c.cmd("S0", "SELECT INBOX")[1], "S0")  # \Recent goes to this one
        verbose_sel, t = c.cmd("S1", "SELECT INBOX")
        ok(t, "S1")
        verbose_fetch, t = c.cmd("F1", "FETCH 1:* (UID FLAGS)")
        ok(t, "F1")
        assert c.cmd("T1", "XTERSE ON")[1] == b"T1 OK\r\n"
        terse_sel, t = c.cmd("S2", "SELECT INBOX")
        assert t == b"S2 OK [READ-WRITE]\r\n", t
        assert_terse(terse_sel)
        assert data_lines(terse_sel) == data_lines(verbose_sel)
        terse_fetch, t = c.cmd("F2", "FETCH 1:* (UID FLAGS)")
        assert t == b"F2 OK\r\n", t
        assert terse_fetch == verbose_fetch
        untagged, t = c.cmd("P1", "XGETPIMAPPREF PIMAP_EVENT_FILTER")
        assert t == b"P1 OK\r\n", t
        assert untagged, untagged  # the preference's data line stays
        assert c.cmd("T2", "XTERSE OFF")[1] == b"T2 OK XTERSE OFF\r\n"
    # Per connection: the resumed session starts verbose.
    with pimap_gateway.raw() as c:
        pimap_login(c, device)
        _, t = c.cmd("N1", "NOOP")
        assert t.startswith(b"N1 OK ") and len(t) > len(b"N1 OK \r\n"), t


class TerseIMAP4(imaplib.IMAP4):
    """imaplib with the one change a terse client needs: its pattern for tagged responses
    ("tag type SP data") also takes a status without text ("A1 OK")."""

    def __init__(self, *args, **kwargs):
        imaplib.Commands.setdefault("XTERSE", ("NONAUTH", "AUTH", "SELECTED", "LOGOUT"))
        super().__init__(*args, **kwargs)
        self.tagre = re.compile(self.tagre.pattern.replace(rb" (?P<data>.*)",
                                                           rb" ?(?P<data>.*)"),
                                re.ASCII)


def test_xterse_with_imaplib(gateway, dovecot):
    ensure_messages(dovecot, "alice", 2)
    plain = imaplib.IMAP4(HOST, gateway.imap_port)
    try:
        plain.login("alice", USERS["alice"])
        typ, count = plain.select("INBOX")
        assert typ == "OK"
        typ, want = plain.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
        assert typ == "OK"
    finally:
        plain.logout()
    terse = TerseIMAP4(HOST, gateway.imap_port)
    try:
        assert "XTERSE" in terse.capabilities
        typ, data = terse._simple_command("XTERSE", "ON")
        assert (typ, data) == ("OK", [b""]), (typ, data)
        typ, _ = terse.login("alice", USERS["alice"])
        assert typ == "OK"
        typ, got_count = terse.select("INBOX")
        assert (typ, got_count) == ("OK", count)
        typ, got = terse.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
        assert (typ, got) == ("OK", want)
        typ, data = terse.noop()
        assert typ == "OK"
    finally:
        terse.logout()


def test_xterse_over_the_http_binding(start_pimap_gateway, dovecot):
    ensure_messages(dovecot, "alice", 1)
    port = harness.free_ports(1)[0]
    start_pimap_gateway(extra=["--http-listen", "%s:%d" % (HOST, port)])
    wait_until(lambda: harness.port_is_open(port), 5, what="http port")
    body = ("T XTERSE ON\r\nL LOGIN %s %s\r\nS SELECT INBOX\r\nN NOOP\r\n"
            "O XTERSE OFF\r\nM NOOP\r\n"
            % (quote("alice#%s" % unique_name("xth")), quote(USERS["alice"])))
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", "/pimap", body=body.encode(),
                     headers={"Content-Type": "application/vnd.pimap"})
        r = conn.getresponse()
        assert r.status == 200, r.status
        out = r.read()
    finally:
        conn.close()
    lines = [x + b"\r\n" for x in out.split(b"\r\n") if x]
    tagged = {x.split(b" ", 1)[0]: x for x in lines if not x.startswith((b"* ", b"+ "))}
    assert tagged[b"T"] == b"T OK\r\n", out
    assert re.match(rb"^L OK \[CAPABILITY [^\]]+\]\r\n$", tagged[b"L"]), out
    assert tagged[b"S"] == b"S OK [READ-WRITE]\r\n", out
    assert tagged[b"N"] == b"N OK\r\n", out
    assert tagged[b"O"] == b"O OK XTERSE OFF\r\n", out
    assert tagged[b"M"].startswith(b"M OK ") and len(tagged[b"M"]) > 8, out
    before_off = out[:out.index(b"O OK")]
    assert_terse([x + b"\r\n" for x in before_off.split(b"\r\n") if x])
