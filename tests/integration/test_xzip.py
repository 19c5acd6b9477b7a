"""XZIP (the P-IMAP draft's compressed command wrapper) against the real store: a stock
client's relayed FETCH, a P-IMAP device's FETCH, CAPABILITY before login, the commands XZIP
refuses (the connection goes on), an answer too large to keep, and XZIP over the HTTP
binding. Every answer's literal is gunzipped and its inner response checked whole."""

import gzip
import http.client
import re

import pytest

import harness
from harness import (EXISTS_RE, HOST, USERS, caps_from_line, ensure_messages, make_message,
                     ok, pimap_login, quote, unique_name, wait_until)

pytestmark = pytest.mark.timeout(120)

_LITERAL = re.compile(rb"^\* \{(\d+)\}\r\n")


def xzip(c, tag, inner_tag, inner):
    """Sends `tag XZIP inner_tag inner`; returns (inner response bytes, outer tagged line)."""
    c.send("%s XZIP %s %s\r\n" % (tag, inner_tag, inner))
    head = c.readline()  # "* {N}\r\n" + N octets + "\r\n" (RawImap reads the literal)
    m = _LITERAL.match(head)
    assert m, head[:200]
    n = int(m.group(1))
    assert len(head) == m.end() + n + 2 and head.endswith(b"\r\n"), head[:200]
    inner_bytes = gzip.decompress(head[m.end():m.end() + n])
    t = c.readline()
    assert t == tag.encode() + b" OK XZIP completed\r\n", t
    return inner_bytes, t


def inner_lines(data):
    return data.split(b"\r\n")


def exists_of(untagged):
    n = [int(EXISTS_RE.match(x).group(1)) for x in untagged if EXISTS_RE.match(x)]
    assert n, untagged
    return n[-1]


def test_xzip_fetch_in_a_relayed_session(gateway, dovecot):
    ensure_messages(dovecot, "alice", 2)
    with gateway.raw() as c:
        t = c.login("alice", USERS["alice"])
        assert "XZIP" in caps_from_line(t), t
        untagged, t = c.cmd("S1", "SELECT INBOX")
        ok(t, "S1")
        n = exists_of(untagged)
        data, _ = xzip(c, "X1", "F1", "FETCH 1:* (UID FLAGS)")
        lines = inner_lines(data)
        fetches = [x for x in lines if re.match(rb"^\* \d+ FETCH \(", x)]
        assert len(fetches) == n, data
        assert all(b"UID " in x and b"FLAGS (" in x for x in fetches), data
        assert lines[-2].startswith(b"F1 OK"), data  # the inner tagged line ends it
        assert lines[-1] == b"", data
        # The session goes on unwrapped; the same FETCH answers the same lines.
        untagged, t = c.cmd("F2", "FETCH 1:* (UID FLAGS)")
        ok(t, "F2")
        assert [x.rstrip(b"\r\n") for x in untagged] == fetches, (untagged, fetches)
        # XZIP of a command the gateway answers itself.
        data, _ = xzip(c, "X2", "C2", "CAPABILITY")
        assert re.match(rb"^\* CAPABILITY .* XZIP", data), data
        assert data.endswith(b"C2 OK CAPABILITY completed\r\n"), data
        m = gateway.metrics()
        assert m["pimap_xzip_commands_total"][None] >= 2
        assert m["pimap_xzip_raw_bytes_total"][None] > 0
        assert m["pimap_xzip_wire_bytes_total"][None] > 0


def test_xzip_before_login(gateway):
    with gateway.raw() as c:
        assert "XZIP" in caps_from_line(c.greeting), c.greeting
        data, _ = xzip(c, "X0", "C0", "CAPABILITY")
        caps = caps_from_line(data.split(b"\r\n")[0])
        assert "XZIP" in caps and "IMAP4REV1" in caps, data
        assert data.endswith(b"C0 OK CAPABILITY completed\r\n"), data
        data, _ = xzip(c, "X1", "N1", "NOOP")
        assert data == b"N1 OK NOOP completed\r\n", data
        # Logging in still works afterwards (LOGIN itself cannot be wrapped).
        _, t = c.cmd("X2", "XZIP L0 LOGIN alice %s" % quote(USERS["alice"]))
        assert t.startswith(b"X2 BAD"), t
        c.login("alice", USERS["alice"])
        _, t = c.cmd("N2", "NOOP")
        ok(t, "N2")


