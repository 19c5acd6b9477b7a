"""Pooled store links for P-IMAP devices: a device borrows a store connection ("link")
from its shard's pool only while a command runs. Between commands, and in IDLE in a
folder an event source covers (under --store-events notify every personal folder the
watch has a baseline of, see test_watch_folders.py; every folder under push), the
gateway answers from its journal and the link goes back to the pool, where it is logged
out after --store-link-idle (1s from start_pimap_gateway). A returning device
whose password matches the last accepted one is admitted without the store checking the
password again (auth cache).
The store going away costs the devices nothing but NO [UNAVAILABLE] for commands that
need it.

Counts of the store's connections come from `doveadm who` (dovecot.who); every test uses
a user no other test of this file touches on the same store, so the counts are its own.
"""

import socket
import sys
import time

import pytest

import harness
from harness import (EXISTS_RE, device_fetch_all, end_idle, ensure_messages, make_message,
                     ok, pimap_login, read_lines, resume_parts, select_view, start_idle,
                     untagged_kind, wait_until, wait_who)

pytestmark = pytest.mark.timeout(90)

PUSH_WAIT = 10.0    # upper bound for one pushed event (Dovecot reports ~0.5-1 s late)
SETTLE = 3.0        # store change -> gateway watch, with margin


def exists_counts(lines):
    return [int(EXISTS_RE.match(x).group(1)) for x in lines if EXISTS_RE.match(x)]


def bye_lines(lines):
    return [x for x in lines if x.upper().startswith(b"* BYE")]


def metric(gw, name):
    return gw.metrics()[name][None]



def store_logins(store, user):
    """Logins of user the store has logged so far (direct, gateway links, watches)."""
    return store.log().count("Login: user=<%s>," % user)


def store_auth_failures(store, user):
    return sum(1 for line in store.log().splitlines()
               if "(auth failed" in line and "user=<%s>" % user in line)


def assert_quiet_and_alive(c, seconds, what):
    """Nothing but keepalives for `seconds`: no BYE, no EOF."""
    try:
        lines, _ = read_lines(c, seconds)
    except EOFError as e:
        raise AssertionError("%s: the device was disconnected: %s" % (what, e)) from None
    assert not bye_lines(lines), "%s: %r" % (what, lines)
    return lines


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def push_store(push_dovecot, request):
    """push_dovecot, with its log printed when the test fails (conftest prints only the
    shared store's)."""
    yield push_dovecot
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        sys.stderr.write("\n----- push dovecot log -----\n%s\n----- end -----\n"
                         % push_dovecot.log()[-20000:])


# --------------------------------------------------------------------------- 1. notify


def test_notify_idle_devices_hold_only_the_watch(start_pimap_gateway, dovecot):
    """3 devices of one user idle in INBOX (covered by the watch): once the pooled links
    idle out the store holds only the watch, and new mail still reaches every device."""
    user = "alice"
    ensure_messages(dovecot, user, 1)
    gw = start_pimap_gateway(notification_filter="ALL")
    devices = [gw.raw() for _ in range(3)]
    try:
        views = []
        for k, c in enumerate(devices):
            pimap_login(c, "%s#n%d" % (user, k))
            views.append(select_view(c))
            start_idle(c)
        n0 = len(views[0].uids)
        assert all(len(v.uids) == n0 for v in views)

        wait_who(dovecot, user, 1, what="only the watch for 3 devices in IDLE")
        m = gw.metrics()
        assert m["pimap_watch_connections"][None] == 1, m["pimap_watch_connections"]
        assert m["pimap_store_links_busy"][None] == 0, m["pimap_store_links_busy"]
        assert m["pimap_store_links_open"][None] == 0, m["pimap_store_links_open"]
        assert m["pimap_device_connections"][None] == 3, m["pimap_device_connections"]
        assert m["pimap_sessions"][None] == 3, m["pimap_sessions"]
        # It stays so: IDLE in a covered folder borrows nothing while nothing happens.
        for k, c in enumerate(devices):
            assert_quiet_and_alive(c, 0.5, "device %d in IDLE" % k)
        assert dovecot.who(user) == 1

        dovecot.deliver(user, make_message("to three idle devices"))
        for k, (c, v) in enumerate(zip(devices, views)):
            lines, got = read_lines(c, PUSH_WAIT, until=lambda x: EXISTS_RE.match(x))
            assert got, "device %d got no EXISTS in IDLE: %r" % (k, lines)
            assert not bye_lines(lines), lines
            assert exists_counts(lines) == [n0 + 1], (k, lines)
            v.apply_all(lines)
        store = dovecot.uid_flags(user)
        for k, (c, v) in enumerate(zip(devices, views)):
            v.apply_all(end_idle(c))
            v.assert_consistent_with(store)
        assert device_fetch_all(devices[0], expect=n0 + 1) == store
    finally:
        for c in devices:
            c.close()


