"""P-IMAP sessions (login user#device): in-band push in IDLE, resume after a disconnect,
RESYNC when events may be lost, LOGOUT and takeover, store connection counts.

The device's picture of its folder is replayed from what it receives (harness.DeviceView)
and compared with the store, read over a direct connection. Dovecot reports changes
about 0.5-1 s late, so changes made while no device is connected are given SETTLE
seconds to reach the gateway's watch before the device logs in again.
"""

import socket
import subprocess
import time

import pytest

from harness import (EXISTS_RE, EXPUNGE_RE, device_fetch_all, end_idle, ensure_messages,
                     make_message, ok, parse_fetch, pimap_login, read_lines, resume_parts,
                     select_view, start_idle, store_expunge, store_flag, untagged_kind,
                     wait_until)

pytestmark = pytest.mark.timeout(120)

SETTLE = 3.0    # store change -> gateway watch, with margin
PUSH_WAIT = 10.0  # upper bound for one pushed event


def assert_resync_or_exact(view, events, store, untagged):
    """After a resume: either RESYNC (then the EXISTS is the fresh view size) or an exact
    replay that leaves the device consistent with the store."""
    view.apply_all(events)
    print("resume response: %r" % untagged)
    if view.resyncs:
        after = events[max(i for i, x in enumerate(events) if x.strip().upper() == b"* RESYNC"):]
        sizes = [int(EXISTS_RE.match(x).group(1)) for x in after if EXISTS_RE.match(x)]
        assert sizes, "RESYNC without a following EXISTS: %r" % untagged
        assert sizes[-1] == len(store), (sizes, len(store), untagged)
    view.assert_consistent_with(store)


# ----------------------------------------------------------------------------- push


def test_idle_push_new_flag_expunge(pimap_gateway, dovecot):
    user = "alice"
    ensure_messages(dovecot, user, 3)
    with pimap_gateway.raw() as c:
        assert untagged_kind(pimap_login(c, "alice#p1"), "SESSIONID")
        _, t = c.cmd("x", "XFILTER INBOX N ALL")
        ok(t, "x")
        view = select_view(c)
        n0 = len(view.uids)
        assert n0 >= 3
        start_idle(c)

        # new mail
        dovecot.deliver(user, make_message("idle push new"))
        lines, got = read_lines(c, PUSH_WAIT, until=lambda x: EXISTS_RE.match(x))
        assert got, "no EXISTS pushed in IDLE within %.0fs: %r" % (PUSH_WAIT, lines)
        view.apply_all(lines)
        assert int(EXISTS_RE.match(lines[-1]).group(1)) == n0 + 1, lines
        assert not [x for x in lines if EXPUNGE_RE.match(x)], lines

        # a flag change by another client, on MSN 3
        target = view.uids[2]
        store_flag(dovecot, user, target)
        lines, got = read_lines(c, PUSH_WAIT,
                                until=lambda x: b"\\Flagged" in x and parse_fetch(x))
        assert got, "no FETCH with the new flag pushed in IDLE: %r" % lines
        view.apply_all(lines)
        msn, uid, flags = parse_fetch(lines[-1])
        assert msn == 3 and uid in (None, target), (target, lines)
        assert "\\Flagged" in flags, lines

        # an expunge by another client, of MSN 2
        victim = view.uids[1]
        store_expunge(dovecot, user, victim)
        lines, got = read_lines(c, PUSH_WAIT, until=lambda x: EXPUNGE_RE.match(x))
        assert got, "no EXPUNGE pushed in IDLE: %r" % lines
        view.apply_all(lines)
        assert int(EXPUNGE_RE.match(lines[-1]).group(1)) == 2, lines
        assert victim not in view.uids

        view.apply_all(end_idle(c))
        store = dovecot.uid_flags(user)
        view.assert_consistent_with(store)
        assert device_fetch_all(c) == store
        _, t = c.cmd("z", "LOGOUT")
        ok(t, "z")


