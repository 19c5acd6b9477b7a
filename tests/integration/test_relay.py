"""Relay basics through pimapd: capabilities, the command set, and what Dovecot sees."""

import imaplib
import re

import pytest

import harness
from harness import caps_from_line, forbidden_post_auth, make_message, unique_name

pytestmark = pytest.mark.timeout(120)


def test_greeting_and_preauth_capability(gateway):
    with gateway.raw() as c:
        assert c.greeting.startswith(b"* OK [CAPABILITY "), c.greeting
        assert c.greeting.rstrip().endswith(b"pimap ready"), c.greeting
        greet_caps = caps_from_line(c.greeting)
        caps = c.capabilities()
        for cap in ("IMAP4REV1", "LITERAL-", "SASL-IR", "ID", "AUTH=PLAIN", "STARTTLS"):
            assert cap in caps, (cap, caps)
            assert cap in greet_caps, (cap, greet_caps)
        # Before login only LITERAL- (non-synchronising literals up to 4096 bytes).
        assert "LITERAL+" not in caps and "LITERAL+" not in greet_caps, caps
        # --allow-plaintext-auth: login must be advertised as possible.
        assert "LOGINDISABLED" not in caps
        assert "LOGINDISABLED" not in greet_caps
        _, t = c.cmd("z", "LOGOUT")
        assert t.startswith(b"z OK"), t


def test_postauth_capability_is_store_minus_unrelayable(gateway, dovecot):
    direct = dovecot.imap("alice")
    typ, data = direct.capability()
    assert typ == "OK"
    store_caps = set(data[0].decode().upper().split())
    direct.logout()
    assert "COMPRESS=DEFLATE" in store_caps  # the store offers it too (per hop)

    with gateway.raw() as c:
        t = c.login("alice", "alicepw")
        login_caps = caps_from_line(t)
        assert not forbidden_post_auth(login_caps), t
        caps = c.capabilities()
        assert not forbidden_post_auth(caps), caps
        expected = {x for x in store_caps if not forbidden_post_auth({x})}
        missing = expected - caps
        assert not missing, "store capabilities not passed through: %s" % sorted(missing)
        for cap in ("IMAP4REV1", "IDLE", "LITERAL+", "UIDPLUS"):
            assert cap in caps


def test_select_append_fetch_store_search_expunge(gateway, dovecot):
    box = unique_name("relay")
    bodies = [make_message("relay %d" % i, b"line one\r\nmessage %d\r\n" % i) for i in range(3)]

    m = gateway.imap("alice")
    assert m.create(box)[0] == "OK"
    for b in bodies:
        typ, data = m.append(box, None, None, b)
        assert typ == "OK", data
    typ, data = m.select(box)
    assert (typ, data) == ("OK", [b"3"]), (typ, data)

    typ, data = m.fetch("1:3", "(FLAGS BODY.PEEK[])")
    assert typ == "OK", data
    got = [part[1] for part in data if isinstance(part, tuple)]
    assert got == bodies
    for part in data:
        if isinstance(part, tuple):
            assert b"\\Seen" not in part[0], part[0]

    typ, data = m.store("2", "+FLAGS", "(\\Flagged $Pimap)")
    assert typ == "OK", data
    assert b"\\Flagged" in data[0], data
    typ, data = m.search(None, "FLAGGED")
    assert (typ, data) == ("OK", [b"2"]), (typ, data)
    typ, data = m.search(None, "SUBJECT", '"relay 1"')
    assert (typ, data) == ("OK", [b"2"]), (typ, data)
    typ, data = m.uid("SEARCH", None, "ALL")
    assert typ == "OK" and len(data[0].split()) == 3, data

    # What the store sees directly matches.
    d = dovecot.imap("alice")
    typ, data = d.select(box, readonly=True)
    assert data == [b"3"], data
    typ, data = d.fetch("2", "(FLAGS BODY.PEEK[])")
    assert b"\\Flagged" in data[0][0] and b"$Pimap" in data[0][0], data
    assert data[0][1] == bodies[1]
    d.close()

    # Expunge message 1 through the gateway.
    assert m.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
    typ, data = m.expunge()
    assert (typ, data) == ("OK", [b"1"]), (typ, data)
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    assert [p[1] for p in data if isinstance(p, tuple)] == bodies[1:]

    typ, data = d.select(box, readonly=True)
    assert data == [b"2"], data
    typ, data = d.fetch("1:*", "(BODY.PEEK[])")
    assert [p[1] for p in data if isinstance(p, tuple)] == bodies[1:]
    d.logout()

    assert m.close()[0] == "OK"
    typ, data = m.list('""', box)
    assert typ == "OK" and box.encode() in data[0], data
    assert m.delete(box)[0] == "OK"
    typ, data = m.logout()
    assert typ == "BYE", (typ, data)


