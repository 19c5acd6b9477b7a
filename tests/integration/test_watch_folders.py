"""The per-user watch covers every personal folder, not only INBOX (--store-events notify,
the default): on its one store connection it is told of other folders' changes by NOTIFY
("* STATUS"), catches up on them with EXAMINE (QRESYNC) and goes back to INBOX. So a P-IMAP
device idling in another folder gives its pooled store link back like one in INBOX, and the
gateway pushes that folder's news from the journal: while it idles the user costs the store
exactly one connection (`doveadm who`), once --store-link-idle (1s here) has passed.

Every test uses its own user (or a dedicated store) and unique mailbox names, so the store's
connection counts are its own.
"""

import glob
import os
import re
import time
import uuid

import pytest

import harness
from harness import (EXISTS_RE, EXPUNGE_RE, append, device_fetch_all, end_idle, make_message,
                     ok, parse_fetch, pimap_login, quote, read_lines, select_view, start_idle,
                     unique_name, wait_until, wait_who)

pytestmark = pytest.mark.timeout(120)

PUSH_WAIT = 10.0       # one change -> the idling device (Dovecot's NOTIFY lags ~0.5-1 s)
RECONNECT_WAIT = 40.0  # the watch's back-off after a store outage, plus its catch-up


def metric(gw, name):
    return gw.metrics()[name][None]


def create_box(store, user, box, messages=0):
    """CREATE box directly on the store and APPEND `messages` messages; returns their UIDs."""
    with store.raw(user) as s:
        ok(s.cmd("c", "CREATE " + quote(box))[1], "c")
        return [append(s, box, make_message("%s #%d" % (box, k))) for k in range(messages)]


def store_flag(store, user, box, uid, flag="\\Flagged"):
    harness.store_flag(store, user, uid, flag, box=box)


def store_expunge(store, user, box, uid):
    harness.store_expunge(store, user, uid, box=box)


def exists_at_least(n):
    return lambda x: bool(EXISTS_RE.match(x)) and int(EXISTS_RE.match(x).group(1)) >= n


def fetch_with_flag(flag):
    def pred(line):
        p = parse_fetch(line)
        return p is not None and p[2] is not None and flag in p[2]
    return pred


def read_until(c, pred, what, timeout=PUSH_WAIT):
    lines, got = read_lines(c, timeout, until=pred)
    assert got, "%s: not pushed to the idling device within %.0fs: %r" % (what, timeout, lines)
    assert not [x for x in lines if x.upper().startswith(b"* BYE")], lines
    return lines


# --------------------------------------------------------------------------- 1. one folder


def test_device_idling_in_other_folder_holds_only_the_watch(start_pimap_gateway, dovecot):
    """A device idles in a folder other than INBOX: its link goes back (only the watch is
    left), and new mail, a flag change and an expunge made there by another client are all
    pushed to it in IDLE without borrowing a store link."""
    user, box = "alice", unique_name("Work")
    create_box(dovecot, user, box, messages=2)
    gw = start_pimap_gateway(notification_filter="ALL")
    with gw.raw() as c:
        pimap_login(c, "alice#folders1")
        # The watch starts with the user's first login and lists every folder; a device
        # that starts IDLE in a folder the watch has no baseline of yet keeps its link
        # for that IDLE, so give the watch a moment.
        time.sleep(1.0)
        view = select_view(c, box)
        n0 = len(view.uids)
        assert n0 == 2, view.uids
        start_idle(c)

        wait_who(dovecot, user, 1, what="only the watch for a device idling in %s" % box)
        m = gw.metrics()
        assert m["pimap_store_links_open"][None] == 0, m["pimap_store_links_open"]
        assert m["pimap_watch_connections"][None] == 1, m["pimap_watch_connections"]
        borrows = metric(gw, "pimap_store_link_borrows_total")

        # New mail in the folder (APPEND by a client talking to the store directly).
        new_uid = dovecot.append(user, box, make_message("into the other folder"))
        lines = read_until(c, exists_at_least(n0 + 1), "new mail in %s" % box)
        assert [int(EXISTS_RE.match(x).group(1)) for x in lines if EXISTS_RE.match(x)] == [
            n0 + 1], lines
        view.apply_all(lines)

        # A flag change there.
        store_flag(dovecot, user, box, new_uid, "\\Flagged")
        lines = read_until(c, fetch_with_flag("\\Flagged"), "\\Flagged set in %s" % box)
        view.apply_all(lines)
        assert view.uids[-1] == new_uid, (view.uids, lines)

        # An expunge there.
        first = view.uids[0]
        store_expunge(dovecot, user, box, first)
        lines = read_until(c, lambda x: bool(EXPUNGE_RE.match(x)), "expunge in %s" % box)
        assert [x for x in lines if EXPUNGE_RE.match(x)] == [b"* 1 EXPUNGE\r\n"], lines
        view.apply_all(lines)

        assert metric(gw, "pimap_store_link_borrows_total") == borrows, (
            "the pushes in IDLE borrowed a store link: the watch did not cover %s" % box)
        wait_who(dovecot, user, 1, what="still only the watch after three pushes")

        view.apply_all(end_idle(c))
        store = dovecot.uid_flags(user, box)
        assert len(store) == n0, store
        view.assert_consistent_with(store)
        assert device_fetch_all(c) == store
        ok(c.cmd("z", "LOGOUT")[1], "z")


