"""Parking stock IMAP clients (issue "Stock IMAP clients in IDLE cost the store
nothing"): a regular client (no "#device") idling in a selected mailbox for
--park-after gives its store connection back; the gateway answers its IDLE from the
user's store events and, at DONE, resynchronises a pooled link before relaying again.

Each test runs its own Dovecot (dedicated_dovecot), so `doveadm who` counts are its
own. A direct client idling on Dovecot beside the parked one is the reference: both
must see the same changes, and after DONE both must agree with the store.
"""

import imaplib
import re

import pytest

import harness
from harness import (EXISTS_RE, USERS, end_idle, ensure_messages, make_message, ok,
                     read_lines, start_idle, store_expunge, store_flag, wait_until,
                     wait_who)

pytestmark = pytest.mark.timeout(120)

PARK_AFTER = "1s"
EVENT_WAIT = 10.0   # store change -> the watch -> the parked client, with margin
USER = "bob"


def parked(gw):
    m = gw.metrics()
    return int(m["pimap_relay_parked"][None])


def start_gateway(start_pimapd, store, *extra):
    return start_pimapd(store=store.store, admin=True, shards=2,
                        extra=["--park-after", PARK_AFTER, "--store-link-idle", "1s"]
                        + list(extra))


def login_select(c, user=USER):
    _, t = c.cmd("L", "LOGIN %s %s" % (user, USERS[user]))
    ok(t, "L")
    untagged, t = c.cmd("s", "SELECT INBOX")
    ok(t, "s")
    return untagged


def fetch_all(c, tag="f"):
    """[(msn, uid, sorted flags without \\Recent)] of FETCH 1:* (UID FLAGS)."""
    untagged, t = c.cmd(tag, "FETCH 1:* (UID FLAGS)")
    ok(t, tag)
    return [(i + 1, uid, sorted(f for f in flags if f.lower() != "\\recent"))
            for i, (uid, flags) in enumerate(harness.fetch_list(untagged))]


def store_view(store, user=USER):
    return [(i + 1, uid, sorted(f for f in flags if f.lower() != "\\recent"))
            for i, (uid, flags) in enumerate(store.uid_flags(user))]


class Mailbox:
    """A client's idea of the mailbox from the untagged lines it was sent."""

    def __init__(self, n):
        self.n = n
        self.expunged = []
        self.flag_lines = []

    def apply(self, lines):
        for line in lines:
            m = EXISTS_RE.match(line)
            if m:
                self.n = int(m.group(1))
                continue
            m = re.match(rb"^\* (\d+) EXPUNGE", line)
            if m:
                self.expunged.append(int(m.group(1)))
                self.n -= 1
                continue
            if re.match(rb"^\* \d+ FETCH ", line):
                self.flag_lines.append(line)


def test_parked_client_sees_what_a_direct_client_sees(dedicated_dovecot, start_pimapd):
    store = dedicated_dovecot
    ensure_messages(store, USER, 3)
    gw = start_gateway(start_pimapd, store)
    with gw.raw() as p, store.raw(USER) as d:
        login_select(p)
        _, t = d.cmd("s", "SELECT INBOX")
        ok(t, "s")
        start_idle(p)
        start_idle(d)
        # Parked: the gateway holds the IDLE, the client's link leaves the store
        # (what is left is the direct client and the user's watch).
        wait_until(lambda: parked(gw) == 1, 10, what="parked")
        wait_who(store, USER, 2, what="the direct client and the watch")
        p_box, d_box = Mailbox(3), Mailbox(3)
        uids = [uid for uid, _ in store.uid_flags(USER)]

        store.deliver(USER, make_message("while parked",
                                                         to=USER + "@example.org"))
        store_expunge(store, USER, uids[1])            # the middle message
        store_flag(store, USER, uids[0], "\\Flagged")
        store.append(USER, "INBOX", make_message("appended", to=USER + "@example.org"))

        def settled(box):
            return box.n == 4 and box.expunged and box.flag_lines

        for c, box in ((p, p_box), (d, d_box)):
            wait_until(lambda: (box.apply(read_lines(c, 0.5)[0]), settled(box))[1],
                       EVENT_WAIT, what="the changes reach the client")
        assert p_box.n == d_box.n == 4
        assert p_box.expunged == d_box.expunged == [2]
        assert any(b"\\Flagged" in x and x.startswith(b"* 1 FETCH") for x in p_box.flag_lines)
        assert parked(gw) == 1
        assert store.who(USER) == 2  # still nothing for the parked client

        end_idle(p)
        end_idle(d)
        assert parked(gw) == 0
        want = store_view(store)
        assert fetch_all(p) == want
        assert fetch_all(d) == want


