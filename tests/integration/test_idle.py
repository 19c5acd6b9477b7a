"""IDLE end to end: the idler sees new mail pushed by the store."""

import re
import time

import pytest

from harness import make_message, unique_name

pytestmark = pytest.mark.timeout(120)

EXISTS = re.compile(rb"^\* (\d+) EXISTS\r\n$")


def select(c, box, tag="s"):
    untagged, t = c.cmd(tag, "SELECT " + box)
    assert t.startswith(tag.encode() + b" OK"), t
    n = [int(EXISTS.match(x).group(1)) for x in untagged if EXISTS.match(x)]
    assert n, untagged
    return n[-1]


def start_idle(c, tag="i"):
    c.send(tag + " IDLE\r\n")
    line = c.readline()
    assert line.startswith(b"+"), line


def wait_exists(c, above, timeout=10.0):
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        line = c.readline(timeout=max(0.01, deadline - time.monotonic()))
        seen.append(line)
        m = EXISTS.match(line)
        if m and int(m.group(1)) > above:
            return int(m.group(1)), seen


def end_idle(c, tag="i"):
    c.send("DONE\r\n")
    _, t = c.read_tagged(tag)
    assert t.startswith(tag.encode() + b" OK"), t


# Regular (non-P-IMAP) logins: IDLE is relayed to the store end to end here.
# P-IMAP sessions (login with #device) push from the journal: test_pimap_*.py.
def test_idle_inbox_lmtp_delivery(gateway, dovecot):
    with gateway.raw() as c:
        c.login("alice", "alicepw")
        n0 = select(c, "INBOX")
        start_idle(c)
        t0 = time.monotonic()
        dovecot.deliver("alice", make_message("push via lmtp"))
        n, seen = wait_exists(c, n0, timeout=10)
        assert n == n0 + 1, seen
        assert time.monotonic() - t0 < 10
        end_idle(c)
        untagged, t = c.cmd("f", "FETCH %d (BODY.PEEK[HEADER.FIELDS (SUBJECT)])" % n)
        assert t.startswith(b"f OK") and b"push via lmtp" in untagged[0], (untagged, t)


def test_idle_sees_append_from_other_gateway_connection(gateway):
    box = unique_name("idle")
    with gateway.raw() as idler, gateway.raw() as writer:
        idler.login("bob", "bobpw")
        writer.login("bob", "bobpw")
        _, t = writer.cmd("c", "CREATE " + box)
        assert t.startswith(b"c OK"), t
        n0 = select(idler, box)
        assert n0 == 0
        start_idle(idler)
        for k in range(1, 3):
            msg = make_message("append %d" % k)
            writer.send(b"a%d APPEND %s {%d+}\r\n" % (k, box.encode(), len(msg)) + msg + b"\r\n")
            _, t = writer.read_tagged("a%d" % k)
            assert t.startswith(b"a%d OK" % k), t
            n, seen = wait_exists(idler, k - 1, timeout=10)
            assert n == k, seen
        end_idle(idler)
        _, t = idler.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t
        _, t = writer.cmd("d", "DELETE " + box)


def test_idle_over_tls_and_several_devices(gateway, dovecot, tls_client_ctx):
    devices = [gateway.raw(tls_ctx=tls_client_ctx) for _ in range(3)] + [gateway.raw()
                                                                         for _ in range(3)]
    try:
        base = []
        for i, c in enumerate(devices):
            c.login("carol", "carolpw")
            base.append(select(c, "INBOX"))
            start_idle(c)
        dovecot.deliver("carol", make_message("to all devices", to="carol@example.org"))
        for i, c in enumerate(devices):
            n, seen = wait_exists(c, base[i], timeout=10)
            assert n == base[i] + 1, (i, seen)
        for c in devices:
            end_idle(c)
    finally:
        for c in devices:
            c.close()


def test_done_without_news_and_idle_again(gateway):
    with gateway.raw() as c:
        c.login("alice", "alicepw")
        select(c, "INBOX")
        for k in range(3):
            start_idle(c, "i%d" % k)
            time.sleep(0.2)
            end_idle(c, "i%d" % k)
        _, t = c.cmd("z", "LOGOUT")
        assert t.startswith(b"z OK"), t