# --------------------------------------------------------------------------- 2. several folders


def test_changes_in_several_folders_and_inbox_reach_every_device(start_pimap_gateway, dovecot):
    """Three devices of one user idle in two other folders and INBOX; news arrives in all
    three at once (twice): every device gets its own folder's, and the user still holds one
    store connection. A folder deleted right after a change does not stop the watch."""
    user = "bob"
    boxes = [unique_name("A"), unique_name("B")]
    for box in boxes:
        create_box(dovecot, user, box, messages=1)
    gone = unique_name("Gone")
    create_box(dovecot, user, gone, messages=1)
    dovecot.deliver(user, make_message("inbox filler", to="bob@example.org"))
    gw = start_pimap_gateway(notification_filter="ALL")
    folders = boxes + ["INBOX"]
    devices = [gw.raw() for _ in folders]
    try:
        for k, c in enumerate(devices):
            pimap_login(c, "bob#multi%d" % k)
        time.sleep(1.0)  # the watch's baseline (see test 1)
        views = []
        for c, box in zip(devices, folders):
            views.append(select_view(c, box))
            start_idle(c)
        wait_who(dovecot, user, 1, what="only the watch for devices in %r" % folders)
        borrows = metric(gw, "pimap_store_link_borrows_total")

        for round_ in range(2):
            # A change and the folder's deletion right after: the watch's EXAMINE of it may
            # fail; it must carry on with the others.
            if round_ == 0:
                with dovecot.raw(user) as s:
                    append(s, gone, make_message("just before the folder goes"))
                    ok(s.cmd("d", "DELETE " + quote(gone))[1], "d")
            with dovecot.raw(user) as s:
                for box in boxes:
                    append(s, box, make_message("round %d in %s" % (round_, box)))
            dovecot.deliver(user, make_message("round %d in INBOX" % round_,
                                               to="bob@example.org"))
            for k, (c, v, box) in enumerate(zip(devices, views, folders)):
                want = len(v.uids) + 1
                lines = read_until(c, exists_at_least(want),
                                   "round %d: new mail in %s (device %d)" % (round_, box, k))
                v.apply_all(lines)
                assert len(v.uids) == want, (box, lines)

        assert metric(gw, "pimap_store_link_borrows_total") == borrows
        wait_who(dovecot, user, 1, what="only the watch after two rounds")
        for c, v, box in zip(devices, views, folders):
            v.apply_all(end_idle(c))
            store = dovecot.uid_flags(user, box)
            v.assert_consistent_with(store)
            assert device_fetch_all(c) == store
    finally:
        for c in devices:
            c.close()


# --------------------------------------------------------------------------- 3. new folder