def test_imaplib_client_parks_and_carries_on(dedicated_dovecot, start_pimapd):
    store = dedicated_dovecot
    ensure_messages(store, USER, 2)
    gw = start_gateway(start_pimapd, store, "--store-events", "notify")
    m = imaplib.IMAP4(harness.HOST, gw.imap_port)
    try:
        m.login(USER, USERS[USER])
        typ, data = m.select("INBOX")
        assert typ == "OK"
        n = int(data[0])
        tag = m._new_tag().decode()
        m.send(("%s IDLE\r\n" % tag).encode())
        assert m.readline().startswith(b"+")
        wait_until(lambda: parked(gw) == 1, 10, what="parked")
        store.deliver(USER, make_message("for imaplib",
                                                         to=USER + "@example.org"))
        line = m.readline()
        assert line.strip() == b"* %d EXISTS" % (n + 1), line
        m.send(b"DONE\r\n")
        line = m.readline()
        assert line.startswith(tag.encode() + b" OK"), line
        typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
        assert typ == "OK"
        uids = [int(re.search(rb"UID (\d+)", x).group(1)) for x in data if x]
        assert uids == [uid for uid, _ in store.uid_flags(USER)]
        m.logout()
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def test_store_restart_while_parked(dedicated_dovecot, start_pimapd):
    store = dedicated_dovecot
    ensure_messages(store, USER, 2)
    gw = start_gateway(start_pimapd, store)
    with gw.raw() as p:
        login_select(p)
        start_idle(p)
        wait_until(lambda: parked(gw) == 1, 10, what="parked")
        store.restart()
        store.deliver(USER, make_message("after restart",
                                                         to=USER + "@example.org"))
        # The parked client holds no store connection: the restart costs it
        # nothing; the watch comes back and reports the new mail.
        lines, seen = read_lines(p, EVENT_WAIT, until=lambda x: EXISTS_RE.match(x))
        assert seen, lines
        assert not any(x.startswith(b"* BYE") for x in lines), lines
        end_idle(p)
        assert fetch_all(p) == store_view(store)


def test_client_dropping_while_parked_leaves_nothing(dedicated_dovecot, start_pimapd):
    store = dedicated_dovecot
    ensure_messages(store, USER, 1)
    gw = start_gateway(start_pimapd, store)
    with gw.raw() as p:
        login_select(p)
        start_idle(p)
        wait_until(lambda: parked(gw) == 1, 10, what="parked")
    wait_until(lambda: parked(gw) == 0, 10, what="unparked by the drop")
    # No session of the user left: the watch closes, the pooled link idles out.
    wait_who(store, USER, 0, what="no store connection left")
    m = gw.metrics()
    assert int(m["pimap_store_links_busy"][None]) == 0


def test_park_after_zero_never_parks(dedicated_dovecot, start_pimapd):
    store = dedicated_dovecot
    ensure_messages(store, USER, 1)
    gw = start_pimapd(store=store.store, admin=True, extra=["--park-after", "0"])
    with gw.raw() as p:
        login_select(p)
        start_idle(p)
        read_lines(p, 2.5)
        assert parked(gw) == 0
        assert store.who(USER) == 1
        end_idle(p)


def test_qresync_client_gets_vanished_and_modseqs(dedicated_dovecot, start_pimapd):
    """A QRESYNC client parks too: expunges come as VANISHED, flag changes with
    MODSEQ, and the unpark (a new login: ENABLE QRESYNC, then SELECT ... QRESYNC)
    leaves it agreeing with the store."""
    store = dedicated_dovecot
    ensure_messages(store, USER, 3)
    gw = start_gateway(start_pimapd, store)
    uids = [uid for uid, _ in store.uid_flags(USER)]
    with gw.raw() as p:
        _, t = p.cmd("L", "LOGIN %s %s" % (USER, USERS[USER]))
        ok(t, "L")
        untagged, t = p.cmd("e", "ENABLE QRESYNC")
        ok(t, "e")
        assert any(x.upper().startswith(b"* ENABLED") for x in untagged), untagged
        _, t = p.cmd("s", "SELECT INBOX")
        ok(t, "s")
        start_idle(p)
        wait_until(lambda: parked(gw) == 1, 10, what="parked")
        # Past --store-link-idle: the unpark needs a new login.
        wait_who(store, USER, 1, what="only the watch")
        store_expunge(store, USER, uids[1])
        store_flag(store, USER, uids[2], "\\Flagged")
        got = []

        def seen():
            got.extend(read_lines(p, 0.5)[0])
            return (any(x.startswith(b"* VANISHED %d" % uids[1]) for x in got) and
                    any(b"MODSEQ" in x and b"\\Flagged" in x for x in got))

        wait_until(seen, EVENT_WAIT, what="VANISHED and the flag change")
        assert not any(re.match(rb"^\* \d+ EXPUNGE", x) for x in got), got
        untagged = end_idle(p)
        assert not any(x.startswith(b"* BYE") for x in untagged), untagged
        assert fetch_all(p) == store_view(store)
        _, t = p.cmd("n", "NOOP")
        ok(t, "n")


def test_push_mode_parked_clients_hold_no_store_connection(push_dovecot, start_pimapd,
                                                          intake_args):
    """--store-events push: three parked stock clients of one user cost the store no
    connection at all; the store's push reaches each of them."""
    store, user = push_dovecot, "carol"
    ensure_messages(store, user, 2)
    gw = start_gateway(start_pimapd, store, "--store-events", "push", *intake_args)
    clients = [gw.raw() for _ in range(3)]
    try:
        counts = []
        for c in clients:
            untagged = login_select(c, user)
            counts.append([int(EXISTS_RE.match(x).group(1))
                           for x in untagged if EXISTS_RE.match(x)][-1])
            start_idle(c)
        wait_until(lambda: parked(gw) == 3, 10, what="three parked")
        wait_who(store, user, 0, what="no store connection for three parked clients")
        store.deliver(user, make_message("pushed to parked clients",
                                         to=user + "@example.org"))
        for c, n in zip(clients, counts):
            lines, got = read_lines(c, EVENT_WAIT, until=lambda x: EXISTS_RE.match(x))
            assert got, lines
            assert lines[-1].strip() == b"* %d EXISTS" % (n + 1), lines
        assert store.who(user) == 0
        for c in clients:
            end_idle(c)
            assert fetch_all(c) == store_view(store, user)
    finally:
        for c in clients:
            c.close()
