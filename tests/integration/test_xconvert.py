"""XCONVERT / XUIDCONVERT / UID XCONVERT (issue 15 item 2) through pimapd against the real
Dovecot: a message with a latin-1 quoted-printable text part, an HTML part and a binary
attachment (base64), each converted (charset -> UTF-8, HTML -> text, the attachment's raw
octets as literal8); a single-part latin-1 message; unknown conversions, bad syntax and no
selection; external converters (a real one, and hostile ones that time out or write too
much: killed, reported, no process left) while another device keeps being served."""

import base64
import os
import re
import time

import pytest

import harness
from harness import USERS, append, ok, pimap_login, quote, unique_name

pytestmark = pytest.mark.timeout(120)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) + b"\x00end"

LATIN1_TEXT = "Caf\u00e9 cr\u00e8me, gar\u00e7on! \u00bd price.\r\n"
HTML = ("<html><head><title>T</title><style>p {color:red}</style></head><body>"
        "<p>Hello <b>world</b> &amp; caf&eacute;</p><ul><li>one</li><li>two</li></ul>"
        "<a href=\"https://example.org/x\">link</a><script>alert(1)</script></body></html>")


def qp_latin1(text):
    out = []
    for ch in text.encode("latin-1"):
        if ch in (0x0d, 0x0a) or (32 <= ch < 127 and ch != ord("=")):
            out.append(bytes([ch]))
        else:
            out.append(b"=%02X" % ch)
    return b"".join(out)


def b64_lines(data):
    enc = base64.b64encode(data)
    return b"\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76)) + b"\r\n"


def mixed_message(subject):
    return (b"From: sender@example.org\r\nTo: alice@example.org\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"BOUND\"\r\n\r\n"
            b"--BOUND\r\n"
            b"Content-Type: text/plain; charset=\"ISO-8859-1\"\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            + qp_latin1(LATIN1_TEXT) +
            b"--BOUND\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + b64_lines(HTML.encode()) +
            b"--BOUND\r\n"
            b"Content-Type: image/png; name=\"pic.png\"\r\n"
            b"Content-Disposition: attachment; filename=\"pic.png\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + b64_lines(PNG) +
            b"--BOUND--\r\n")


