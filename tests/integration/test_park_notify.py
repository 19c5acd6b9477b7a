"""Parking stock clients that use NOTIFY (RFC 5465): the parked client hears of
other mailboxes what a direct NOTIFY client hears from Dovecot (STATUS with the
store's numbers, LIST for mailbox names), hears of its selected mailbox what its
NOTIFY asks, holds no store connection while parked, and has its NOTIFY back on
its link after DONE.

A direct client with the same NOTIFY idling on Dovecot beside the parked one is
the reference. Dovecot delays its NOTIFY and IDLE reports by about half a second
and may merge two changes into one report, so the comparison is of what each
client ends up knowing (the last STATUS numbers per mailbox, the mailbox names,
the selected mailbox's size), not of line counts.
"""

import re

import pytest

import harness
from harness import (EXISTS_RE, USERS, end_idle, ensure_messages, make_message, ok,
                     read_lines, start_idle, wait_until, wait_who)
from test_park import parked, start_gateway

pytestmark = pytest.mark.timeout(150)

EVENT_WAIT = 10.0
USER = "bob"
NOTIFY = ("NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) "
          "(personal (MessageNew MessageExpunge FlagChange MailboxName))")
STATUS_RE = re.compile(rb"^\* STATUS (\S+) \((.*)\)\r\n$")
LIST_RE = re.compile(rb"^\* LIST \(([^)]*)\) \"[^\"]*\" (\S+)")


class Knowledge:
    """What a NOTIFY client knows from the untagged lines it was sent."""

    def __init__(self):
        self.status = {}     # mailbox -> {item: value}
        self.names = {}      # mailbox -> exists (from LIST lines)
        self.exists = None
        self.lines = []

    def apply(self, lines):
        for line in lines:
            self.lines.append(line)
            m = STATUS_RE.match(line)
            if m:
                items = m.group(2).split()
                box = self.status.setdefault(m.group(1).strip(b'"'), {})
                for k, v in zip(items[::2], items[1::2]):
                    box[k] = int(v)
                continue
            m = LIST_RE.match(line)
            if m:
                self.names[m.group(2).strip(b'"')] = b"\\NonExistent" not in m.group(1)
                continue
            m = EXISTS_RE.match(line)
            if m:
                self.exists = int(m.group(1))


def prepare(c, store_side=False):
    if not store_side:
        _, t = c.cmd("L", "LOGIN %s %s" % (USER, USERS[USER]))
        ok(t, "L")
    _, t = c.cmd("l", 'LIST "" "*"')
    ok(t, "l")
    _, t = c.cmd("s", "SELECT INBOX")
    ok(t, "s")
    _, t = c.cmd("n", NOTIFY)
    ok(t, "n")


def read_until(c, know, done):
    wait_until(lambda: (know.apply(read_lines(c, 0.5)[0]), done(know))[1],
               EVENT_WAIT, what="the changes reach the client")


