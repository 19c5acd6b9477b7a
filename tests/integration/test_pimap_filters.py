"""P-IMAP filters and preferences: XFILTER (view / notification, DAYSBEFORETODAY),
XSETPIMAPPREF / XGETPIMAPPREF, and push decided by the notification and event filters.

The user here is bob: messages APPENDed with old INTERNALDATEs stay in his INBOX.
"""

import datetime
import re

import pytest

from harness import (EXISTS_RE, EXPUNGE_RE, device_fetch_all, end_idle, ensure_messages,
                     make_message, ok, pimap_login, read_lines, select_view, start_idle,
                     untagged_kind)

pytestmark = pytest.mark.timeout(120)

SETTLE = 3.0
PUSH_WAIT = 10.0
USER = "bob"


def xfilter_get(c, target="INBOX", kind="B", tag="g"):
    """XFILTER target kind GET -> {(mailbox, V|N): spec}."""
    untagged, t = c.cmd(tag, "XFILTER %s %s GET" % (target, kind))
    ok(t, tag)
    out = {}
    for line in untagged_kind(untagged, "XFILTER"):
        m = re.match(rb"^\* XFILTER (\S+) ([VN]) (.*)\r\n$", line, re.I)
        assert m, line
        out[(m.group(1).decode(), m.group(2).decode().upper())] = m.group(3).decode()
    return out


def _tokens(s):
    """Top-level tokens of an IMAP list body: atoms, quoted strings, (sub lists) verbatim."""
    out, i = [], 0
    while i < len(s):
        if s[i] == " ":
            i += 1
        elif s[i] == '"':
            j = i + 1
            while s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            out.append(s[i:j + 1])
            i = j + 1
        elif s[i] == "(":
            depth, j = 0, i
            while True:
                depth += {"(": 1, ")": -1}.get(s[j], 0)
                j += 1
                if depth == 0:
                    break
            out.append(s[i:j])
            i = j
        else:
            j = i
            while j < len(s) and s[j] not in " (":
                if s[j] == "[":  # BODY[...] stays one atom
                    j = s.index("]", j)
                j += 1
            out.append(s[i:j])
            i = j
    return out


def norm(v):
    v = v.strip()
    if v.startswith('"') and v.endswith('"'):
        v = v[1:-1]
    return v.upper()


def getprefs(c, names, tag="gp", command="XGETPIMAPPREF"):
    """XGETPIMAPPREF (names) -> {NAME: value} from the one untagged line."""
    untagged, t = c.cmd(tag, "%s (%s)" % (command, " ".join(names)))
    ok(t, tag)
    lines = [x for x in untagged if x.upper().startswith(b"* XGETPIMAPPREF")]
    assert len(lines) == 1, untagged
    m = re.match(r"^\* XGETPIMAPPREFS? \((.*)\)\r\n$", lines[0].decode(), re.I)
    assert m, lines
    toks = _tokens(m.group(1))
    assert len(toks) % 2 == 0, toks
    return {toks[i].upper(): toks[i + 1] for i in range(0, len(toks), 2)}


# ----------------------------------------------------------------------------- XFILTER


def test_xfilter_set_and_get(pimap_gateway):
    with pimap_gateway.raw() as c:
        pimap_login(c, "bob#f1")
        assert xfilter_get(c) == {("INBOX", "V"): "ALL", ("INBOX", "N"): "NONE"}
        ok(c.cmd("a", "XFILTER INBOX N ALL")[1], "a")
        assert xfilter_get(c, kind="N") == {("INBOX", "N"): "ALL"}
        ok(c.cmd("b", "XFILTER INBOX V DAYSBEFORETODAY 7")[1], "b")
        assert xfilter_get(c, kind="V") == {("INBOX", "V"): "DAYSBEFORETODAY 7"}
        assert xfilter_get(c) == {("INBOX", "V"): "DAYSBEFORETODAY 7", ("INBOX", "N"): "ALL"}
        # ALL N NONE: stop all pushes to this device, INBOX included
        ok(c.cmd("c", "XFILTER ALL N NONE")[1], "c")
        assert xfilter_get(c, kind="N")[("INBOX", "N")] == "NONE"
        for k, bad in enumerate(("XFILTER INBOX X GET", "XFILTER INBOX V",
                                 "XFILTER INBOX V DAYSBEFORETODAY x")):
            _, t = c.cmd("e%d" % k, bad)
            assert t.startswith(b"e%d BAD" % k), (bad, t)
        _, t = c.cmd("z", "LOGOUT")
        ok(t, "z")