def single_latin1_message(subject):
    return (b"From: sender@example.org\r\nTo: alice@example.org\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=iso-8859-1\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            + "Na\u00efve r\u00e9sum\u00e9\r\n".encode("latin-1"))


_HEAD = re.compile(rb"^\* (\d+) XCONVERT (~?)\{(\d+)\}\r\n")


def xconvert(c, tag, command, timeout=None):
    """Sends `tag command`; returns (msn, binary, data, tagged line) or (None, ..., tagged)."""
    untagged, t = c.cmd(tag, command, timeout=timeout)
    for line in untagged:
        m = _HEAD.match(line)
        if m:
            n = int(m.group(3))
            data = line[m.end():m.end() + n]
            assert len(data) == n and line[m.end() + n:] == b"\r\n", line[:200]
            return int(m.group(1)), m.group(2) == b"~", data, t
    return None, None, None, t


def setup_box(dovecot, messages):
    box = unique_name("xconv")
    with dovecot.raw("alice") as c:
        ok(c.cmd("c", "CREATE " + quote(box))[1], "c")
        uids = [append(c, box, m) for m in messages]
    return box, uids


def device(gw, name):
    c = gw.raw()
    untagged = pimap_login(c, "alice#%s" % unique_name(name))
    return c, untagged


def select(c, box):
    _, t = c.cmd("s", "SELECT " + quote(box))
    ok(t, "s")


def test_builtin_conversions(start_pimap_gateway, dovecot):
    box, (uid_mixed, uid_single) = setup_box(
        dovecot, [mixed_message("mixed"), single_latin1_message("single")])
    gw = start_pimap_gateway()
    c, _ = device(gw, "xc")
    with c:
        caps = c.capabilities()
        assert "XCONVERT" in caps, caps
        # Not selected: BAD, as FETCH would be.
        _, _, _, t = xconvert(c, "n0", "XCONVERT 1 BODY[1] as text/plain")
        assert t.startswith(b"n0 BAD"), t
        select(c, box)
        msn, binary, data, t = xconvert(c, "x1", "XCONVERT 1 BODY[1] as text/plain")
        ok(t, "x1")
        assert msn == 1 and not binary
        # The CRLF before the boundary is the boundary's (RFC 2046 §5.1.1).
        assert data.decode("utf-8") == LATIN1_TEXT[:-2], data
        msn, binary, data, t = xconvert(
            c, "x2", "XUIDCONVERT %d BODY[2] as TEXT/PLAIN" % uid_mixed)
        ok(t, "x2")
        text = data.decode("utf-8")
        assert msn == 1 and not binary
        assert "Hello world & caf\u00e9" in text, text
        assert "- one\n- two" in text, text
        assert "link <https://example.org/x>" in text, text
        assert "alert" not in text and "color" not in text and "<" not in text.replace(
            "<https", ""), text
        # The attachment's octets, transfer encoding removed, as literal8.
        msn, binary, data, t = xconvert(
            c, "x3", "UID XCONVERT %d BODY.PEEK[3] as image/png" % uid_mixed)
        ok(t, "x3")
        assert binary and data == PNG and msn == 1
        # A single-part message: part 1 is its body.
        msn, _, data, t = xconvert(c, "x4", "XCONVERT 2 BODY[1] as text/plain")
        ok(t, "x4")
        assert msn == 2 and data.decode("utf-8") == "Na\u00efve r\u00e9sum\u00e9\r\n", data
        # No such conversion, no such part, no such message.
        _, _, _, t = xconvert(c, "u1", "XCONVERT 1 BODY[3] as application/pdf")
        assert t.startswith(b"u1 NO [BADPARAMETERS]"), t
        _, _, _, t = xconvert(c, "u2", "XCONVERT 1 BODY[9] as text/plain")
        assert t.startswith(b"u2 NO"), t
        _, _, _, t = xconvert(c, "u3", "XUIDCONVERT 999999 BODY[1] as text/plain")
        assert t.startswith(b"u3 NO"), t
        _, _, _, t = xconvert(c, "u4", "XCONVERT 99 BODY[1] as text/plain")
        assert t.startswith(b"u4 BAD"), t
        # Bad syntax.
        for i, bad in enumerate(["XCONVERT 1 BODY[1]", "XCONVERT 1 BODY[0] as text/plain",
                                 "XCONVERT 1 BODY[TEXT] as text/plain",
                                 "XCONVERT 1 BODY[1] to text/plain",
                                 "XCONVERT 1 BODY[1] as textplain", "XCONVERT x BODY[1] as a/b"]):
            _, _, _, t = xconvert(c, "b%d" % i, bad)
            assert t.startswith(b"b%d BAD" % i), (bad, t)
        # Conversion never sets \Seen, and the session goes on.
        untagged, t = c.cmd("f", "FETCH 1:2 (FLAGS)")
        ok(t, "f")
        assert not any(b"\\Seen" in x for x in untagged), untagged


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            kids.append(int(entry))
    return kids


def test_external_converters(start_pimap_gateway, dovecot):
    box, (uid,) = setup_box(dovecot, [mixed_message("ext")])
    gw = start_pimap_gateway(shards=1, extra=[
        "--converter", "image/png:text/x-base64=/usr/bin/base64 -w 0",
        "--converter", "image/png:image/x-slow=/bin/sleep 30",
        "--converter", "image/png:image/x-huge=/usr/bin/yes",
        "--converter-timeout", "3s",
        "--converter-max-output", "100000"])
    c, _ = device(gw, "ext")
    other, _ = device(gw, "other")
    with c, other:
        select(c, box)
        select(other, box)
        _, binary, data, t = xconvert(c, "e1", "XCONVERT 1 BODY[3] as text/x-base64")
        ok(t, "e1")
        assert not binary and base64.b64decode(data) == PNG
        # A converter that hangs: the other device is served meanwhile (one shard).
        start = time.monotonic()
        c.send(b"e2 XCONVERT 1 BODY[3] as image/x-slow\r\n")
        time.sleep(0.3)
        assert children_of(gw.proc.pid), "the converter should be running"
        served = []
        for i in range(3):
            t0 = time.monotonic()
            untagged, t = other.cmd("o%d" % i, "FETCH 1 (UID FLAGS)")
            ok(t, "o%d" % i)
            served.append(time.monotonic() - t0)
        assert max(served) < 1.0, served
        untagged, t = c.read_tagged("e2", timeout=10)
        took = time.monotonic() - start
        assert t.startswith(b"e2 NO") and b"timed out" in t, t
        assert 2.5 < took < 8, took
        # Too much output: killed when it passes the bound.
        _, _, _, t = xconvert(c, "e3", "XCONVERT 1 BODY[3] as image/x-huge", timeout=10)
        assert t.startswith(b"e3 NO [LIMIT]") and b"100000" in t, t
        # Nothing left behind: no converter, no zombie.
        time.sleep(0.2)
        assert children_of(gw.proc.pid) == []
        # The device goes on normally.
        _, _, data, t = xconvert(c, "e4", "XCONVERT 1 BODY[1] as text/plain")
        ok(t, "e4")
        assert data.decode("utf-8") == LATIN1_TEXT[:-2]


def test_regular_session_has_no_xconvert(start_pimap_gateway, dovecot):
    gw = start_pimap_gateway()
    with gw.raw() as c:
        c.login("alice", USERS["alice"])
        assert "XCONVERT" not in c.capabilities()
        ok(c.cmd("s", "SELECT INBOX")[1], "s")
        _, t = c.cmd("x", "XCONVERT 1 BODY[1] as text/plain")
        assert t.startswith(b"x NO [CANNOT]"), t


def test_xconvert_over_http(start_pimap_gateway, dovecot):
    from http_client import HttpClient, login_line
    box, (uid,) = setup_box(dovecot, [mixed_message("http")])
    port = harness.free_ports(1)[0]
    gw = start_pimap_gateway(extra=[
        "--http-listen", "%s:%d" % (harness.HOST, port),
        "--converter", "image/png:image/x-slow=/bin/sleep 30", "--converter-timeout", "1s"])
    harness.wait_until(lambda: harness.port_is_open(port), 5, what="http port")
    with HttpClient(port) as c:
        r = c.post(login_line("L", "alice", unique_name("h")) +
                   "s SELECT %s\r\n" % quote(box) +
                   "x XCONVERT 1 BODY[1] as text/plain\r\n"
                   "u UID XCONVERT %d BODY[3] as image/png\r\n"
                   "w XCONVERT 1 BODY[3] as image/x-slow\r\n"
                   "n NOOP\r\n" % uid)
        assert r.status == 200, r.body
        body = r.body
        text = LATIN1_TEXT[:-2].encode("utf-8")
        assert b"* 1 XCONVERT {%d}\r\n" % len(text) + text + b"\r\nx OK" in body, body
        assert b"* 1 XCONVERT ~{%d}\r\n" % len(PNG) + PNG + b"\r\nu OK" in body, body
        assert r.tagged("w").startswith(b"w NO") and b"timed out" in r.tagged("w"), body
        assert r.tagged("n").startswith(b"n OK"), body