def test_idle_push_inband_new_format(pimap_gateway, dovecot):
    """PIMAP_INBAND_NEW_FORMAT set: new mail in IDLE comes as EXISTS plus a FETCH of the
    requested items for that message."""
    with pimap_gateway.raw() as c:
        pimap_login(c, "alice#pfmt")
        ok(c.cmd("x", "XFILTER INBOX N ALL")[1], "x")
        ok(c.cmd("p", "XSETPIMAPPREF PIMAP_INBAND_NEW_FORMAT (UID FLAGS RFC822.SIZE)")[1], "p")
        view = select_view(c)
        n0 = len(view.uids)
        start_idle(c)
        msg = make_message("inband format")
        dovecot.deliver("alice", msg)
        lines, got = read_lines(c, PUSH_WAIT, until=lambda x: parse_fetch(x) and
                                parse_fetch(x)[0] == n0 + 1)
        assert got, "no FETCH for the new message pushed in IDLE: %r" % lines
        view.apply_all(lines)
        assert len(view.uids) == n0 + 1, lines
        store = dovecot.uid_flags("alice")
        assert lines[-1].startswith(b"* %d FETCH (" % (n0 + 1)), lines
        assert b"UID %d" % store[n0][0] in lines[-1], (store[n0], lines)
        assert b"RFC822.SIZE " in lines[-1], lines
        view.apply_all(end_idle(c))
        view.assert_consistent_with(dovecot.uid_flags("alice"))


def test_default_notification_filter_none_pushes_nothing(pimap_gateway, dovecot):
    """Default NONE (no XFILTER N): nothing pushed in IDLE; the news come with the next
    command's response (DONE's or NOOP's)."""
    with pimap_gateway.raw() as c:
        pimap_login(c, "alice#pnone")
        view = select_view(c)
        n0 = len(view.uids)
        start_idle(c)
        dovecot.deliver("alice", make_message("not pushed"))
        lines, got = read_lines(c, SETTLE + 1, until=lambda x: EXISTS_RE.match(x))
        assert not got, "EXISTS pushed although the notification filter is NONE: %r" % lines
        lines = end_idle(c)
        more, t = c.cmd("n", "NOOP")
        ok(t, "n")
        view.apply_all(lines + more)
        assert len(view.uids) == n0 + 1, lines + more
        view.assert_consistent_with(dovecot.uid_flags("alice"))


def test_idle_keepalive(start_pimap_gateway):
    """--idle-keepalive: a device idling in a P-IMAP session hears "* OK" at that
    interval (phased per device, so within one interval of entering IDLE), and the
    connection stays usable."""
    gw = start_pimap_gateway(extra=["--idle-keepalive", "1s"])
    with gw.raw() as c:
        pimap_login(c, "carol#keepalive")
        select_view(c)
        start_idle(c)
        lines, got = read_lines(c, 3.0, until=lambda x: x.startswith(b"* OK"))
        assert got, "no keepalive within 3 s of a 1 s interval: %r" % lines
        lines, got = read_lines(c, 3.0, until=lambda x: x.startswith(b"* OK"))
        assert got, "keepalive not repeated: %r" % lines
        end_idle(c)
        ok(c.cmd("n", "NOOP")[1], "n")


# ----------------------------------------------------------------------------- resume


def test_resume_selected_replays_missed_events(pimap_gateway, dovecot):
    user = "alice"
    ensure_messages(dovecot, user, 4)
    c = pimap_gateway.raw()
    pimap_login(c, "alice#p2")
    view = select_view(c)
    n0 = len(view.uids)
    c.close()  # no LOGOUT: the session lives on
    time.sleep(0.5)

    # Spaced out so that the store reports them one by one (Dovecot coalesces changes
    # within its ~1 s notification interval, and then always reports expunges first).
    dovecot.deliver(user, make_message("while away"))
    time.sleep(SETTLE / 2)
    flagged = view.uids[2]  # MSN 3 before, MSN 2 after the expunge below
    store_flag(dovecot, user, flagged, "\\Answered")
    time.sleep(SETTLE / 2)
    victim = view.uids[1]   # MSN 2
    store_expunge(dovecot, user, victim)
    time.sleep(SETTLE)

    with pimap_gateway.raw() as c:
        untagged = pimap_login(c, "alice#p2")
        state, folder, events = resume_parts(untagged)
        assert state == "SELECTED", untagged
        assert folder == "INBOX", untagged
        assert not untagged_kind(untagged, "RESYNC"), untagged
        kinds = view.apply_all(events)
        store = dovecot.uid_flags(user)
        view.assert_consistent_with(store)
        # In the order they happened. The victim's \Deleted may come as a flag
        # change of its own before its expunge when the store reports the two
        # apart (timing: Dovecot coalesces within ~1 s).
        assert kinds[0] == "exists" and kinds[-1] == "expunge" and \
            kinds[1:-1] in (["fetch"], ["fetch", "fetch"]), (
                "expected the three events in the order they happened: %r" % untagged)
        exists = [int(EXISTS_RE.match(x).group(1)) for x in events if EXISTS_RE.match(x)]
        assert exists == [n0 + 1], untagged
        assert flagged in view.flags and "\\Answered" in view.flags[flagged], untagged
        # The connection is in SELECTED state on INBOX: FETCH works without SELECT.
        assert device_fetch_all(c) == store
        _, t = c.cmd("z", "LOGOUT")
        ok(t, "z")


