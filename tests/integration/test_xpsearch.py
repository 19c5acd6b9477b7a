"""XPSEARCH (docs/xpsearch.md): a saved search as a per-device virtual folder, against
a real Dovecot. The virtual folder is listed, selecting it shows the backing folder's
matching messages with the backing folder's UIDs and UIDVALIDITY, and new mail is pushed
to a device idling in it only when it matches."""

import re
import time

import pytest

from harness import (EXISTS_RE, device_fetch_all, end_idle, ensure_messages,
                     make_message, ok, pimap_login, quote, read_lines, start_idle,
                     store_flag, unique_name, untagged_kind)

pytestmark = pytest.mark.timeout(120)

USER = "bob"
SETTLE = 3.0
PUSH_WAIT = 10.0
UIDVALIDITY_RE = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.I)


def store_select(dovecot):
    """UIDVALIDITY and {uid: flags} of the user's INBOX as the store has them."""
    with dovecot.raw(USER) as s:
        untagged, t = s.cmd("s", "EXAMINE INBOX")
        ok(t, "s")
        validity = [UIDVALIDITY_RE.search(x).group(1) for x in untagged
                    if UIDVALIDITY_RE.search(x)]
    return int(validity[0]), dict(dovecot.uid_flags(USER))


def test_xpsearch_flagged_virtual_folder(pimap_gateway, dovecot):
    ensure_messages(dovecot, USER, 3)
    uidvalidity, before = store_select(dovecot)
    flagged_uid = sorted(before)[0]
    store_flag(dovecot, USER, flagged_uid)
    with pimap_gateway.raw() as c:
        pimap_login(c, "bob#" + unique_name("xps"))
        untagged, t = c.cmd("c", "CAPABILITY")
        ok(t, "c")
        assert b" XPSEARCH" in b"".join(untagged_kind(untagged, "CAPABILITY")), untagged
        # Push new mail in IDLE (the default notification filter is NONE); the
        # virtual folder's search still decides what the device sees.
        ok(c.cmd("n0", "XFILTER INBOX N ALL")[1], "n0")
        untagged, t = c.cmd("s0", "SELECT INBOX")
        ok(t, "s0")
        ok(c.cmd("x", "XPSEARCH Starred FLAGGED")[1], "x")
        _, t = c.cmd("x2", "XPSEARCH Starred SEEN")
        assert t.startswith(b"x2 NO"), t

        untagged, t = c.cmd("l", 'LIST "" "*"')
        ok(t, "l")
        assert any(b'"Starred"' in x for x in untagged_kind(untagged, "LIST")), untagged

        untagged, t = c.cmd("s", "SELECT Starred")
        ok(t, "s")
        got_validity = [int(UIDVALIDITY_RE.search(x).group(1)) for x in untagged
                        if UIDVALIDITY_RE.search(x)]
        assert got_validity == [uidvalidity], untagged
        store_flags = dict(dovecot.uid_flags(USER))
        flagged = sorted(u for u, f in store_flags.items() if "\\Flagged" in f)
        n = [int(EXISTS_RE.match(x).group(1)) for x in untagged if EXISTS_RE.match(x)]
        assert n == [len(flagged)], untagged
        view = device_fetch_all(c, expect=len(flagged))
        assert [u for u, _ in view] == flagged  # the backing folder's UIDs

        untagged, t = c.cmd("st", "STATUS Starred (MESSAGES)")
        ok(t, "st")
        assert untagged_kind(untagged, "STATUS") == [
            b'* STATUS "Starred" (MESSAGES %d)\r\n' % len(flagged)], untagged

        start_idle(c)
        new_uid = dovecot.append(USER, "INBOX",
                                 make_message("starred news", to="bob@example.org"),
                                 flags="\\Flagged")
        lines, got = read_lines(c, PUSH_WAIT, until=lambda x: EXISTS_RE.match(x))
        assert got, "a new flagged message was not pushed: %r" % lines
        assert lines[-1] == b"* %d EXISTS\r\n" % (len(flagged) + 1), lines

        dovecot.append(USER, "INBOX", make_message("plain news", to="bob@example.org"))
        lines, got = read_lines(c, SETTLE + 1, until=lambda x: EXISTS_RE.match(x))
        assert not got, "an unflagged message was pushed: %r" % lines
        more = end_idle(c)
        _, t = c.cmd("n", "NOOP")
        ok(t, "n")
        assert not [x for x in more if EXISTS_RE.match(x)], more

        view = device_fetch_all(c, expect=len(flagged) + 1, tag="f2")
        assert [u for u, _ in view] == flagged + [new_uid]

        # STORE acts on the backing message.
        ok(c.cmd("t", "UID STORE %d +FLAGS (\\Seen)" % new_uid)[1], "t")
        assert "\\Seen" in dict(dovecot.uid_flags(USER))[new_uid]

        ok(c.cmd("u", "UNSELECT")[1], "u")
        # Not selected: counted on a pooled link (EXAMINE of INBOX, a UID SEARCH).
        now = dict(dovecot.uid_flags(USER))
        starred = [u for u, f in now.items() if "\\Flagged" in f]
        unseen = [u for u in starred if "\\Seen" not in now[u]]
        untagged, t = c.cmd("st2", "STATUS Starred (MESSAGES UNSEEN)")
        ok(t, "st2")
        assert untagged_kind(untagged, "STATUS") == [
            b'* STATUS "Starred" (MESSAGES %d UNSEEN %d)\r\n' % (
                len(starred), len(unseen))], untagged
        ok(c.cmd("d", "DELETE Starred")[1], "d")
        untagged, t = c.cmd("l2", 'LIST "" "*"')
        ok(t, "l2")
        assert not any(b"Starred" in x for x in untagged), untagged
        ok(c.cmd("z", "LOGOUT")[1], "z")


