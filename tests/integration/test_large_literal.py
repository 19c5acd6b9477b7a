"""10 MB literals both ways through the relay, byte-identical."""

import base64
import hashlib
import os

import pytest

from harness import make_message, unique_name

pytestmark = pytest.mark.timeout(180)

SIZE = 10 * 1024 * 1024
# The relay's literal cap is configurable; make sure it is not what is being tested here.
LIMIT = ["--max-literal-bytes", str(64 * 1024 * 1024)]


def big_message(subject):
    raw = os.urandom(SIZE * 3 // 4)
    b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")  # 76-char lines, CRLF
    msg = make_message(subject, b64)
    assert len(msg) >= SIZE
    return msg


def test_append_and_fetch_10mb_sync_literal(start_pimapd, dovecot):
    gw = start_pimapd(extra=LIMIT)
    box = unique_name("big")
    msg = big_message("ten megabytes")
    m = gw.imap("alice")
    assert m.create(box)[0] == "OK"
    typ, data = m.append(box, None, None, msg)  # imaplib sends a synchronizing literal
    assert typ == "OK", data
    typ, data = m.select(box)
    assert data == [b"1"], data
    typ, data = m.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK"
    assert b"RFC822.SIZE %d" % len(msg) in data[0][0], data[0][0]
    got = data[0][1]
    assert len(got) == len(msg)
    assert hashlib.sha256(got).digest() == hashlib.sha256(msg).digest()
    m.logout()

    d = dovecot.imap("alice")
    d.select(box, readonly=True)
    typ, data = d.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == msg
    d.close()
    d.delete(box)
    d.logout()


def test_append_10mb_literal_plus_and_fetch_partial(start_pimapd, dovecot):
    gw = start_pimapd(extra=LIMIT)
    box = unique_name("bigp")
    msg = big_message("literal plus ten megabytes")
    with gw.raw() as c:
        c.login("bob", "bobpw")
        _, t = c.cmd("c", "CREATE " + box)
        assert t.startswith(b"c OK"), t
        c.send(b"a APPEND %s {%d+}\r\n" % (box.encode(), len(msg)) + msg + b"\r\n")
        _, t = c.read_tagged("a", timeout=60)
        assert t.startswith(b"a OK"), t
        _, t = c.cmd("s", "SELECT " + box)
        assert t.startswith(b"s OK"), t
        untagged, t = c.cmd("f", "FETCH 1 (BODY.PEEK[])", timeout=60)
        assert t.startswith(b"f OK"), t
        assert len(untagged) == 1
        head = b"* 1 FETCH (BODY[] {%d}\r\n" % len(msg)
        assert untagged[0].startswith(head), untagged[0][:100]
        assert untagged[0][len(head):-3] == msg
        assert untagged[0].endswith(b")\r\n")
        # A partial fetch from the middle.
        untagged, t = c.cmd("p", "FETCH 1 (BODY.PEEK[]<5000000.1000>)")
        assert t.startswith(b"p OK"), t
        assert untagged[0].endswith(msg[5000000:5001000] + b")\r\n")
    d = dovecot.imap("bob")
    d.select(box, readonly=True)
    typ, data = d.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == msg
    d.close()
    d.delete(box)
    d.logout()