def test_folder_created_after_the_watch_started_is_covered(start_pimap_gateway, dovecot):
    """A folder created while the watch runs (NOTIFY "* LIST") gets a baseline of its own:
    a device idling there then holds no link and gets the folder's news."""
    user = "carol"
    gw = start_pimap_gateway(notification_filter="ALL")
    with gw.raw() as c:
        pimap_login(c, "carol#newbox")
        wait_who(dovecot, user, 1, what="the watch")
        box = unique_name("Later")
        # Empty: only the NOTIFY "* LIST" tells the watch about it (no "* STATUS").
        create_box(dovecot, user, box, messages=0)
        time.sleep(1.5)  # the watch's first look at the new folder
        view = select_view(c, box)
        assert view.uids == [], view.uids
        start_idle(c)
        wait_who(dovecot, user, 1, what="only the watch for a device in the new folder")
        dovecot.append(user, box, make_message("into the new folder", to="carol@example.org"))
        view.apply_all(read_until(c, exists_at_least(1), "new mail in the new folder"))
        wait_who(dovecot, user, 1)
        view.apply_all(end_idle(c))
        view.assert_consistent_with(dovecot.uid_flags(user, box))
        ok(c.cmd("z", "LOGOUT")[1], "z")


# --------------------------------------------------------------------------- 4. store restart


def _maildir(store, user, box):
    return os.path.join(store.dir, "mail", user, "Maildir", "." + box)


def _deliver_to_maildir(store, user, box, message):
    """Maildir delivery behind the store's back (it is down): a file in new/."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    d = _maildir(store, user, box)
    name = "%d.M%sP%d.pimaptest" % (time.time(), uuid.uuid4().hex[:8], os.getpid())
    tmp = os.path.join(d, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(message)
    os.chown(tmp, nobody.pw_uid, nobody.pw_gid)
    os.chmod(tmp, 0o600)
    os.rename(tmp, os.path.join(d, "new", name))


def _flag_in_maildir(store, user, box):
    """Sets \\Flagged on the folder's only message in cur/ by renaming its file."""
    files = glob.glob(os.path.join(_maildir(store, user, box), "cur", "*:2,*"))
    assert len(files) == 1, files
    base, flags = files[0].rsplit(":2,", 1)
    os.rename(files[0], base + ":2," + "".join(sorted(set(flags + "F"))))


def test_store_restart_loses_nothing_in_other_folders(start_pimap_gateway, dedicated_dovecot):
    """The store goes down while a device idles in another folder; meanwhile mail arrives
    there and a flag changes (behind the store's back, so only the watch's catch-up after
    it reconnects can see them). Both reach the device, and live news still does after."""
    d, user, box = dedicated_dovecot, "alice", unique_name("Kept")
    (first_uid,) = create_box(d, user, box, messages=1)
    gw = start_pimap_gateway(store=d.store, notification_filter="ALL")
    with gw.raw() as c:
        pimap_login(c, "alice#restart")
        time.sleep(1.0)  # the watch's baseline (see test 1)
        view = select_view(c, box)
        start_idle(c)
        wait_who(d, user, 1, what="only the watch for the idle device")

        d.stop()
        wait_until(lambda: not harness.port_is_open(d.imap_port), 10, what="store port closed")
        _deliver_to_maildir(d, user, box, make_message("while the store was down"))
        _flag_in_maildir(d, user, box)
        lines, _ = read_lines(c, 1.0)
        assert not [x for x in lines if x.upper().startswith(b"* BYE")], lines
        d.start()

        got_new = got_flag = False
        lines = []
        deadline = time.monotonic() + RECONNECT_WAIT
        while not (got_new and got_flag) and time.monotonic() < deadline:
            more, _ = read_lines(c, max(0.1, deadline - time.monotonic()),
                                 until=lambda x: exists_at_least(2)(x) or
                                 fetch_with_flag("\\Flagged")(x))
            lines += more
            got_new = got_new or any(exists_at_least(2)(x) for x in more)
            got_flag = got_flag or any(fetch_with_flag("\\Flagged")(x) for x in more)
        assert got_new, "mail delivered while the store was down was never pushed: %r" % lines
        assert got_flag, "a flag set while the store was down was never pushed: %r" % lines
        view.apply_all(lines)
        assert view.flags.get(first_uid) == frozenset(["\\Flagged"]), (view.flags, lines)

        wait_who(d, user, 1, timeout=RECONNECT_WAIT, what="the watch reconnected")
        d.append(user, box, make_message("after the watch reconnected"))
        view.apply_all(read_until(c, exists_at_least(3), "live news after the restart"))
        view.apply_all(end_idle(c))
        store = d.uid_flags(user, box)
        assert len(store) == 3, store
        view.assert_consistent_with(store)
        assert device_fetch_all(c) == store
        ok(c.cmd("z", "LOGOUT")[1], "z")


