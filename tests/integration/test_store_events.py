"""Store-initiated events (issue 5): Dovecot's push_notification Lua driver posts every
mail transaction to pimapd's intake (--store-events-listen); with --store-events push the
gateway holds no store connection for users whose devices are all away, and resumes
check with the store (the store drops pushes it cannot deliver).

The intake's hardening (issue 14): it requires the shared secret (pimapd does not start
without one unless --store-events-insecure), and refuses a notification whose flags or
mailbox names could break a device's responses."""
import http.client
import json
import os
import re
import subprocess
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


def gateway(start_pimap_gateway, intake_args, mode, state_dir=None):
    extra = ["--store-events", mode] + intake_args
    if state_dir:
        extra += ["--state-dir", state_dir]
    return start_pimap_gateway(notification_filter="ALL", extra=extra)


def exists_counts(lines):
    return [int(EXISTS_RE.match(x).group(1)) for x in lines if EXISTS_RE.match(x)]


def test_push_mode_idle_gets_new_mail(start_pimap_gateway, dovecot, intake_args):
    gw = gateway(start_pimap_gateway, intake_args, "push")
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
                                                      intake_args):
    gw = gateway(start_pimap_gateway, intake_args, "push")
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
        start_pimap_gateway, dovecot, intake_args):
    gw = gateway(start_pimap_gateway, intake_args, "push")
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


def test_both_mode_no_duplicates(start_pimap_gateway, dovecot, intake_args):
    gw = gateway(start_pimap_gateway, intake_args, "both")
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


def test_receiver_restart_loses_nothing(start_pimap_gateway, dovecot, intake_args, workdir):
    state_dir = os.path.join(workdir, "state-restart")
    gw = gateway(start_pimap_gateway, intake_args, "push", state_dir=state_dir)
    with gw.raw() as c:
        pimap_login(c, "bob#restart")
        view = select_view(c)
    gw.stop()
    # Mail arrives while the receiver is down: the store drops its pushes.
    for k in range(3):
        dovecot.deliver("bob", make_message("during restart %d" % k, to="bob@example.org"))
    gw = gateway(start_pimap_gateway, intake_args, "push", state_dir=state_dir)
    with gw.raw() as c:
        untagged = pimap_login(c, "bob#restart")
        state, folder, events = resume_parts(untagged)
        assert state == "SELECTED", untagged
        view.apply_all(events)
        assert view.resyncs == 0, untagged
        counts = exists_counts(events)
        assert len(counts) == len(set(counts)), "duplicated EXISTS: %r" % events
        view.assert_consistent_with(dovecot.uid_flags("bob"))


def pushed_flags(lines, uid):
    """The flag sets of the FETCH lines for uid among lines, in order."""
    out = []
    for line in lines:
        p = harness.parse_fetch(line)
        if p is not None and p[1] == uid:
            out.append(set(p[2] or ()))
    return out


@pytest.mark.parametrize("had,added", [("\\Seen", "$X"), ("$X", "\\Seen")])
def test_push_mode_flag_change_tells_the_whole_flag_list(start_pimap_gateway, dovecot,
                                                          intake_args, had, added):
    """Chaos defect 3: Dovecot's FlagsClear names the old system flags only when system
    flags change and the old keywords only when keywords do. A message with \\Seen, then
    STORE +FLAGS ($X) from another client: the idling device is told (\\Seen $X), never
    ($X) alone; and the reverse."""
    gw = gateway(start_pimap_gateway, intake_args, "push")
    uid = dovecot.append("bob", "INBOX", make_message("flags", to="bob@example.org"),
                         flags=had)
    with gw.raw() as c:
        pimap_login(c, "bob#flags%d" % len(had))
        view = select_view(c)
        assert uid in view.uids
        ok(c.cmd("x", "XFILTER INBOX N ALL")[1], "x")
        start_idle(c)
        store_flag(dovecot, "bob", uid, added)
        lines, got = read_lines(c, PUSH_WAIT,
                                 lambda x: (harness.parse_fetch(x) or (0, 0))[1] == uid)
        late, _ = read_lines(c, 1.0)  # a second, wrong, line would come right after
        lines += late
        want = {"\\Seen", "$X"}
        told = pushed_flags(lines, uid)
        assert got and told and all(f == want for f in told), lines
        view.apply_all(lines)
        view.apply_all(end_idle(c))
        view.assert_consistent_with(dovecot.uid_flags("bob"))


