"""XSYNC (docs/xsync.md: a folder's state-comparison sync in one round trip) against the
real store: after the store changed (new mail, flag changes, an expunge), the group gives a
P-IMAP device and a regular session the same data as the same steps sent one by one, ends
with one tagged answer, reports a failing step and a changed UIDVALIDITY, and runs in an
HTTP batch."""

import http.client
import re

import pytest

import harness
from harness import HOST, USERS, make_message, ok, pimap_login, quote, unique_name, wait_until

pytestmark = pytest.mark.timeout(120)

HEADERS = "(HEADERS (Subject Message-ID))"


def fill_box(dovecot, box, n):
    """A new folder with n messages (through the store itself); returns
    (uidvalidity, highestmodseq, last uid)."""
    with dovecot.raw("alice") as s:
        ok(s.cmd("c", "CREATE %s" % quote(box))[1], "c")
        for k in range(n):
            msg = make_message("xsync %d" % k)
            s.send("a%d APPEND %s {%d+}\r\n" % (k, quote(box), len(msg)))
            s.send(msg + b"\r\n")
            ok(s.read_tagged("a%d" % k)[1], "a%d" % k)
        return store_state(s, box)


def store_state(s, box):
    untagged, t = s.cmd("st", "STATUS %s (UIDVALIDITY HIGHESTMODSEQ UIDNEXT)" % quote(box))
    ok(t, "st")
    line = b"".join(untagged).decode()
    uv = int(re.search(r"UIDVALIDITY (\d+)", line).group(1))
    ms = int(re.search(r"HIGHESTMODSEQ (\d+)", line).group(1))
    return uv, ms, int(re.search(r"UIDNEXT (\d+)", line).group(1)) - 1


def change_store(dovecot, box):
    """New mail, a flag change and an expunge, made at the store behind the gateway."""
    with dovecot.raw("alice") as s:
        for k in range(2):
            msg = make_message("xsync new %d" % k)
            s.send("n%d APPEND %s {%d+}\r\n" % (k, quote(box), len(msg)))
            s.send(msg + b"\r\n")
            ok(s.read_tagged("n%d" % k)[1], "n%d" % k)
        ok(s.cmd("s", "SELECT %s" % quote(box))[1], "s")
        ok(s.cmd("f", "UID STORE 2 +FLAGS (\\Flagged)")[1], "f")
        ok(s.cmd("d", "UID STORE 3 +FLAGS (\\Deleted)")[1], "d")
        ok(s.cmd("e", "EXPUNGE")[1], "e")


def normalise(lines):
    """Untagged lines as compared: \\Recent and RECENT counts are first-come (the session
    that selects first gets them), and so is [CLOSED] (below); all else must be equal."""
    out = []
    for x in lines:
        if re.match(rb"^\* \d+ RECENT\r\n$", x):
            continue
        # A P-IMAP session's SELECT on a pooled store link that had another folder
        # selected passes the store's "[CLOSED]" on (whichever session borrows it second).
        if x.startswith(b"* OK [CLOSED]"):
            continue
        x = x.replace(b"\\Recent ", b"").replace(b" \\Recent", b"").replace(b"\\Recent", b"")
        out.append(x)
    return out


def steps(box, uv, ms, last):
    return ["SELECT %s (CONDSTORE)" % quote(box),
            "UID FETCH 1:%d (UID FLAGS) (CHANGEDSINCE %d)" % (last, ms),
            "UID SEARCH UID 1:%d" % last,
            "UID FETCH %d:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (Subject Message-ID)])"
            % (last + 1)]


def one_by_one(c, box, uv, ms, last):
    untagged = []
    for k, step in enumerate(steps(box, uv, ms, last)):
        u, t = c.cmd("p%d" % k, step)
        ok(t, "p%d" % k)
        untagged += u
    return untagged


def grouped(c, box, uv, ms, last, tag="y"):
    untagged, t = c.cmd(tag, "XSYNC %s %d %d %d %s" % (quote(box), uv, ms, last, HEADERS))
    return untagged, t


def check_equal(grouped_lines, stepwise_lines):
    g, s = normalise(grouped_lines), normalise(stepwise_lines)
    assert g == s, (g, s)
    text = b"".join(g)
    assert b"xsync new 0" in text and b"xsync new 1" in text, text  # new mail's headers
    assert b"\\Flagged" in text, text  # the flag change
    assert re.search(rb"\* SEARCH( \d+)*\r\n", text), text  # the UIDs still there
    search = [x for x in g if x.startswith(b"* SEARCH")][0]
    assert b" 3" not in search.split(b"\r")[0] + b" ", search  # UID 3 is gone


