"""Store-initiated events (issue 5): Dovecot's push_notification Lua driver posts every
mail transaction to pimapd's intake (--store-events-listen); with --store-events push the
gateway holds no store connection for users whose devices are all away, and resumes
check with the store (the store drops pushes it cannot deliver)."""
import os
import time

import pytest

import harness
from harness import (EXISTS_RE, end_idle, make_message, ok, pimap_login, read_lines,
                     resume_parts, select_view, start_idle, store_expunge, store_flag,
                     wait_until)

pytestmark = pytest.mark.timeout(180)

PUSH_WAIT = 5.0


@pytest.fixture(scope="module")
def dovecot(push_dovecot):
    """The store of this file pushes to the intake port (overrides the shared one)."""
    return push_dovecot


def gateway(start_pimap_gateway, intake_port, mode, state_dir=None):
    extra = ["--store-events", mode, "--store-events-listen", "127.0.0.1:%d" % intake_port]
    if state_dir:
        extra += ["--state-dir", state_dir]
    return start_pimap_gateway(notification_filter="ALL", extra=extra)


def exists_counts(lines):
    return [int(EXISTS_RE.match(x).group(1)) for x in lines if EXISTS_RE.match(x)]


def test_push_mode_idle_gets_new_mail(start_pimap_gateway, dovecot, intake_port):
    gw = gateway(start_pimap_gateway, intake_port, "push")
    with gw.raw() as c:
        pimap_login(c, "alice#push1")
        view = select_view(c)
        n0 = len(view.uids)
        start_idle(c)
        dovecot.deliver("alice", make_message("pushed by the store"))
        lines, got = read_lines(c, PUSH_WAIT, until=lambda x: EXISTS_RE.match(x))
        assert got, "no EXISTS pushed in push mode: %r" % lines
        view.apply_all(lines)
        assert len(view.uids) == n0 + 1
        view.apply_all(end_idle(c))
        assert gw.metrics()["pimap_watch_connections"][None] == 0
        assert gw.metrics()["pimap_store_notifications_delivered_total"][None] >= 1


def test_push_mode_flag_and_expunge_by_another_client(start_pimap_gateway, dovecot,
                                                      intake_port):
    gw = gateway(start_pimap_gateway, intake_port, "push")
    for k in range(3):
        dovecot.deliver("bob", make_message("msg %d" % k, to="bob@example.org"))
    with gw.raw() as c:
        pimap_login(c, "bob#push2")
        view = select_view(c)
        ok(c.cmd("x", "XFILTER INBOX N ALL")[1], "x")
        start_idle(c)
        target_flag, target_gone = view.uids[-1], view.uids[0]
        store_flag(dovecot, "bob", target_flag)
        lines, got = read_lines(c, PUSH_WAIT, until=lambda x: b"FETCH" in x)
        assert got, lines
        store_expunge(dovecot, "bob", target_gone)
        more, got = read_lines(c, PUSH_WAIT, until=lambda x: b"EXPUNGE" in x)
        assert got, more
        view.apply_all(lines + more)
        view.apply_all(end_idle(c))
        view.assert_consistent_with(dovecot.uid_flags("bob"))


def test_push_mode_away_devices_hold_no_store_connection_and_resume_exactly(
        start_pimap_gateway, dovecot, intake_port):
    gw = gateway(start_pimap_gateway, intake_port, "push")
    with gw.raw() as c:
        pimap_login(c, "carol#away")
        view = select_view(c)
    # The device is gone, its session lives: the store holds nothing for carol.
    wait_until(lambda: dovecot.who("carol") == 0, 10, what="carol's store connections to close")
    assert gw.metrics()["pimap_sessions"][None] >= 1
    dovecot.deliver("carol", make_message("while away", to="carol@example.org"))
    time.sleep(1.0)
    store = dovecot.uid_flags("carol")
    if len(store) >= 2:
        store_flag(dovecot, "carol", store[0][0], "\\Seen")
    store = dovecot.uid_flags("carol")
    with gw.raw() as c:
        untagged = pimap_login(c, "carol#away")
        state, folder, events = resume_parts(untagged)
        assert state == "SELECTED" and folder == "INBOX", untagged
        view.apply_all(events)
        assert view.resyncs == 0, untagged
        view.assert_consistent_with(store)


def test_both_mode_no_duplicates(start_pimap_gateway, dovecot, intake_port):
    gw = gateway(start_pimap_gateway, intake_port, "both")
    with gw.raw() as c:
        pimap_login(c, "alice#both")
        view = select_view(c)
        n0 = len(view.uids)
        start_idle(c)
        deliveries = 20
        for k in range(deliveries):
            dovecot.deliver("alice", make_message("both %d" % k))
        lines, _ = read_lines(c, PUSH_WAIT,
                              until=lambda x: EXISTS_RE.match(x) and
                              int(EXISTS_RE.match(x).group(1)) >= n0 + deliveries)
        # Let the slower source (the watch, ~0.5 s behind) catch up too.
        late, _ = read_lines(c, 2.0)
        lines += late
        counts = exists_counts(lines)
        assert counts == list(range(n0 + 1, n0 + deliveries + 1)), counts
        view.apply_all(lines)
        view.apply_all(end_idle(c))
        view.assert_consistent_with(dovecot.uid_flags("alice"))


def test_receiver_restart_loses_nothing(start_pimap_gateway, dovecot, intake_port, workdir):
    state_dir = os.path.join(workdir, "state-restart")
    gw = gateway(start_pimap_gateway, intake_port, "push", state_dir=state_dir)
    with gw.raw() as c:
        pimap_login(c, "bob#restart")
        view = select_view(c)
    gw.stop()
    # Mail arrives while the receiver is down: the store drops its pushes.
    for k in range(3):
        dovecot.deliver("bob", make_message("during restart %d" % k, to="bob@example.org"))
    gw = gateway(start_pimap_gateway, intake_port, "push", state_dir=state_dir)
    with gw.raw() as c:
        untagged = pimap_login(c, "bob#restart")
        state, folder, events = resume_parts(untagged)
        assert state == "SELECTED", untagged
        view.apply_all(events)
        assert view.resyncs == 0, untagged
        counts = exists_counts(events)
        assert len(counts) == len(set(counts)), "duplicated EXISTS: %r" % events
        view.assert_consistent_with(dovecot.uid_flags("bob"))