def test_resume_authenticated(pimap_gateway):
    c = pimap_gateway.raw()
    pimap_login(c, "alice#pauth")
    c.close()
    with pimap_gateway.raw() as c:
        untagged = pimap_login(c, "alice#pauth")
        state, folder, _ = resume_parts(untagged)
        assert state == "AUTHENTICATED" and folder is None, untagged
        assert untagged_kind(untagged, "SESSIONID"), untagged
        untagged, t = c.cmd("f", "FETCH 1 (UID)")  # not selected
        assert t.startswith(b"f BAD") or t.startswith(b"f NO"), t


def test_unacknowledged_expunge_gives_resync(pimap_gateway, dovecot):
    user = "alice"
    ensure_messages(dovecot, user, 4)
    c = pimap_gateway.raw()
    pimap_login(c, "alice#p3")
    _, t = c.cmd("x", "XFILTER INBOX N ALL")
    ok(t, "x")
    view = select_view(c)
    start_idle(c)
    victim = view.uids[1]
    store_expunge(dovecot, user, victim)
    lines, got = read_lines(c, PUSH_WAIT, until=lambda x: EXPUNGE_RE.match(x))
    assert got, "no EXPUNGE pushed in IDLE: %r" % lines
    view.apply_all(lines)  # the device did see it...
    assert victim not in view.uids
    # ...but dies before it can acknowledge it (no DONE, no further command).
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    time.sleep(0.5)
    # more change while away: a flag on the message now at MSN 2
    store_flag(dovecot, user, view.uids[1], "\\Seen")
    time.sleep(SETTLE)

    with pimap_gateway.raw() as c:
        untagged = pimap_login(c, "alice#p3")
        state, folder, events = resume_parts(untagged)
        assert state == "SELECTED" and folder == "INBOX", untagged
        store = dovecot.uid_flags(user)
        # RESYNC, or an exact rebuild; a replayed "* 2 EXPUNGE" would hit the wrong message.
        assert_resync_or_exact(view, events, store, untagged)
        assert device_fetch_all(c) == store


def test_journal_overflow_gives_resync_or_rebuild(start_pimap_gateway, dovecot):
    gw = start_pimap_gateway(extra=["--journal-limit", "3"])
    user = "alice"
    ensure_messages(dovecot, user, 2)
    c = gw.raw()
    pimap_login(c, "alice#p4")
    view = select_view(c)
    c.close()
    time.sleep(0.5)
    for k in range(6):
        dovecot.deliver(user, make_message("overflow %d" % k))
    time.sleep(SETTLE)
    with gw.raw() as c:
        untagged = pimap_login(c, "alice#p4")
        state, folder, events = resume_parts(untagged)
        assert state == "SELECTED" and folder == "INBOX", untagged
        store = dovecot.uid_flags(user)
        assert_resync_or_exact(view, events, store, untagged)
        assert device_fetch_all(c) == store