# --------------------------------------------------------------------------- 2. push


def test_push_idle_devices_hold_no_store_connection(start_pimap_gateway, push_store,
                                                    intake_args):
    """push mode: devices in IDLE cost the store nothing; a pushed EXISTS reaches them all;
    a command borrows one link (returned and closed afterwards) and already sees the
    message the push announced."""
    d, user = push_store, "alice"
    ensure_messages(d, user, 1)
    gw = start_pimap_gateway(store=d.store, notification_filter="ALL",
                             extra=["--store-events", "push"] + intake_args)
    devices = [gw.raw() for _ in range(3)]
    try:
        views = []
        for k, c in enumerate(devices):
            pimap_login(c, "%s#push%d" % (user, k))
            views.append(select_view(c))
            start_idle(c)
        n0 = len(views[0].uids)

        wait_who(d, user, 0, what="no store connection for 3 devices in IDLE (push)")
        m = gw.metrics()
        assert m["pimap_watch_connections"][None] == 0, m["pimap_watch_connections"]
        assert m["pimap_store_links_open"][None] == 0, m["pimap_store_links_open"]
        assert m["pimap_device_connections"][None] == 3, m["pimap_device_connections"]

        d.deliver(user, make_message("pushed to three idle devices"))
        for k, (c, v) in enumerate(zip(devices, views)):
            lines, got = read_lines(c, PUSH_WAIT, until=lambda x: EXISTS_RE.match(x))
            assert got, "device %d got no EXISTS in IDLE (push): %r" % (k, lines)
            assert exists_counts(lines) == [n0 + 1], (k, lines)
            v.apply_all(lines)
        store = d.uid_flags(user)
        assert len(store) == n0 + 1, store
        assert d.who(user) == 0, "a push made the gateway open a store connection"

        borrows = metric(gw, "pimap_store_link_borrows_total")
        c, v = devices[0], views[0]
        v.apply_all(end_idle(c))
        # The message announced by the pushed EXISTS is there for the next command.
        fetched = device_fetch_all(c, tag="pf")
        assert fetched == store, ("FETCH after a pushed EXISTS %d does not show the store's "
                                  "messages" % (n0 + 1), fetched, store)
        v.assert_consistent_with(store)
        assert d.who(user) <= 1, "more than one store connection for one command"
        assert metric(gw, "pimap_store_link_borrows_total") > borrows
        wait_who(d, user, 0, what="the borrowed link closed after --store-link-idle")
        # The other two never left IDLE and are still there.
        for k in (1, 2):
            assert_quiet_and_alive(devices[k], 0.2, "device %d in IDLE" % k)
            views[k].apply_all(end_idle(devices[k]))
            views[k].assert_consistent_with(store)
    finally:
        for c in devices:
            c.close()


# --------------------------------------------------------------------------- 3. auth cache


def test_resume_through_auth_cache(start_pimap_gateway, dovecot):
    """A returning device with the accepted password is admitted by the auth cache and
    resumes with the mail it missed; a wrong password goes to the store and fails, and the
    connection stays usable."""
    user, login = "carol", "carol#cache"
    ensure_messages(dovecot, user, 1)
    gw = start_pimap_gateway(notification_filter="ALL")
    c = gw.raw()
    pimap_login(c, login)
    view = select_view(c)
    n0 = len(view.uids)
    c.close()  # no LOGOUT: the session lives on
    wait_who(dovecot, user, 1, what="only the watch while the device is away")

    dovecot.deliver(user, make_message("while away", to="carol@example.org"))
    time.sleep(SETTLE)  # the watch sees it

    m0 = gw.metrics()
    with gw.raw() as c:
        untagged = pimap_login(c, login)
        state, folder, events = resume_parts(untagged)
        assert state == "SELECTED" and folder == "INBOX", untagged
        assert exists_counts(events) == [n0 + 1], untagged
        assert untagged_kind(untagged, "SESSIONID"), untagged
        view.apply_all(events)
        m1 = gw.metrics()
        assert m1["pimap_auth_cache_hits_total"][None] >= m0["pimap_auth_cache_hits_total"][
            None] + 1, (m0["pimap_auth_cache_hits_total"], m1["pimap_auth_cache_hits_total"])
        assert m1["pimap_auth_cache_misses_total"][None] == m0["pimap_auth_cache_misses_total"][
            None], "the cached login was counted as a miss"
        store = dovecot.uid_flags(user)
        view.assert_consistent_with(store)
        assert device_fetch_all(c) == store  # the session works (this one borrows a link)

    # A wrong password is not decided by the cache: the store is asked, and refuses.
    m0 = gw.metrics()
    failures0 = store_auth_failures(dovecot, user)
    with gw.raw() as c:
        untagged, t = c.cmd("w1", "LOGIN %s %s" % (harness.quote(login),
                                                   harness.quote("not-carols-password")))
        assert t.startswith(b"w1 NO [AUTHENTICATIONFAILED]"), (untagged, t)
        m1 = gw.metrics()
        assert m1["pimap_auth_cache_hits_total"][None] == m0["pimap_auth_cache_hits_total"][
            None]
        assert m1["pimap_auth_cache_misses_total"][None] == m0["pimap_auth_cache_misses_total"][
            None] + 1
        assert m1["pimap_auth_failures_total"][None] == m0["pimap_auth_failures_total"][
            None] + 1
        wait_until(lambda: store_auth_failures(dovecot, user) == failures0 + 1, 5,
                   what="the store's log of the refused login")
        # The connection is still usable, not logged in, and accepts the right password.
        _, t = c.cmd("n1", "NOOP")
        ok(t, "n1")
        untagged, t = c.cmd("f1", "FETCH 1 (UID)")
        assert t.startswith(b"f1 BAD") or t.startswith(b"f1 NO"), t
        untagged = pimap_login(c, login, tag="L2")
        state, folder, _ = resume_parts(untagged)
        assert state == "SELECTED" and folder == "INBOX", untagged
        assert device_fetch_all(c) == dovecot.uid_flags(user)
        ok(c.cmd("z", "LOGOUT")[1], "z")