def test_refused_inner_commands_leave_the_connection_working(gateway, dovecot):
    ensure_messages(dovecot, "alice", 1)
    with gateway.raw() as c:
        c.login("alice", USERS["alice"])
        ok(c.cmd("S1", "SELECT INBOX")[1], "S1")
        untagged, t = c.cmd("I0", "XZIP I1 IDLE")
        assert t.startswith(b"I0 BAD"), t
        assert not untagged, untagged  # no "+ idling": the IDLE never ran
        # A synchronising literal inside XZIP: BAD at once, no "+" round trip; the
        # client does not send the literal.
        untagged, t = c.cmd("L0", "XZIP L1 SELECT {5}")
        assert t.startswith(b"L0 BAD"), t
        assert not untagged, untagged
        untagged, t = c.cmd("Z0", "XZIP Z1 XZIP Z2 NOOP")
        assert t.startswith(b"Z0 BAD"), t
        _, t = c.cmd("M0", "XZIP")
        assert t.startswith(b"M0 BAD"), t
        # Still selected, still answering.
        untagged, t = c.cmd("F1", "FETCH 1 (UID)")
        ok(t, "F1")
        assert any(b" FETCH (UID " in x for x in untagged), untagged
        # A non-synchronising literal is fine.
        data, _ = xzip(c, "X3", "E3", "EXAMINE {5+}\r\nINBOX")
        assert b"E3 OK [READ-ONLY]" in data, data


def test_xzip_fetch_in_a_pimap_session(pimap_gateway, dovecot):
    ensure_messages(dovecot, "alice", 2)
    with pimap_gateway.raw() as c:
        pimap_login(c, "alice#%s" % unique_name("xz"))
        untagged, t = c.cmd("S1", "SELECT INBOX")
        ok(t, "S1")
        n = exists_of(untagged)
        data, _ = xzip(c, "X1", "F1", "FETCH 1:* (UID FLAGS)")
        lines = inner_lines(data)
        msns = [int(m.group(1)) for m in (re.match(rb"^\* (\d+) FETCH \(", x) for x in lines)
                if m]
        assert msns == list(range(1, n + 1)), data  # the device's view, in order
        assert lines[-2].startswith(b"F1 OK"), data
        # XZIP around the P-IMAP extension commands, too.
        data, _ = xzip(c, "X2", "P2", "XGETPIMAPPREF PIMAP_EVENT_FILTER")
        assert data.endswith(b"P2 OK XGETPIMAPPREF completed\r\n"), data


def test_answer_too_large_is_refused_and_the_command_completes(gateway):
    box = unique_name("xzip")
    big = make_message("big", body_bytes=b"0123456789abcdef" * (5 << 16) + b"\r\n")  # 5 MiB
    with gateway.raw() as c:
        c.login("alice", USERS["alice"])
        ok(c.cmd("C1", "CREATE %s" % box)[1], "C1")
        try:
            c.send("A1 APPEND %s {%d+}\r\n" % (box, len(big)))
            c.send(big + b"\r\n")
            _, t = c.read_tagged("A1")
            ok(t, "A1")
            ok(c.cmd("S1", "SELECT %s" % box)[1], "S1")
            untagged, t = c.cmd("X1", "XZIP F1 FETCH 1 BODY.PEEK[]", timeout=60)
            assert t == b"X1 NO [LIMIT] XZIP response too large (run the command unwrapped)\r\n", t
            assert not untagged, [x[:100] for x in untagged]
            # The same command unwrapped still works.
            untagged, t = c.cmd("F2", "FETCH 1 BODY.PEEK[]", timeout=60)
            ok(t, "F2")
            assert b"0123456789abcdef" * 1000 in b"".join(untagged)
            assert gateway.metrics()["pimap_xzip_too_large_total"][None] >= 1
        finally:
            ok(c.cmd("U1", "UNSELECT")[1], "U1")
            ok(c.cmd("D1", "DELETE %s" % box)[1], "D1")


def test_xzip_over_the_http_binding(start_pimap_gateway, dovecot):
    ensure_messages(dovecot, "alice", 2)
    port = harness.free_ports(1)[0]
    start_pimap_gateway(extra=["--http-listen", "%s:%d" % (HOST, port)])
    wait_until(lambda: harness.port_is_open(port), 5, what="http port")
    body = ("L LOGIN %s %s\r\nS SELECT INBOX\r\nX XZIP F FETCH 1:* (UID FLAGS)\r\n"
            "N NOOP\r\n" % (quote("alice#%s" % unique_name("xh")), quote(USERS["alice"])))
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", "/pimap", body=body.encode(),
                     headers={"Content-Type": "application/vnd.pimap"})
        r = conn.getresponse()
        assert r.status == 200, r.status
        out = r.read()
    finally:
        conn.close()
    m = re.search(rb"\r\n\* \{(\d+)\}\r\n", out)
    assert m, out
    n = int(m.group(1))
    data = gzip.decompress(out[m.end():m.end() + n])
    assert data.endswith(b"\r\n") and b"\r\nF OK" in b"\r\n" + data, data
    assert re.match(rb"^\* 1 FETCH \(", data), data
    rest = out[m.end() + n:]
    assert rest.startswith(b"\r\nX OK XZIP completed\r\nN OK"), rest