def test_filters_and_prefs_outlive_logout(pimap_gateway):
    """Filters and prefs belong to (user, device), not to the session: LOGOUT ends the
    session (the next login is a first login) but keeps them (protocol.md 3.2, 3.3)."""
    with pimap_gateway.raw() as c:
        pimap_login(c, "bob#f4")
        ok(c.cmd("a", "XFILTER INBOX V DAYSBEFORETODAY 7")[1], "a")
        ok(c.cmd("b", "XFILTER INBOX N ALL")[1], "b")
        ok(c.cmd("c", "XSETPIMAPPREF PIMAP_OUTBAND_ADDRESS 13335559999")[1], "c")
        ok(c.cmd("d", "XSETPIMAPPREF PIMAP_EVENT_FILTER NEW")[1], "d")
        ok(c.cmd("z", "LOGOUT")[1], "z")
    with pimap_gateway.raw() as c:
        untagged = pimap_login(c, "bob#f4")
        assert not untagged_kind(untagged, "SESSION"), untagged
        assert xfilter_get(c) == {("INBOX", "V"): "DAYSBEFORETODAY 7", ("INBOX", "N"): "ALL"}
        got = getprefs(c, ["PIMAP_OUTBAND_ADDRESS", "PIMAP_EVENT_FILTER"])
        assert norm(got["PIMAP_OUTBAND_ADDRESS"]) == "13335559999", got
        assert norm(got["PIMAP_EVENT_FILTER"]) == "NEW", got
    with pimap_gateway.raw() as c:  # another device of the same user has the defaults
        pimap_login(c, "bob#f4other")
        assert xfilter_get(c) == {("INBOX", "V"): "ALL", ("INBOX", "N"): "NONE"}
        got = getprefs(c, ["PIMAP_OUTBAND_ADDRESS", "PIMAP_EVENT_FILTER"])
        assert norm(got["PIMAP_EVENT_FILTER"]) == "ALL", got


def test_xfilter_aliases(pimap_gateway):
    """R03 spellings: P for N, NOT ALL for NONE."""
    with pimap_gateway.raw() as c:
        pimap_login(c, "bob#f1alias")
        ok(c.cmd("a", "XFILTER INBOX P ALL")[1], "a")
        assert xfilter_get(c, kind="N") == {("INBOX", "N"): "ALL"}
        ok(c.cmd("b", "XFILTER INBOX N NOT ALL")[1], "b")
        assert xfilter_get(c, kind="N")[("INBOX", "N")] in ("NONE", "NOT ALL")


def append_aged(dovecot, days):
    now = datetime.datetime.now(datetime.timezone.utc)
    uid = dovecot.append(USER, "INBOX", make_message("%d days old" % days, to="bob@example.org"),
                         date=now - datetime.timedelta(days=days))
    assert uid  # Dovecot has UIDPLUS
    return uid