# --------------------------------------------------------------------------- issue 14

def post(port, body, secret=None):
    """POST body (a dict, or bytes) to the intake; returns (status, answer body)."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Pimap-Secret"] = secret
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=harness.NET_TIMEOUT)
    try:
        conn.request("POST", "/dovecot", body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def idle_device(dovecot, gw, user, device):
    """A device of user in IDLE on INBOX (at least one message): (conn, uidvalidity, uids)."""
    harness.ensure_messages(dovecot, user, 1)
    c = gw.raw()
    pimap_login(c, "%s#%s" % (user, device))
    untagged, t = c.cmd("s", "SELECT INBOX")
    ok(t, "s")
    uidvalidity = next(int(m.group(1)) for m in
                       (re.search(rb"\[UIDVALIDITY (\d+)\]", x) for x in untagged) if m)
    uids = [u for u, _ in harness.device_fetch_all(c)]
    start_idle(c)
    return c, uidvalidity, uids


def flag_change(user, uidvalidity, uid, flags):
    """What Dovecot posts for UID STORE uid +FLAGS (flags) (the whole list is not in it)."""
    return {"user": user, "service": "imap", "events": [
        {"event": "FlagsClear", "mailbox": "INBOX", "uid": uid, "uidvalidity": uidvalidity,
         "flags": [], "flags_old": [], "keywords": [], "keywords_old": []},
        {"event": "FlagsSet", "mailbox": "INBOX", "uid": uid, "uidvalidity": uidvalidity,
         "flags": flags, "keywords": []}]}


def rejected(gw, reason):
    m = re.search(r'^pimap_intake_rejected_total\{reason="%s"\} (\S+)$' % reason,
                  gw.metrics_text(), re.M)
    assert m, reason
    return float(m.group(1))


def test_unauthenticated_post_is_refused_and_the_device_gets_nothing(
        start_pimap_gateway, dovecot, intake_port, intake_args, intake_secret):
    gw = gateway(start_pimap_gateway, intake_args, "push")
    c, uidvalidity, uids = idle_device(dovecot, gw, "carol", "unauth")
    try:
        change = flag_change("carol", uidvalidity, uids[0], ["\\Flagged"])
        assert post(intake_port, change)[0] == 401
        assert post(intake_port, change, secret="")[0] == 401
        assert post(intake_port, change, secret=intake_secret[0][:-1])[0] == 401
        assert post(intake_port, change, secret=intake_secret[0] + "x")[0] == 401
        lines, _ = read_lines(c, 1.5)
        assert lines == [], "an unauthenticated POST reached the device: %r" % lines
        assert gw.metrics()["pimap_store_notifications_unauthorized_total"][None] == 4
        # With the secret the same change is taken. Its whole flag list is not in it
        # (Dovecot's flags_old/keywords_old are not the whole list, chaos defect 3), so
        # the gateway asks the store: the device is told only the store's flags (which
        # it knows already), never the POST's.
        assert post(intake_port, change, secret=intake_secret[0])[0] == 204
        wait_until(lambda: gw.metrics()["pimap_store_notifications_delivered_total"][None] >= 1,
                   PUSH_WAIT, what="the authenticated POST to be delivered")
        lines, _ = read_lines(c, 1.5)
        store = dict(dovecot.uid_flags("carol"))
        for line in lines:
            p = harness.parse_fetch(line)
            assert p is None or set(p[2]) == set(store[p[1]]), (lines, store)
        end_idle(c)
    finally:
        c.close()
    assert intake_secret[0] not in gw.log()


def test_injected_flags_are_refused_and_the_idle_device_gets_nothing_malformed(
        start_pimap_gateway, dovecot, intake_port, intake_args, intake_secret):
    gw = gateway(start_pimap_gateway, intake_args, "push")
    c, uidvalidity, uids = idle_device(dovecot, gw, "carol", "inject")
    try:
        # Issue 14, as seen: the device got "* 1 FETCH (UID 1 FLAGS (\Seen \Flagged" and
        # then a separate "* 1 EXPUNGE))".
        secret = intake_secret[0]
        status, answer = post(intake_port, flag_change(
            "carol", uidvalidity, uids[0], ["\\Seen", "\\Flagged\r\n* 1 EXPUNGE)"]), secret)
        assert status == 400, (status, answer)
        assert b"not a flag" in answer and b"EXPUNGE" not in answer, answer
        for flags in (["\\Seen \\Flagged"], ["x)"], ["\\Flagged))"], ["a\"b"], ["{3}"]):
            status, _ = post(intake_port, flag_change("carol", uidvalidity, uids[0], flags),
                             secret)
            assert status == 400, flags
        # Mailbox names and the user name are checked too.
        status, _ = post(intake_port, {"user": "carol", "events": [
            {"event": "MailboxCreate", "mailbox": "Evil\r\n* BYE"}]}, secret)
        assert status == 400
        status, _ = post(intake_port, {"user": "carol\r\n", "events": []}, secret)
        assert status == 400
        lines, _ = read_lines(c, 1.5)
        assert lines == [], "a refused notification reached the device: %r" % lines
        assert rejected(gw, "bad_flag") == 6
        assert rejected(gw, "bad_mailbox") == 1
        assert rejected(gw, "bad_user") == 1
        # A real change still pushes, well-formed.
        dovecot.deliver("carol", make_message("after the injection", to="carol@example.org"))
        lines, got = read_lines(c, PUSH_WAIT, until=lambda x: EXISTS_RE.match(x))
        assert got, lines
        assert all(re.match(rb"^\* \d+ (EXISTS|RECENT|FETCH \(.*\))\r\n$", x) for x in lines), lines
        end_idle(c)
    finally:
        c.close()
    # Log lines are written by a background thread: wait for the refusals' warning.
    wait_until(lambda: "store events: refused" in gw.log(), 10, what="the refusal warning")
    log = gw.log()
    assert "EXPUNGE)" not in log and "* BYE" not in log, "payload values in the log"
    assert secret not in log
    # Logged once per burst: eight refusals within a second, one warning per shard
    # that took some of them (two shards).
    assert 1 <= log.count("store events: refused") <= 2, log


def test_pimapd_refuses_to_start_without_a_secret(start_pimapd, dovecot, intake_secret):
    port = harness.free_ports(1)[0]
    p = start_pimapd(start=False, store=dovecot.store,
                     extra=["--store-events", "push",
                            "--store-events-listen", "127.0.0.1:%d" % port])
    r = subprocess.run(p.args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "--store-events-secret-file" in r.stderr and "--store-events-insecure" in r.stderr, \
        r.stderr
    assert not harness.port_is_open(port)
    # An empty secret file is refused as well.
    empty = os.path.join(os.path.dirname(intake_secret[1]), "empty.secret")
    open(empty, "w").close()
    r = subprocess.run(p.args + ["--store-events-secret-file", empty],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "empty" in r.stderr, (r.returncode, r.stderr)


def test_insecure_intake_starts_with_one_warning(start_pimapd, dovecot):
    port = harness.free_ports(1)[0]
    gw = start_pimapd(store=dovecot.store, shards=2,
                      extra=["--store-events", "both", "--store-events-listen",
                             "127.0.0.1:%d" % port, "--store-events-insecure"])
    assert post(port, {"user": "alice", "events": []})[0] == 204
    wait_until(lambda: "INSECURE" in gw.log(), 10, what="the insecure intake's warning")
    log = gw.log()
    assert log.count("--store-events-insecure: the store-event intake") == 1, log
    assert "INSECURE" in log