def test_cached_resume_needs_no_store_login(start_pimap_gateway, dovecot):
    """README/brief: a returning device whose password matches the last accepted one logs
    in without a store login. Resuming into INBOX (watched, journal intact) needs nothing
    from the store either, so the store sees no new connection for it."""
    user, login = "bob", "bob#quiet"
    ensure_messages(dovecot, user, 1)
    gw = start_pimap_gateway(notification_filter="ALL")
    c = gw.raw()
    pimap_login(c, login)
    select_view(c)
    c.close()
    wait_who(dovecot, user, 1, what="only the watch while the device is away")
    time.sleep(0.5)  # the pooled link's logout is in the store's log

    m0 = gw.metrics()
    logins0 = store_logins(dovecot, user)
    with gw.raw() as c:
        untagged = pimap_login(c, login)
        state, folder, _ = resume_parts(untagged)
        assert state == "SELECTED" and folder == "INBOX", untagged
        m1 = gw.metrics()
        assert m1["pimap_auth_cache_hits_total"][None] == m0["pimap_auth_cache_hits_total"][
            None] + 1, "the resume was not admitted by the auth cache"
        opens = (m0["pimap_store_link_opens_total"][None],
                 m1["pimap_store_link_opens_total"][None])
        logins = store_logins(dovecot, user) - logins0
        assert opens[0] == opens[1] and logins == 0, (
            "cached resume opened %d store link(s); the store logged %d login(s) of %s"
            % (opens[1] - opens[0], logins, user))
        ok(c.cmd("z", "LOGOUT")[1], "z")


# --------------------------------------------------------------------------- 4. store restart


def test_store_restart_under_idle_device(start_pimap_gateway, dedicated_dovecot):
    """The store restarts while a device idles in INBOX: no BYE, the watch comes back and
    pushes again, and the device's folder matches the store afterwards."""
    d, user = dedicated_dovecot, "alice"
    ensure_messages(d, user, 2)
    gw = start_pimap_gateway(store=d.store, notification_filter="ALL")
    with gw.raw() as c:
        pimap_login(c, "alice#rs")
        view = select_view(c)
        n0 = len(view.uids)
        start_idle(c)
        wait_who(d, user, 1, what="only the watch for the idle device")

        d.restart()
        lines = assert_quiet_and_alive(c, 1.0, "store restart")
        # Delivered while the watch is (probably) still reconnecting: its catch-up.
        d.deliver(user, make_message("right after the store restart"))
        wait_who(d, user, 1, timeout=30, what="the watch reconnected")
        more, got = read_lines(c, PUSH_WAIT, until=lambda x: EXISTS_RE.match(x) and int(
            EXISTS_RE.match(x).group(1)) >= n0 + 1)
        lines += more
        assert got, "the message delivered after the restart was not pushed: %r" % lines
        # Delivered once the watch is surely back: a live event.
        d.deliver(user, make_message("after the watch reconnected"))
        more, got = read_lines(c, PUSH_WAIT, until=lambda x: EXISTS_RE.match(x) and int(
            EXISTS_RE.match(x).group(1)) >= n0 + 2)
        lines += more
        assert got, "no push once the watch was back: %r" % lines
        assert not bye_lines(lines), lines
        view.apply_all(lines)
        view.apply_all(end_idle(c))
        store = d.uid_flags(user)
        assert len(store) == n0 + 2
        view.assert_consistent_with(store)
        assert [u for u, _ in device_fetch_all(c)] == [u for u, _ in store]
        ok(c.cmd("z", "LOGOUT")[1], "z")