def test_view_filter_days_before_today(pimap_gateway, dovecot):
    """The view filter set before SELECT: SELECT, FETCH, SEARCH and EXPUNGE all number the
    filtered view consistently with its UIDs."""
    ensure_messages(dovecot, USER, 1)
    old = append_aged(dovecot, 30)
    recent = append_aged(dovecot, 2)
    with pimap_gateway.raw() as c:
        pimap_login(c, "bob#f2")
        ok(c.cmd("x", "XFILTER INBOX V DAYSBEFORETODAY 7")[1], "x")
        store = dovecot.uid_flags(USER)
        # every message of bob's INBOX is recent except the 30-day-old ones APPENDed here
        hidden = {u for u, _ in store if u == old or u in OLD_UIDS}
        expected = [(u, f) for u, f in store if u not in hidden]
        view = select_view(c)  # EXISTS and FETCH 1:* agree (checked in select_view)
        assert view.uids == [u for u, _ in expected], (view.uids, expected)
        assert device_fetch_all(c, tag="f1") == expected
        untagged, t = c.cmd("st", "STATUS INBOX (MESSAGES)")
        ok(t, "st")
        assert any(b"(MESSAGES %d)" % len(expected) in x for x in untagged), untagged

        untagged, t = c.cmd("se", "SEARCH ALL")
        ok(t, "se")
        assert search_numbers(untagged) == list(range(1, len(expected) + 1)), untagged
        # Sequence sets in SEARCH keys are the device's MSNs, not the store's.
        untagged, t = c.cmd("s1", "SEARCH 1")
        ok(t, "s1")
        assert search_numbers(untagged) == [1], untagged
        untagged, t = c.cmd("s2", "SEARCH NOT 1")
        ok(t, "s2")
        assert search_numbers(untagged) == list(range(2, len(expected) + 1)), untagged
        untagged, t = c.cmd("su", "UID SEARCH ALL")
        ok(t, "su")
        assert search_numbers(untagged) == [u for u, _ in expected], untagged
        msn = [u for u, _ in expected].index(recent) + 1
        untagged, t = c.cmd("sm", "SEARCH UID %d" % recent)
        ok(t, "sm")
        assert search_numbers(untagged) == [msn], untagged
        untagged, t = c.cmd("so", "UID SEARCH UID %d" % old)
        ok(t, "so")
        assert search_numbers(untagged) == [], "hidden message found: %r" % untagged

        # EXPUNGE numbering: the recent message by its MSN in the filtered view
        _, t = c.cmd("d", "STORE %d +FLAGS.SILENT (\\Deleted)" % msn)
        ok(t, "d")
        untagged, t = c.cmd("e", "EXPUNGE")
        ok(t, "e")
        assert [x for x in untagged if EXPUNGE_RE.match(x)] == [b"* %d EXPUNGE\r\n" % msn], untagged
        store = dovecot.uid_flags(USER)
        assert recent not in [u for u, _ in store]
        assert old in [u for u, _ in store]
        assert device_fetch_all(c, tag="f2") == [(u, f) for u, f in store if u not in hidden]
        ok(c.cmd("z", "LOGOUT")[1], "z")
    OLD_UIDS.add(old)


OLD_UIDS = set()  # 30-day-old messages left in bob's INBOX by earlier tests of this file


def test_view_filter_change_while_selected_resyncs(pimap_gateway, dovecot):
    """A view filter change on the selected folder: * RESYNC, * n EXISTS with the new view
    size, and the connection goes on with the filtered view."""
    ensure_messages(dovecot, USER, 1)
    old = append_aged(dovecot, 30)
    recent = append_aged(dovecot, 2)
    with pimap_gateway.raw() as c:
        pimap_login(c, "bob#f2b")
        full = select_view(c)
        assert old in full.uids and recent in full.uids
        untagged, t = c.cmd("x", "XFILTER INBOX V DAYSBEFORETODAY 7")
        ok(t, "x")
        store = dovecot.uid_flags(USER)
        hidden = {u for u, _ in store if u == old or u in OLD_UIDS}
        expected = [(u, f) for u, f in store if u not in hidden]
        assert untagged_kind(untagged, "RESYNC"), untagged
        sizes = [int(EXISTS_RE.match(x).group(1)) for x in untagged if EXISTS_RE.match(x)]
        assert sizes and sizes[-1] == len(expected), (untagged, len(expected))
        _, t = c.cmd("n", "NOOP", timeout=10)
        ok(t, "n")
        assert device_fetch_all(c, tag="f1") == expected
        untagged, t = c.cmd("se", "SEARCH ALL")
        ok(t, "se")
        assert search_numbers(untagged) == list(range(1, len(expected) + 1)), untagged
        # Sequence sets in SEARCH keys are the device's MSNs, not the store's.
        untagged, t = c.cmd("s1", "SEARCH 1")
        ok(t, "s1")
        assert search_numbers(untagged) == [1], untagged
        untagged, t = c.cmd("s2", "SEARCH NOT 1")
        ok(t, "s2")
        assert search_numbers(untagged) == list(range(2, len(expected) + 1)), untagged
        # and back: V ALL shows everything again
        untagged, t = c.cmd("y", "XFILTER INBOX V ALL")
        ok(t, "y")
        assert untagged_kind(untagged, "RESYNC"), untagged
        assert device_fetch_all(c, tag="f2") == dovecot.uid_flags(USER)
    OLD_UIDS.add(old)


def search_numbers(untagged):
    out = []
    for line in untagged:
        m = re.match(rb"^\* SEARCH ?([\d ]*)\r\n$", line, re.I)
        if m:
            out += [int(x) for x in m.group(1).split()]
    return out