@pytest.mark.parametrize("mode", ["notify", "push"])
def test_parked_notify_client_hears_what_a_direct_one_hears(
        mode, request, start_pimapd):
    if mode == "push":
        store = request.getfixturevalue("push_dovecot")
        extra = ["--store-events", "push"] + request.getfixturevalue("intake_args")
    else:
        store = request.getfixturevalue("dedicated_dovecot")
        extra = ["--store-events", "notify"]
    ensure_messages(store, USER, 2)
    with store.raw(USER) as o:
        for box in ("Work", "Gone"):
            o.cmd("c", "CREATE %s" % box)
    gw = start_gateway(start_pimapd, store, *extra)
    with gw.raw() as p, store.raw(USER) as d:
        prepare(p)
        prepare(d, store_side=True)
        start_idle(p)
        start_idle(d)
        wait_until(lambda: parked(gw) == 1, 10, what="parked")
        others = 0 if mode == "push" else 1  # the user's watch
        wait_who(store, USER, 1 + others, what="the direct client (and the watch)")
        p_know, d_know = Knowledge(), Knowledge()
        inbox = len(store.uid_flags(USER))

        store.append(USER, "Work", make_message("to work", to=USER + "@example.org"))
        store.append(USER, "Work", make_message("again", to=USER + "@example.org"))
        with store.raw(USER) as o:
            _, t = o.cmd("s", "SELECT Work")
            ok(t, "s")
            _, t = o.cmd("f", "STORE 1 +FLAGS (\\Seen)")
            ok(t, "f")
            _, t = o.cmd("c", "CREATE Fresh")
            ok(t, "c")
            _, t = o.cmd("c", "DELETE Gone")
            ok(t, "c")
        store.deliver(USER, make_message("inbox news", to=USER + "@example.org"))

        def settled(k):
            work = k.status.get(b"Work", {})
            return (work.get(b"MESSAGES") == 2 and work.get(b"UNSEEN") == 1 and
                    k.names.get(b"Fresh") is True and k.names.get(b"Gone") is False and
                    k.exists == inbox + 1)

        for c, know in ((p, p_know), (d, d_know)):
            read_until(c, know, settled)
        assert p_know.status[b"Work"] == {k: v for k, v in d_know.status[b"Work"].items()
                                          if k in p_know.status[b"Work"]}, (
            p_know.lines, d_know.lines)
        assert p_know.status[b"Work"][b"UIDNEXT"] == d_know.status[b"Work"][b"UIDNEXT"]
        assert p_know.names == d_know.names, (p_know.lines, d_know.lines)
        assert parked(gw) == 1
        # The STATUS link goes back to the pool and closes after --store-link-idle:
        # nothing stays open for the parked client.
        wait_who(store, USER, 1 + others, what="the STATUS link closed")
        assert parked(gw) == 1

        end_idle(p)
        end_idle(d)
        assert parked(gw) == 0
        # Its NOTIFY is back on its link: a change now reaches it between commands.
        store.append(USER, "Work", make_message("after done", to=USER + "@example.org"))
        later = Knowledge()
        wait_until(lambda: (later.apply(p.cmd("n", "NOOP")[0]),
                            later.status.get(b"Work", {}).get(b"MESSAGES") == 3)[1],
                   EVENT_WAIT, what="the NOTIFY of the client's link reports")


def test_notify_client_without_selected_hears_its_mailbox_at_done(
        dedicated_dovecot, start_pimapd):
    """NOTIFY without "selected": during IDLE the selected mailbox is silent (as
    Dovecot does it); after DONE the client hears what happened in it."""
    store = dedicated_dovecot
    ensure_messages(store, USER, 2)
    gw = start_gateway(start_pimapd, store, "--store-events", "notify")
    with gw.raw() as p:
        _, t = p.cmd("L", "LOGIN %s %s" % (USER, USERS[USER]))
        ok(t, "L")
        untagged, t = p.cmd("s", "SELECT INBOX")
        ok(t, "s")
        n = [int(EXISTS_RE.match(x).group(1)) for x in untagged if EXISTS_RE.match(x)][-1]
        _, t = p.cmd("n", "NOTIFY SET (personal (MessageNew MessageExpunge))")
        ok(t, "n")
        start_idle(p)
        wait_until(lambda: parked(gw) == 1, 10, what="parked")
        store.deliver(USER, make_message("quiet", to=USER + "@example.org"))
        lines, _ = read_lines(p, 2.0)
        assert not any(EXISTS_RE.match(x) for x in lines), lines
        untagged = end_idle(p)
        assert b"* %d EXISTS\r\n" % (n + 1) in untagged, untagged


def test_notify_with_fetch_attributes_is_not_parked(dedicated_dovecot, start_pimapd):
    """What only the store's session can tell (FETCH attributes of new mail) keeps
    the client's link: not parked, and it hears the store's own NOTIFY."""
    store = dedicated_dovecot
    ensure_messages(store, USER, 1)
    gw = start_gateway(start_pimapd, store)
    with gw.raw() as p:
        _, t = p.cmd("L", "LOGIN %s %s" % (USER, USERS[USER]))
        ok(t, "L")
        _, t = p.cmd("s", "SELECT INBOX")
        ok(t, "s")
        _, t = p.cmd("n", "NOTIFY SET (selected (MessageNew (UID) MessageExpunge))")
        ok(t, "n")
        start_idle(p)
        read_lines(p, 3.0)
        assert parked(gw) == 0
        assert store.who(USER) == 1  # its own link, as before
        end_idle(p)