def test_fetch_body_sets_seen_and_noop_status(gateway):
    box = unique_name("seen")
    m = gateway.imap("bob")
    m.create(box)
    m.append(box, None, None, make_message("seen test"))
    m.select(box)
    typ, data = m.fetch("1", "(BODY[])")
    assert typ == "OK"
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0], data
    assert m.noop()[0] == "OK"
    typ, data = m.status(box, "(MESSAGES UNSEEN)")
    assert typ == "OK" and re.search(rb"MESSAGES 1\b", data[0]) and re.search(rb"UNSEEN 0\b",
                                                                              data[0]), data
    m.close()
    m.delete(box)
    m.logout()


def test_pimap_login_form_uses_upstream_user(gateway, dovecot):
    box = unique_name("pimap")
    m = gateway.imap()
    typ, _ = m.login("alice#dev1", "alicepw")
    assert typ == "OK"
    assert m.create(box)[0] == "OK"
    m.append(box, None, None, make_message("from dev1"))
    m.logout()
    # The mailbox was made in alice's store.
    d = dovecot.imap("alice")
    typ, data = d.status(box, "(MESSAGES)")
    assert typ == "OK" and b"MESSAGES 1" in data[0], data
    d.delete(box)
    d.logout()
    # Device id with a wrong password still fails.
    m = gateway.imap()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.login("alice#dev1", "bobpw")
    m.shutdown()


def test_authenticate_plain_with_sasl_ir(gateway):
    with gateway.raw() as c:
        _, t = c.cmd("a1", "AUTHENTICATE PLAIN " + harness.sasl_plain("carol#phone", "carolpw"))
        assert t.startswith(b"a1 OK"), t
        assert not forbidden_post_auth(caps_from_line(t)), t
        untagged, t = c.cmd("a2", "SELECT INBOX")
        assert t.startswith(b"a2 OK"), t
        assert any(re.match(rb"\* \d+ EXISTS", x) for x in untagged), untagged


def test_authenticate_plain_with_continuation(gateway):
    with gateway.raw() as c:
        c.send("a1 AUTHENTICATE PLAIN\r\n")
        cont = c.readline()
        assert cont.startswith(b"+"), cont
        c.send(harness.sasl_plain("bob#tablet", "bobpw") + "\r\n")
        _, t = c.read_tagged("a1")
        assert t.startswith(b"a1 OK"), t
        _, t = c.cmd("a2", "NOOP")
        assert t.startswith(b"a2 OK"), t


def test_authenticate_plain_wrong_password(gateway):
    with gateway.raw() as c:
        _, t = c.cmd("a1", "AUTHENTICATE PLAIN " + harness.sasl_plain("bob", "nope"))
        assert t.startswith(b"a1 NO"), t
        assert b"[AUTHENTICATIONFAILED]" in t, t
        _, t = c.cmd("a2", "AUTHENTICATE PLAIN " + harness.sasl_plain("bob", "bobpw"))
        assert t.startswith(b"a2 OK"), t


def test_wrong_password_then_right_one_on_same_connection(gateway):
    with gateway.raw() as c:
        _, t = c.cmd("a1", 'LOGIN alice "not-the-password"')
        assert t.startswith(b"a1 NO [AUTHENTICATIONFAILED]"), t
        caps = c.capabilities("a2")  # still in not-authenticated state and usable
        assert "AUTH=PLAIN" in caps
        _, t = c.cmd("a3", 'LOGIN alice "alicepw"')
        assert t.startswith(b"a3 OK"), t
        _, t = c.cmd("a4", "EXAMINE INBOX")
        assert t.startswith(b"a4 OK"), t
    # imaplib view of the same thing
    m = gateway.imap()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.login("carol", "wrong")
    assert m.login("carol", "carolpw")[0] == "OK"
    assert m.select("INBOX")[0] == "OK"
    m.logout()


def test_unknown_user_fails(gateway):
    with gateway.raw() as c:
        _, t = c.cmd("a1", 'LOGIN mallory "alicepw"')
        assert t.startswith(b"a1 NO"), t
        _, t = c.cmd("a2", "NOOP")
        assert t.startswith(b"a2 OK"), t


def test_commands_before_login_are_refused(gateway):
    with gateway.raw() as c:
        _, t = c.cmd("a1", "SELECT INBOX")
        assert t.startswith(b"a1 BAD") or t.startswith(b"a1 NO"), t
        _, t = c.cmd("a2", "NOOP")
        assert t.startswith(b"a2 OK"), t