# ----------------------------------------------------------------------------- prefs

PREFS = [
    ("PIMAP_OUTBAND_ADDRESS", "13335559999"),
    ("PIMAP_OUTBAND_CHANNEL", "SMS"),
    ("PIMAP_INBAND_NEW_FORMAT", "(FLAGS INTERNALDATE BODY.PEEK[HEADER])"),
    ("PIMAP_OUTBAND_NEW_FORMAT", "ALL"),
    ("PIMAP_EVENT_FILTER", "NEW"),
]


def test_prefs_round_trip(pimap_gateway):
    names = [n for n, _ in PREFS]
    with pimap_gateway.raw() as c:
        pimap_login(c, "bob#f3")
        before = getprefs(c, names)
        assert set(before) == set(names), before
        assert norm(before["PIMAP_EVENT_FILTER"]) == "ALL", before  # R01 default
        for k, (name, value) in enumerate(PREFS):
            ok(c.cmd("p%d" % k, "XSETPIMAPPREF %s %s" % (name, value))[1], "p%d" % k)
            got = getprefs(c, [name], tag="q%d" % k)
            assert list(got) == [name] and norm(got[name]) == norm(value), (name, value, got)
        got = getprefs(c, names, tag="all")
        assert {k: norm(v) for k, v in got.items()} == {n: norm(v) for n, v in PREFS}, got
        got = getprefs(c, ["PIMAP_OUTBAND_CHANNEL"], tag="al", command="XGETPIMAPPREFS")
        assert norm(got["PIMAP_OUTBAND_CHANNEL"]) == "SMS", got

        ok(c.cmd("r", "XSETPIMAPPREF PIMAP_INBAND_NEW_FORMAT NONE")[1], "r")
        assert norm(getprefs(c, ["PIMAP_INBAND_NEW_FORMAT"])["PIMAP_INBAND_NEW_FORMAT"]) == "NONE"

        _, t = c.cmd("u1", "XSETPIMAPPREF PIMAP_NO_SUCH_PREF 1")
        assert t.startswith(b"u1 BAD"), t
        _, t = c.cmd("u2", "XGETPIMAPPREF (PIMAP_NO_SUCH_PREF)")
        assert t.startswith(b"u2 BAD"), t
        _, t = c.cmd("j", "XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL JMS")
        assert t.startswith(b"j NO"), t
        got = getprefs(c, ["PIMAP_OUTBAND_CHANNEL"], tag="j2")
        assert norm(got["PIMAP_OUTBAND_CHANNEL"]) == "SMS", "a refused value changed it: %r" % got
        ok(c.cmd("z", "LOGOUT")[1], "z")


# ----------------------------------------------------------------------------- push filters


def test_notification_filter_from_boss_with_event_filter_new(pimap_gateway, dovecot):
    ensure_messages(dovecot, USER, 1)
    with pimap_gateway.raw() as c:
        pimap_login(c, "bob#f9")
        ok(c.cmd("a", 'XFILTER INBOX N FROM "boss"')[1], "a")
        ok(c.cmd("b", "XSETPIMAPPREF PIMAP_EVENT_FILTER NEW")[1], "b")
        view = select_view(c)
        n0 = len(view.uids)
        start_idle(c)

        dovecot.deliver(USER, make_message("from the boss", sender="boss@example.org",
                                           to="bob@example.org"), sender="boss@example.org")
        lines, got = read_lines(c, PUSH_WAIT, until=lambda x: EXISTS_RE.match(x))
        assert got, "mail from boss not pushed in IDLE: %r" % lines
        view.apply_all(lines)
        assert len(view.uids) == n0 + 1, lines

        dovecot.deliver(USER, make_message("from someone else", sender="other@example.org",
                                           to="bob@example.org"), sender="other@example.org")
        lines, got = read_lines(c, SETTLE + 1, until=lambda x: EXISTS_RE.match(x))
        assert not got, "mail not matching the notification filter was pushed: %r" % lines
        view.apply_all(lines)

        # it comes with the next command (DONE's completion or the NOOP)
        lines = end_idle(c)
        more, t = c.cmd("n", "NOOP")
        ok(t, "n")
        view.apply_all(lines + more)
        assert len(view.uids) == n0 + 2, lines + more
        view.assert_consistent_with(dovecot.uid_flags(USER))
        assert device_fetch_all(c) == dovecot.uid_flags(USER)