# --------------------------------------------------------------------------- 5. store down


def test_command_while_store_down_is_unavailable(start_pimap_gateway, dedicated_dovecot):
    """A command that needs the store while it is down: tagged NO [UNAVAILABLE]; the
    device stays connected, and the same connection works once the store is back."""
    d, user = dedicated_dovecot, "alice"
    ensure_messages(d, user, 2)
    gw = start_pimap_gateway(store=d.store, notification_filter="ALL")
    with gw.raw() as c:
        pimap_login(c, "alice#down")
        select_view(c)
        wait_who(d, user, 1, what="only the watch between commands")

        d.stop()
        wait_until(lambda: not harness.port_is_open(d.imap_port), 10, what="store port closed")
        assert_quiet_and_alive(c, 0.5, "store stopped")

        t0 = time.monotonic()
        untagged, t = c.cmd("f1", "FETCH 1:* (UID FLAGS)", timeout=20)
        took = time.monotonic() - t0
        assert t.startswith(b"f1 NO [UNAVAILABLE]"), (untagged, t)
        assert not bye_lines(untagged), untagged
        assert took < 10, "NO [UNAVAILABLE] took %.1fs" % took
        # still connected, still in the session
        _, t = c.cmd("n1", "NOOP", timeout=20)
        assert t.startswith(b"n1 OK") or t.startswith(b"n1 NO [UNAVAILABLE]"), t
        # IDLE in INBOX is the gateway's own: it works without the store.
        start_idle(c, tag="i1")
        end_idle(c, tag="i1")

        # A device the gateway has never admitted cannot log in meanwhile, and its
        # connection stays usable (no auth cache involved: a store login is needed).
        with gw.raw() as other:
            _, t = other.cmd("L1", 'LOGIN "bob#newcomer" "bobpw"', timeout=20)
            assert t.startswith(b"L1 NO [UNAVAILABLE]"), t
            _, t = other.cmd("n1", "NOOP", timeout=5)
            ok(t, "n1")

            d.start()
            wait_until(lambda: harness.port_is_open(d.imap_port), 10, what="store port open")
            pimap_login(other, "bob#newcomer", tag="L2")
            ok(other.cmd("z", "LOGOUT")[1], "z")

        _, t = c.cmd("n2", "NOOP")
        ok(t, "n2")
        store = d.uid_flags(user)
        assert device_fetch_all(c, tag="f2") == store
        ok(c.cmd("z", "LOGOUT")[1], "z")


def test_cached_login_while_store_down_keeps_connection_usable(start_pimap_gateway,
                                                               dedicated_dovecot):
    """A returning device logs in while the store is down: the auth cache admits it; the
    resume may still fail with NO [UNAVAILABLE], but the connection must stay usable and
    log in once the store is back."""
    d, user, login = dedicated_dovecot, "alice", "alice#back"
    ensure_messages(d, user, 1)
    gw = start_pimap_gateway(store=d.store, notification_filter="ALL")
    c = gw.raw()
    pimap_login(c, login)
    select_view(c)
    c.close()
    wait_who(d, user, 1, what="only the watch while the device is away")

    d.stop()
    wait_until(lambda: not harness.port_is_open(d.imap_port), 10, what="store port closed")
    with gw.raw() as c:
        hits = metric(gw, "pimap_auth_cache_hits_total")
        untagged, t = c.cmd("L1", "LOGIN %s %s" % (harness.quote(login),
                                                   harness.quote(harness.USERS[user])),
                            timeout=20)
        assert metric(gw, "pimap_auth_cache_hits_total") == hits + 1
        assert t.startswith(b"L1 OK") or t.startswith(b"L1 NO [UNAVAILABLE]"), (untagged, t)
        logged_in = t.startswith(b"L1 OK")
        try:
            _, t = c.cmd("n1", "NOOP", timeout=5)
        except (socket.timeout, TimeoutError):
            raise AssertionError("NOOP unanswered for 5 s after the login's %r" % t) from None
        ok(t, "n1")

        d.start()
        wait_until(lambda: harness.port_is_open(d.imap_port), 10, what="store port open")
        if not logged_in:
            untagged = pimap_login(c, login, tag="L2")
            state, folder, _ = resume_parts(untagged)
            assert state == "SELECTED" and folder == "INBOX", untagged
        assert device_fetch_all(c) == d.uid_flags(user)
        ok(c.cmd("z", "LOGOUT")[1], "z")
