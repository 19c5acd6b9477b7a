"""P-IMAP sessions across restarts: of the store (the watch reconnects and catches up, no
event lost) and of pimapd itself (filters, prefs and checkpoints kept in --state-dir)."""

import time

import pytest

import harness
from harness import (device_fetch_all, make_message, ok, pimap_login, resume_parts,
                     select_view, store_flag, untagged_kind, wait_until)

pytestmark = pytest.mark.timeout(120)

SETTLE = 3.0


def test_store_restart_watch_reconnects(start_pimap_gateway, dedicated_dovecot):
    d = dedicated_dovecot
    for k in range(2):
        d.deliver("alice", make_message("before restart %d" % k))
    gw = start_pimap_gateway(store=d.store)
    c = gw.raw()
    pimap_login(c, "alice#s1")
    view = select_view(c)
    n0 = len(view.uids)
    c.close()
    wait_until(lambda: d.who("alice") == 1, 10, interval=0.2, what="only the watch left")

    d.restart()
    # delivered while the watch is (probably) still reconnecting: CONDSTORE catch-up
    d.deliver("alice", make_message("right after restart"))
    wait_until(lambda: d.who("alice") == 1, 30, interval=0.25, what="the watch reconnected")
    # delivered once the watch is back: a live event
    d.deliver("alice", make_message("after reconnect"))
    time.sleep(SETTLE)

    with gw.raw() as c:
        untagged = pimap_login(c, "alice#s1")
        state, folder, events = resume_parts(untagged)
        assert state == "SELECTED" and folder == "INBOX", untagged
        assert not untagged_kind(untagged, "RESYNC"), "events lost over a store restart: %r" % (
            untagged,)
        view.apply_all(events)
        assert len(view.uids) == n0 + 2, untagged
        store = d.uid_flags("alice")
        view.assert_consistent_with(store)
        assert device_fetch_all(c) == store
        ok(c.cmd("z", "LOGOUT")[1], "z")


PREFS = [("PIMAP_EVENT_FILTER", "NEW"), ("PIMAP_OUTBAND_ADDRESS", "13335559999"),
         ("PIMAP_OUTBAND_CHANNEL", "SMS"), ("PIMAP_INBAND_NEW_FORMAT", "(FLAGS UID)")]


def _filters_and_prefs(c):
    untagged, t = c.cmd("g", "XFILTER INBOX B GET")
    ok(t, "g")
    filters = sorted(untagged_kind(untagged, "XFILTER"))
    untagged, t = c.cmd("p", "XGETPIMAPPREF (%s)" % " ".join(n for n, _ in PREFS))
    ok(t, "p")
    prefs = untagged_kind(untagged, "XGETPIMAPPREF")
    assert len(filters) == 2 and len(prefs) == 1, (filters, prefs)
    return filters, prefs


def test_pimapd_restart_keeps_state(start_pimap_gateway, dovecot):
    state_dir = harness.make_state_dir("pimapd-state-")
    user = "alice"
    for k in range(2):
        dovecot.deliver(user, make_message("restart %d" % k))
    gw = start_pimap_gateway(extra=["--state-dir", state_dir])
    c = gw.raw()
    pimap_login(c, "alice#k1")
    ok(c.cmd("a", "XFILTER INBOX N ALL")[1], "a")
    ok(c.cmd("b", "XFILTER INBOX V DAYSBEFORETODAY 30")[1], "b")
    for k, (name, value) in enumerate(PREFS):
        ok(c.cmd("p%d" % k, "XSETPIMAPPREF %s %s" % (name, value))[1], "p%d" % k)
    before = _filters_and_prefs(c)
    assert ("* XFILTER INBOX N ALL\r\n").encode() in before[0], before
    view = select_view(c)
    c.close()  # no LOGOUT: the session lives on
    time.sleep(0.5)
    assert gw.terminate() == 0, gw.log()

    # Only idempotent changes while pimapd is down: new mail and a flag change.
    dovecot.deliver(user, make_message("while pimapd is down"))
    store_flag(dovecot, user, view.uids[0], "\\Seen")

    gw2 = start_pimap_gateway(extra=["--state-dir", state_dir])
    time.sleep(SETTLE)
    with gw2.raw() as c:
        untagged = pimap_login(c, "alice#k1")
        state, folder, events = resume_parts(untagged)
        assert state == "SELECTED" and folder == "INBOX", "no resume after restart: %r" % (
            untagged,)
        assert not untagged_kind(untagged, "RESYNC"), (
            "RESYNC although the store still has every change: %r" % untagged)
        view.apply_all(events)
        store = dovecot.uid_flags(user)
        view.assert_consistent_with(store)
        assert device_fetch_all(c) == store
        assert _filters_and_prefs(c) == before
        ok(c.cmd("z", "LOGOUT")[1], "z")


def _lists_naming(untagged, box):
    return [x for x in untagged_kind(untagged, "LIST") if box.encode() in x]


def test_pimapd_restart_keeps_folder_events(start_pimap_gateway, dovecot):
    """A folder created while the device is away reaches it at resume although pimapd
    was killed in between; once acknowledged it is not replayed after another restart."""
    state_dir = harness.make_state_dir("pimapd-state-")
    user = "bob"
    box = harness.unique_name("away")
    gw = start_pimap_gateway(extra=["--state-dir", state_dir])
    c = gw.raw()
    pimap_login(c, user + "#f1")
    select_view(c)
    c.close()  # no LOGOUT: the session (and the user's watch) lives on
    # Only the watch is left once the pooled link idles out (--store-link-idle 1s).
    wait_until(lambda: dovecot.who(user) == 1, 15, interval=0.2, what="only the watch left")

    with dovecot.raw(user) as direct:
        ok(direct.cmd("c", "CREATE " + harness.quote(box))[1], "c")
    try:
        time.sleep(SETTLE)  # the watch hears of it (NOTIFY) and keeps it for the device
        # Killed, not stopped: the event must have been written when it arrived.
        gw.proc.kill()
        gw.proc.wait(10)
        gw.stop()

        gw2 = start_pimap_gateway(extra=["--state-dir", state_dir])
        with gw2.raw() as c:
            untagged = pimap_login(c, user + "#f1")
            state, folder, _ = resume_parts(untagged)
            assert state == "SELECTED" and folder == "INBOX", "no resume after restart: %r" % (
                untagged,)
            assert len(_lists_naming(untagged, box)) == 1, (
                "folder event lost over a restart of pimapd: %r" % untagged)
            ok(c.cmd("n", "NOOP")[1], "n")  # acknowledges it
        time.sleep(0.5)
        assert gw2.terminate() == 0, gw2.log()

        gw3 = start_pimap_gateway(extra=["--state-dir", state_dir])
        with gw3.raw() as c:
            untagged = pimap_login(c, user + "#f1")
            assert resume_parts(untagged)[0] == "SELECTED", untagged
            assert not _lists_naming(untagged, box), (
                "acknowledged folder event replayed after a restart: %r" % untagged)
            ok(c.cmd("z", "LOGOUT")[1], "z")
    finally:
        with dovecot.raw(user) as direct:
            direct.cmd("d", "DELETE " + harness.quote(box))