def test_xpsearch_over_http(start_pimap_gateway, dovecot):
    """The same virtual folder through the HTTP binding: one POST creates it, lists it and
    selects it; the device sees only the flagged message, under its backing UID."""
    import harness
    from harness import quote
    from http_client import HttpClient, login_line
    ensure_messages(dovecot, USER, 3)
    _, before = store_select(dovecot)
    flagged_uid = sorted(before)[-1]
    store_flag(dovecot, USER, flagged_uid)
    flagged = sorted(u for u, f in dovecot.uid_flags(USER) if "\\Flagged" in f)
    port = harness.free_ports(1)[0]
    start_pimap_gateway(extra=["--http-listen", "%s:%d" % (harness.HOST, port)])
    harness.wait_until(lambda: harness.port_is_open(port), 5, what="http port")
    name = unique_name("Star")
    with HttpClient(port) as c:
        r = c.post(login_line("L", USER, unique_name("h")) +
                   "s0 SELECT INBOX\r\n"
                   "x XPSEARCH %s FLAGGED\r\n" % quote(name) +
                   'l LIST "" "*"\r\n'
                   "s SELECT %s\r\n" % quote(name) +
                   "f UID FETCH 1:* (UID FLAGS)\r\n")
        assert r.status == 200, r.body
        assert r.tagged("x").startswith(b"x OK"), r.body
        assert quote(name).encode() in r.body, r.body
        assert r.tagged("s").startswith(b"s OK"), r.body
        uids = sorted(int(u) for u in re.findall(rb"\* \d+ FETCH \(UID (\d+)", r.body))
        assert uids == flagged, (uids, flagged, r.body)


def backing_folder(dovecot, flagged_count, plain_count):
    """A folder of the test's own: `flagged_count` flagged messages, then
    `plain_count` unflagged ones. Returns (name, uidvalidity, flagged, plain)."""
    box = unique_name("Back")
    with dovecot.raw(USER) as s:
        ok(s.cmd("c", "CREATE " + quote(box))[1], "c")
    flagged = [dovecot.append(USER, box, make_message("f%d" % i), flags="\\Flagged")
               for i in range(flagged_count)]
    plain = [dovecot.append(USER, box, make_message("p%d" % i)) for i in range(plain_count)]
    with dovecot.raw(USER) as s:
        untagged, t = s.cmd("s", "EXAMINE " + quote(box))
        ok(t, "s")
        validity = [int(UIDVALIDITY_RE.search(x).group(1)) for x in untagged
                    if UIDVALIDITY_RE.search(x)][0]
    return box, validity, flagged, plain