# --------------------------------------------------------------------------- 5. folder events

LIST_EVENT = re.compile(rb'^\* LIST \(([^)]*)\) (?:"[^"]*"|NIL) "?([^" ]+)"?'
                        rb'(?: \("OLDNAME" \("?([^")]+)"?\)\))?\r\n$')


def apply_folder_events(names, lines):
    """The device's folder list after the '* LIST' events among lines."""
    names = set(names)
    for line in lines:
        m = LIST_EVENT.match(line)
        if not m:
            continue
        attrs, name, old = m.group(1), m.group(2).decode(), m.group(3)
        if b"\\NonExistent" in attrs:
            names.discard(name)
        elif old is not None:
            names.discard(old.decode())
            names.add(name)
        else:
            names.add(name)
    return names


def test_quick_rename_create_delete_reach_the_device(start_pimap_gateway, dovecot):
    """Dovecot coalesces a quick RENAME + CREATE + DELETE into one mailbox event (or
    none): the watch lists the folders again on any such event and tells devices what
    the comparison shows, so a device's folder list ends up as the store's."""
    user = "carol"
    gw = start_pimap_gateway(notification_filter="ALL")
    base = unique_name("Quick")
    with dovecot.raw(user) as s:
        ok(s.cmd("c", "CREATE " + quote(base))[1], "c")
        ok(s.cmd("k", "CREATE " + quote(base + ".kid"))[1], "k")
    mine = lambda names: {n for n in names if n.startswith(base)}
    with gw.raw() as c:
        pimap_login(c, "carol#folders")
        wait_who(dovecot, user, 1, what="the watch")
        time.sleep(1.5)  # the watch's listing has both
        known = {base, base + ".kid"}
        with dovecot.raw(user) as s:
            ok(s.cmd("r", "RENAME %s %s" % (quote(base), quote(base + "New")))[1], "r")
            ok(s.cmd("o", "CREATE " + quote(base + "Other"))[1], "o")
            ok(s.cmd("d", "DELETE " + quote(base + "New.kid"))[1], "d")
        want = {base + "New", base + "Other"}
        seen = []

        def caught_up():
            untagged, t = c.cmd("n%d" % len(seen), "NOOP")
            ok(t, "n%d" % len(seen))
            seen.extend(untagged)
            return mine(apply_folder_events(known, seen)) == want
        wait_until(caught_up, PUSH_WAIT + 10, interval=0.5,
                   what="the device's folders = the store's")
        ok(c.cmd("z", "LOGOUT")[1], "z")


def test_a_parent_that_does_not_exist_is_no_folder_event(start_pimap_gateway, dovecot):
    """A folder "P.C" made without "P": Dovecot lists "P" as \\NonExistent. That is part of
    the listing, not a deletion: the watch lists once, and the idling device is told
    nothing (it was told "P" was deleted, which set off another listing, without end)."""
    user, parent = "carol", unique_name("Par")
    create_box(dovecot, user, parent + ".Child")
    gw = start_pimap_gateway(notification_filter="ALL")
    with gw.raw() as c:
        pimap_login(c, "carol#noparent")
        select_view(c, "INBOX")
        start_idle(c)
        lines, _ = read_lines(c, 3.0)
        assert not [x for x in lines if x.startswith(b"* LIST")], lines[:5]
        end_idle(c)
        ok(c.cmd("z", "LOGOUT")[1], "z")