def test_uidvalidity_change_gives_resync(pimap_gateway, dovecot):
    """The store's UIDVALIDITY changed while the device was away: no rebuild is possible."""
    user = "bob"  # only this test uses bob here: his UIDVALIDITY changes
    ensure_messages(dovecot, user, 2)
    c = pimap_gateway.raw()
    pimap_login(c, "bob#p7")
    view = select_view(c)
    c.close()
    time.sleep(0.5)
    r = subprocess.run(["doveadm", "-c", dovecot.conf_path, "mailbox", "update", "-u", user,
                        "--uid-validity", str(int(time.time()) - 1000), "INBOX"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    dovecot.deliver(user, make_message("after uidvalidity change", to="bob@example.org"))
    time.sleep(SETTLE)
    with pimap_gateway.raw() as c:
        untagged = pimap_login(c, "bob#p7")
        state, folder, events = resume_parts(untagged)
        assert state == "SELECTED" and folder == "INBOX", untagged
        assert untagged_kind(untagged, "RESYNC"), untagged
        store = dovecot.uid_flags(user)
        assert_resync_or_exact(view, events, store, untagged)
        assert device_fetch_all(c) == store


# ----------------------------------------------------------------------------- session ends


def test_logout_ends_session(pimap_gateway):
    with pimap_gateway.raw() as c:
        untagged = pimap_login(c, "alice#p5")
        assert not untagged_kind(untagged, "SESSION"), untagged
        assert untagged_kind(untagged, "SESSIONID"), untagged
        select_view(c)
        _, t = c.cmd("z", "LOGOUT")
        ok(t, "z")
    with pimap_gateway.raw() as c:
        untagged = pimap_login(c, "alice#p5")
        assert not untagged_kind(untagged, "SESSION"), "LOGOUT must end the session: %r" % untagged
        assert not untagged_kind(untagged, "FOLDER"), untagged
        assert untagged_kind(untagged, "SESSIONID"), untagged
        _, t = c.cmd("z", "LOGOUT")
        ok(t, "z")


def test_second_connection_takes_over(pimap_gateway):
    with pimap_gateway.raw() as first, pimap_gateway.raw() as second:
        pimap_login(first, "alice#p6")
        untagged = pimap_login(second, "alice#p6")
        state, _, _ = resume_parts(untagged)
        assert state == "AUTHENTICATED", untagged
        rest = first.read_eof(timeout=10)
        assert b"* BYE" in rest, rest
        # the new connection works
        _, t = second.cmd("n", "NOOP")
        ok(t, "n")
        _, t = second.cmd("z", "LOGOUT")
        ok(t, "z")


def test_regular_session_refuses_pimap_commands(pimap_gateway):
    with pimap_gateway.raw() as c:
        c.login("alice", "alicepw")
        for k, cmd in enumerate(("XFILTER INBOX N ALL", "XSETPIMAPPREF PIMAP_EVENT_FILTER NEW",
                                 "XGETPIMAPPREF (PIMAP_EVENT_FILTER)")):
            untagged, t = c.cmd("r%d" % k, cmd)
            assert t.startswith(b"r%d NO [CANNOT]" % k), (cmd, t)
        _, t = c.cmd("z", "LOGOUT")
        ok(t, "z")


# ----------------------------------------------------------------------------- store cost


def test_store_connections_three_devices(pimap_gateway, dovecot):
    user = "carol"  # nobody else in this file uses carol: the store counts are ours
    ensure_messages(dovecot, user, 1)
    wait_until(lambda: dovecot.who(user) == 0, 10, what="no store connection of carol")
    devices = [pimap_gateway.raw() for _ in range(3)]
    try:
        for k, c in enumerate(devices):
            pimap_login(c, "carol#d%d" % k)
            select_view(c)
        time.sleep(1.0)  # let the watch connect
        n = dovecot.who(user)
        assert 1 <= n <= 4, "store connections for 3 connected devices: %d" % n
        # Connected devices that run no command hold no store link: once the
        # pooled link has idled out (--store-link-idle 1s) only the watch is left.
        wait_until(lambda: dovecot.who(user) == 1, 10, interval=0.2,
                   what="only the watch for 3 connected idle devices (last: %d)"
                   % dovecot.who(user))
        # A command borrows a link (one login at most), and gives it back.
        _, t = devices[0].cmd("f", "FETCH 1 (FLAGS)")
        ok(t, "f")
        assert 1 <= dovecot.who(user) <= 2
        wait_until(lambda: dovecot.who(user) == 1, 10, interval=0.2,
                   what="the borrowed link idled out")
        m = pimap_gateway.metrics()
        assert m["pimap_watch_connections"][None] == 1, m["pimap_watch_connections"]
        assert m["pimap_sessions"][None] == 3, m["pimap_sessions"]
    finally:
        for c in devices:
            c.close()
    # sessions alive, no device connected: exactly the watch
    wait_until(lambda: dovecot.who(user) == 1, 10, interval=0.2,
               what="exactly one store connection (last: %d)" % dovecot.who(user))
    time.sleep(1.0)
    assert dovecot.who(user) == 1
    m = pimap_gateway.metrics()
    assert m["pimap_watch_connections"][None] == 1, m["pimap_watch_connections"]
    assert m["pimap_sessions"][None] == 3, m["pimap_sessions"]
    # the sessions end: the watch goes too
    for k in range(3):
        with pimap_gateway.raw() as c:
            pimap_login(c, "carol#d%d" % k)
            _, t = c.cmd("z", "LOGOUT")
            ok(t, "z")
    wait_until(lambda: dovecot.who(user) == 0, 10, interval=0.2,
               what="no store connection after every session logged out")
    m = pimap_gateway.metrics()
    assert m["pimap_watch_connections"][None] == 0, m["pimap_watch_connections"]
    assert m["pimap_sessions"][None] == 0, m["pimap_sessions"]


def _hold_all_but_one_store_slot(store, user):
    """Direct logins of user until the store refuses one (its
    mail_max_userip_connections), then one closed again: one slot is left."""
    held = []
    for _ in range(64):
        try:
            c = store.raw(user)
            _, t = c.cmd("n", "NOOP")
            if not t.startswith(b"n OK"):
                c.close()
                break
        except (OSError, AssertionError, EOFError):
            break
        held.append(c)
    assert 2 <= len(held) < 64, "the store never refused a login: %d held" % len(held)
    held.pop().close()
    return held


def test_mail_before_the_watchs_first_look_is_pushed(start_pimap_gateway,
                                                     dedicated_dovecot):
    """A user's first device SELECTs INBOX and IDLEs (answered by the gateway) before
    the user's watch has looked at INBOX; mail delivered in between is in the watch's
    first look. The watch must still report it, or the device hears of it only at its
    next command. The watch is held back by taking every store slot of the user but
    the one the device's link needs."""
    store = dedicated_dovecot
    user = "alice"
    ensure_messages(store, user, 2)
    # This store only: a few connections per user and IP (the harness allows 20000).
    with open(store.conf_path, "a") as f:
        f.write("protocol imap {\n  mail_max_userip_connections = 3\n}\n")
    subprocess.run(["doveadm", "-c", store.conf_path, "reload"], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    time.sleep(0.5)  # the reload is asynchronous
    held = _hold_all_but_one_store_slot(store, user)
    try:
        # The device's link stays (its slot must not pass to the watch).
        gw = start_pimap_gateway(store=store.store, extra=["--store-link-idle", "60s"])
        with gw.raw() as c:
            pimap_login(c, "alice#early")
            _, t = c.cmd("x", "XFILTER INBOX N ALL")
            ok(t, "x")
            view = select_view(c)
            n0 = len(view.uids)
            start_idle(c)
            store.deliver(user, make_message("before the watch looked"))
            # ...and one the device holds goes, over a connection the test holds.
            victim = view.uids[0]
            _, t = held[0].cmd("s", "SELECT INBOX")
            ok(t, "s")
            _, t = held[0].cmd("e", "UID STORE %d +FLAGS.SILENT (\\Deleted)" % victim)
            ok(t, "e")
            _, t = held[0].cmd("x", "EXPUNGE")
            ok(t, "x")
            # The watch is refused by the store meanwhile: nothing can be pushed yet
            # (else this test would not test the race).
            lines, got = read_lines(c, 1.5, until=lambda x: EXISTS_RE.match(x))
            assert not got, "pushed before the watch could log in: %r" % lines
            assert "exceeded" in store.log() or "Maximum number of" in store.log()
            for h in held:
                h.close()
            held = []
            lines, got = read_lines(c, PUSH_WAIT, until=lambda x: EXISTS_RE.match(x))
            assert got, "mail from before the watch's first look not pushed: %r" % lines
            assert [x for x in lines if EXPUNGE_RE.match(x)] == [b"* 1 EXPUNGE\r\n"], lines
            assert int(EXISTS_RE.match(lines[-1]).group(1)) == n0, lines
            end_idle(c)
            assert ([uid for uid, _ in device_fetch_all(c, expect=n0)] ==
                    [uid for uid, _ in store.uid_flags(user)])
            assert victim not in [uid for uid, _ in store.uid_flags(user)]
    finally:
        for h in held:
            h.close()