def test_append_copy_move_to_a_virtual_folder_reach_its_backing_folder(pimap_gateway, dovecot):
    """Operations act on the backing messages: APPEND, COPY and MOVE to the virtual
    folder land in its backing folder, under the UIDs APPENDUID/COPYUID give."""
    box, validity, flagged, plain = backing_folder(dovecot, 1, 1)
    other = unique_name("Other")
    with dovecot.raw(USER) as s:
        ok(s.cmd("c", "CREATE " + quote(other))[1], "c")
    other_uid = dovecot.append(USER, other, make_message("from elsewhere"))
    name = unique_name("Star")
    with pimap_gateway.raw() as c:
        pimap_login(c, "bob#" + unique_name("xpa"))
        ok(c.cmd("s0", "SELECT " + quote(box))[1], "s0")
        ok(c.cmd("x", "XPSEARCH %s FLAGGED" % quote(name))[1], "x")
        ok(c.cmd("s1", "SELECT " + quote(other))[1], "s1")
        message = make_message("appended to the virtual folder")
        c.send("a APPEND %s (\\Flagged) {%d+}\r\n" % (quote(name), len(message)))
        c.send(message + b"\r\n")
        _, t = c.read_tagged("a")
        m = re.match(rb"a OK \[APPENDUID (\d+) (\d+)\]", t)
        assert m and int(m.group(1)) == validity, t
        appended = int(m.group(2))
        # A synchronising literal: the gateway says "+" and relays it as LITERAL+
        # after the rewritten (longer or shorter) mailbox name.
        c.send("a2 APPEND %s {%d}\r\n" % (quote(name), len(message)))
        assert c.readline().startswith(b"+")
        c.send(message + b"\r\n")
        _, t = c.read_tagged("a2")
        m = re.match(rb"a2 OK \[APPENDUID (\d+) (\d+)\]", t)
        assert m and int(m.group(1)) == validity, t
        _, t = c.cmd("c", "UID COPY %d %s" % (other_uid, quote(name)))
        m = re.match(rb"c OK \[COPYUID (\d+) \d+ (\d+)\]", t)
        assert m and int(m.group(1)) == validity, t
        copied = int(m.group(2))
        _, t = c.cmd("m", "UID MOVE %d %s" % (other_uid, quote(name)))
        assert t.startswith(b"m OK"), t
        ok(c.cmd("z", "LOGOUT")[1], "z")
    in_box = dict(dovecot.uid_flags(USER, box))
    assert appended in in_box and "\\Flagged" in in_box[appended], in_box
    assert copied in in_box, in_box
    assert len(in_box) == 6, in_box  # 2 + appended twice + copied + moved
    assert dovecot.uid_flags(USER, other) == []


def test_view_follows_flag_changes(pimap_gateway, dovecot):
    """A flag change that makes a message stop matching takes it out of the selected
    virtual folder (EXPUNGE to this device only; the store keeps it); one above the view
    that starts matching enters it (EXISTS), be the change the device's own STORE or
    another client's, pushed in IDLE."""
    box, validity, flagged, plain = backing_folder(dovecot, 3, 1)
    name = unique_name("Star")
    with pimap_gateway.raw() as c:
        pimap_login(c, "bob#" + unique_name("xpf"))
        ok(c.cmd("n0", "XFILTER ALL N ALL")[1], "n0")
        ok(c.cmd("s0", "SELECT " + quote(box))[1], "s0")
        ok(c.cmd("x", "XPSEARCH %s FLAGGED" % quote(name))[1], "x")
        untagged, t = c.cmd("s", "SELECT " + quote(name))
        ok(t, "s")
        assert b"* 3 EXISTS\r\n" in untagged, untagged
        # The device's own STORE: out of the view at once (a UID command).
        untagged, t = c.cmd("t", "UID STORE %d -FLAGS (\\Flagged)" % flagged[0])
        ok(t, "t")
        assert b"* 1 EXPUNGE\r\n" in untagged, untagged
        assert flagged[0] in dict(dovecot.uid_flags(USER, box))  # nothing expunged
        view = device_fetch_all(c, expect=2)
        assert [u for u, _ in view] == flagged[1:]
        # Another client's changes, pushed in IDLE.
        time.sleep(SETTLE)  # the watch covers the selected folder
        start_idle(c)
        with dovecot.raw(USER) as s:
            ok(s.cmd("s", "SELECT " + quote(box))[1], "s")
            ok(s.cmd("f", "UID STORE %d -FLAGS (\\Flagged)" % flagged[1])[1], "f")
        lines, got = read_lines(c, PUSH_WAIT, until=lambda x: x == b"* 1 EXPUNGE\r\n")
        assert got, "unflagged elsewhere: no EXPUNGE: %r" % lines
        with dovecot.raw(USER) as s:
            ok(s.cmd("s", "SELECT " + quote(box))[1], "s")
            ok(s.cmd("f", "UID STORE %d +FLAGS (\\Flagged)" % plain[0])[1], "f")
        lines, got = read_lines(c, PUSH_WAIT, until=lambda x: x == b"* 2 EXISTS\r\n")
        assert got, "flagged elsewhere: no EXISTS: %r" % lines
        end_idle(c)
        view = device_fetch_all(c, expect=2, tag="f2")
        assert [u for u, _ in view] == [flagged[2], plain[0]]
        ok(c.cmd("z", "LOGOUT")[1], "z")
    assert len(dovecot.uid_flags(USER, box)) == 4