@pytest.mark.parametrize("kind", ["pimap", "regular"])
def test_xsync_equals_the_steps_one_by_one(start_pimap_gateway, dovecot, kind):
    gw = start_pimap_gateway()
    box = unique_name("xs")
    uv, ms, last = fill_box(dovecot, box, 4)
    change_store(dovecot, box)
    try:
        with gw.raw() as a, gw.raw() as b:
            if kind == "pimap":
                pimap_login(a, "alice#%s" % unique_name("xa"))
                pimap_login(b, "alice#%s" % unique_name("xb"))
            else:
                a.login("alice", USERS["alice"])
                b.login("alice", USERS["alice"])
            assert "XSYNC" in a.capabilities()
            g, t = grouped(a, box, uv, ms, last)
            assert t == b"y OK [XSYNC 4] XSYNC completed\r\n", (g, t)
            s = one_by_one(b, box, uv, ms, last)
            check_equal(g, s)
            # The session goes on as after the steps: the folder is selected.
            ok(a.cmd("n", "NOOP")[1], "n")
            u, t = a.cmd("f", "UID FETCH 1:* (UID)")
            ok(t, "f")
            assert len(u) == 5, u
    finally:
        with dovecot.raw("alice") as s:
            s.cmd("d", "DELETE %s" % quote(box))


def test_xsync_errors(pimap_gateway, dovecot):
    box = unique_name("xs")
    uv, ms, last = fill_box(dovecot, box, 2)
    try:
        with pimap_gateway.raw() as c:
            pimap_login(c, "alice#%s" % unique_name("xe"))
            # A step that fails ends the group, with the step and the store's words.
            u, t = c.cmd("y1", "XSYNC %s 1 1 1" % quote(unique_name("missing")))
            assert re.match(rb"^y1 NO \[XSYNC 1 SELECT\] .+\r\n$", t), (u, t)
            # A UIDVALIDITY that is not the client's: the SELECT's data, then NO.
            u, t = c.cmd("y2", "XSYNC %s %d %d %d" % (quote(box), uv + 1, ms, last))
            assert t == (b"y2 NO [UIDVALIDITY %d] XSYNC: UIDVALIDITY changed; discard the "
                         b"folder and sync it in full\r\n" % uv), t
            assert any(b"EXISTS" in x for x in u), u
            assert not any(b"FETCH" in x for x in u), u
            # Bad syntax: BAD, the session goes on.
            _, t = c.cmd("y3", "XSYNC %s" % quote(box))
            assert t.startswith(b"y3 BAD XSYNC: "), t
            # Terse: the one answer keeps its code only.
            ok(c.cmd("t", "XTERSE ON")[1], "t")
            _, t = c.cmd("y4", "XSYNC %s %d %d %d" % (quote(box), uv, ms, last))
            assert t == b"y4 OK [XSYNC 4]\r\n", t
    finally:
        with dovecot.raw("alice") as s:
            s.cmd("d", "DELETE %s" % quote(box))


def test_xsync_in_an_http_batch(start_pimap_gateway, dovecot):
    box = unique_name("xs")
    uv, ms, last = fill_box(dovecot, box, 3)
    change_store(dovecot, box)
    port = harness.free_ports(1)[0]
    start_pimap_gateway(extra=["--http-listen", "%s:%d" % (HOST, port)])
    wait_until(lambda: harness.port_is_open(port), 5, what="http port")
    body = ("L LOGIN %s %s\r\nY XSYNC %s %d %d %d %s\r\nN NOOP\r\n"
            % (quote("alice#%s" % unique_name("xh")), quote(USERS["alice"]), quote(box), uv,
               ms, last, HEADERS))
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", "/pimap", body=body.encode(),
                     headers={"Content-Type": "application/vnd.pimap"})
        r = conn.getresponse()
        assert r.status == 200, r.status
        out = r.read()
    finally:
        conn.close()
        with dovecot.raw("alice") as s:
            s.cmd("d", "DELETE %s" % quote(box))
    assert b"\r\nY OK [XSYNC 4] XSYNC completed\r\nN OK" in out, out
    assert b"xsync new 1" in out and b"* SEARCH" in out, out
    assert b"Y.1" not in out and b"Y.4" not in out, out  # the steps' tags stay inside