def test_literal_plus_and_sync_literal_append_raw(gateway, dovecot):
    box = unique_name("lit")
    msg1 = make_message("literal plus", b"x" * 5000 + b"\r\n")
    msg2 = make_message("sync literal", b"y" * 3000 + b"\r\n")
    with gateway.raw() as c:
        c.login("bob", "bobpw")
        _, t = c.cmd("c1", "CREATE " + box)
        assert t.startswith(b"c1 OK"), t
        # Non-synchronizing literal (LITERAL+): all in one write.
        c.send(b"p1 APPEND %s (\\Seen) {%d+}\r\n" % (box.encode(), len(msg1)) + msg1 + b"\r\n")
        _, t = c.read_tagged("p1")
        assert t.startswith(b"p1 OK"), t
        # Synchronizing literal: wait for the continuation.
        c.send(b"p2 APPEND %s {%d}\r\n" % (box.encode(), len(msg2)))
        cont = c.readline()
        assert cont.startswith(b"+"), cont
        c.send(msg2 + b"\r\n")
        _, t = c.read_tagged("p2")
        assert t.startswith(b"p2 OK"), t
        _, t = c.cmd("s1", "SELECT " + box)
        assert t.startswith(b"s1 OK"), t
        untagged, t = c.cmd("f1", "FETCH 1:2 (BODY.PEEK[])")
        assert t.startswith(b"f1 OK"), t
        assert untagged[0].endswith(msg1 + b")\r\n"), untagged[0][:200]
        assert untagged[1].endswith(msg2 + b")\r\n"), untagged[1][:200]
    d = dovecot.imap("bob")
    d.select(box, readonly=True)
    typ, data = d.fetch("1:2", "(BODY.PEEK[])")
    assert [p[1] for p in data if isinstance(p, tuple)] == [msg1, msg2]
    d.close()
    d.delete(box)
    d.logout()


def test_logout_sends_bye_and_closes(gateway):
    with gateway.raw() as c:
        c.login("carol", "carolpw")
        untagged, t = c.cmd("q", "LOGOUT")
        assert t.startswith(b"q OK"), t
        assert any(x.startswith(b"* BYE") for x in untagged), untagged
        assert c.read_eof(timeout=5) == b""


# ---- Issue 14: stock-client compatibility

def test_id_is_answered_in_every_state(gateway):
    """RFC 2971 allows ID in any state; iOS Mail sends it before login."""
    with gateway.raw() as c:
        untagged, t = c.cmd("i1", 'ID ("name" "iPhone Mail" "version" "21A329" "os" NIL)')
        assert t.startswith(b"i1 OK"), t
        assert [x for x in untagged if x.startswith(b'* ID ("name" "pimap" "version" ')], untagged
        _, t = c.cmd("i2", "ID NIL")
        assert t.startswith(b"i2 OK"), t
        c.login("alice", "alicepw")
        # After login the gateway answers, not the store (which would say Dovecot).
        untagged, t = c.cmd("i3", 'ID ("name" "Thunderbird")')
        assert t.startswith(b"i3 OK"), t
        assert [x for x in untagged if x.startswith(b'* ID ("name" "pimap"')], untagged
        assert not [x for x in untagged if b"Dovecot" in x], untagged


def test_id_limits_are_enforced(gateway):
    with gateway.raw() as c:
        pairs = " ".join('"f%d" "v"' % i for i in range(31))
        for tag, args in (("b1", "(%s)" % pairs),
                          ("b2", '("%s" "v")' % ("f" * 31)),
                          ("b3", '("name" "%s")' % ("v" * 1025)),
                          ("b4", '("name")'),
                          ("b5", '"name"')):
            _, t = c.cmd(tag, "ID " + args)
            assert t.startswith(tag.encode() + b" BAD"), t
        pairs = " ".join('"f%d" "v"' % i for i in range(30))
        _, t = c.cmd("ok", "ID (%s)" % pairs)
        assert t.startswith(b"ok OK"), t


def test_plain_session_advertises_no_pimap_commands(gateway):
    with gateway.raw() as c:
        t = c.login("bob", "bobpw")
        for caps in (caps_from_line(t), c.capabilities()):
            assert "XFILTER" not in caps and "XPIMAPPREF" not in caps, caps
            assert "XZIP" in caps and "ID" in caps, caps
        _, t = c.cmd("x", "XFILTER INBOX N ALL")
        assert t.startswith(b"x NO [CANNOT]"), t
    with gateway.raw() as c:  # a P-IMAP session offers them
        t = c.login("bob#tablet", "bobpw")
        for caps in (caps_from_line(t), c.capabilities()):
            assert "XFILTER" in caps and "XPIMAPPREF" in caps, caps


def test_literal_minus_before_login(gateway):
    with gateway.raw() as c:
        # Non-synchronising literals of up to 4096 bytes are fine before login.
        c.send(b"l1 LOGIN {5+}\r\nalice {7+}\r\nalicepw\r\n")
        _, t = c.read_tagged("l1")
        assert t.startswith(b"l1 OK"), t
    with gateway.raw() as c:
        c.send(b'i1 ID ("name" {4096+}\r\n' + b"n" * 4096 + b")\r\n")
        _, t = c.read_tagged("i1")
        assert t.startswith(b"i1 BAD"), t  # too long for ID, but taken whole
        # A larger one is refused with TOOBIG (RFC 7888); its bytes are skipped.
        c.send(b"n1 NOOP {4097+}\r\n" + b"(" * 4097 + b"\r\n")
        _, t = c.read_tagged("n1")
        assert t.startswith(b"n1 BAD [TOOBIG]"), t
        _, t = c.cmd("n2", "NOOP")
        assert t.startswith(b"n2 OK"), t
        c.login("alice", "alicepw")
