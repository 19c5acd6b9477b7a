"""Issue 14, item 4: what one user, one device or one client IP may make the
gateway keep. The 33rd device of a user is refused (--max-devices-per-user,
default 32) while its known devices still resume; a device's folder filters
and the size of one filter are bounded (NO [LIMIT]). Item 5: user names are keyed
by the store's rule (--user-name-format).
"""

import re
import subprocess
import time

import pytest

import harness

pytestmark = pytest.mark.timeout(240)

PUSH_WAIT = 10.0


def login(c, user, password, tag="L1"):
    _, t = c.cmd(tag, "LOGIN %s %s" % (harness.quote(user), harness.quote(password)))
    return t


# ----------------------------------------------------------------------------- devices

def test_the_33rd_device_of_a_user_is_refused(start_pimapd):
    gw = start_pimapd()
    # 32 devices, each logged in and gone: detached sessions count too.
    for i in range(32):
        with gw.raw() as c:
            t = login(c, "carol#dev%d" % i, "carolpw")
            assert t.startswith(b"L1 OK"), (i, t)
    with gw.raw() as c:
        t = login(c, "carol#dev32", "carolpw")
        assert t == b"L1 NO [LIMIT] Too many devices for this user\r\n", t
        # Still not authenticated: the connection may try again.
        _, t = c.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t
    # A known device resumes; another user is not concerned.
    with gw.raw() as c:
        assert login(c, "carol#dev7", "carolpw").startswith(b"L1 OK")
        # Its LOGOUT ends its session and frees its slot.
        c.cmd("z", "LOGOUT")
    with gw.raw() as c:
        assert login(c, "bob#dev32", "bobpw").startswith(b"L1 OK")
    with gw.raw() as c:
        assert login(c, "carol#dev32", "carolpw").startswith(b"L1 OK")


def test_filters_per_device_and_filter_size_are_bounded(start_pimapd):
    gw = start_pimapd(extra=["--max-filters-per-device", "2", "--max-filter-bytes", "64"])
    with gw.raw() as c:
        assert login(c, "bob#filters", "bobpw").startswith(b"L1 OK")
        for tag, folder in (("a", "INBOX"), ("b", "Work")):
            _, t = c.cmd(tag, "XFILTER %s N SEEN" % folder)
            assert t.startswith(tag.encode() + b" OK"), t
        _, t = c.cmd("c", "XFILTER Other N SEEN")
        assert t.startswith(b"c NO [LIMIT]"), t
        _, t = c.cmd("d", 'XFILTER INBOX N SUBJECT "%s"' % ("x" * 100))
        assert t.startswith(b"d NO [LIMIT]"), t
        # Both refused: nothing changed.
        untagged, t = c.cmd("e", "XFILTER INBOX N GET")
        assert untagged == [b"* XFILTER INBOX N SEEN\r\n"], untagged


# ----------------------------------------------------------------------------- pre-auth

TOO_MANY = b"* BYE [UNAVAILABLE] Too many connections\r\n"


def flood(gw, n, source):
    """n connections from source that never log in (greeted, kept open)."""
    conns = []
    for _ in range(n):
        c = gw.raw(source=source)
        assert c.greeting.startswith(b"* OK"), c.greeting
        conns.append(c)
    return conns


def test_a_preauth_flood_from_one_ip_does_not_stop_another_client(start_pimapd):
    gw = start_pimapd(shards=1, admin=True)  # defaults: 64 per IP
    conns = flood(gw, 64, "127.0.0.2")
    try:
        with gw.raw(source="127.0.0.2") as c:
            assert c.greeting == TOO_MANY, c.greeting
            c.read_eof()
        with gw.raw(source="127.0.0.3") as c:
            assert login(c, "alice", "alicepw").startswith(b"L1 OK")
        assert gw.metrics()["pimap_preauth_refused_total"][None] >= 1
        # One of them logs in: it no longer counts, so its IP gets a slot back.
        assert login(conns[0], "bob", "bobpw").startswith(b"L1 OK")
        with gw.raw(source="127.0.0.2") as c:
            assert c.greeting.startswith(b"* OK"), c.greeting
    finally:
        for c in conns:
            c.close()


def test_the_shard_bound_keeps_descriptors_for_logged_in_clients(start_pimapd):
    gw = start_pimapd(shards=1, extra=["--max-preauth-per-shard", "6",
                                       "--max-preauth-per-ip", "3"])
    with gw.raw(source="127.0.0.9") as logged_in:
        assert login(logged_in, "carol", "carolpw").startswith(b"L1 OK")
        conns = flood(gw, 3, "127.0.0.2") + flood(gw, 3, "127.0.0.3")
        try:
            with gw.raw(source="127.0.0.4") as c:
                assert c.greeting == TOO_MANY, c.greeting
            # The logged-in client is not concerned.
            _, t = logged_in.cmd("n", "NOOP")
            assert t.startswith(b"n OK"), t
            # A closed one frees its slot.
            conns.pop().close()
            harness.wait_until(lambda: _greeted(gw, "127.0.0.4"), 10,
                               what="a slot freed by a closed connection")
        finally:
            for c in conns:
                c.close()


def _greeted(gw, source):
    with gw.raw(source=source) as c:
        return c.greeting.startswith(b"* OK")


# ----------------------------------------------------------------------------- identity

def session_id(untagged):
    for line in untagged:
        if line.startswith(b"* SESSIONID "):
            return line.split()[2]
    raise AssertionError("no SESSIONID in %r" % untagged)


def test_user_names_differing_by_case_are_one_user(start_pimapd):
    # Issue 14, item 5: the store (Dovecot, auth_username_format=%Lu) takes
    # Alice and alice for one user; so does the gateway (--user-name-case fold):
    # one owner shard, one session.
    gw = start_pimapd(shards=4)
    with gw.raw() as c:
        untagged, t = c.cmd("L1", "LOGIN Alice#casephone alicepw")
        assert t.startswith(b"L1 OK"), t
        first = session_id(untagged)
    with gw.raw() as c:
        untagged, t = c.cmd("L1", "LOGIN ALICE#casephone alicepw")
        assert t.startswith(b"L1 OK"), t
        assert b"* SESSION AUTHENTICATED\r\n" in untagged, untagged
        assert session_id(untagged) == first
    harness.wait_until(lambda: " user=alice device=casephone " in gw.log(), 10,
                       what="the folded name in pimapd's log")
    assert " user=Alice " not in gw.log()


def test_the_stores_rule_for_user_names_keys_sessions_and_pushes(start_pimapd,
                                                                 intake_port, intake_secret,
                                                                 intake_args):
    # Issue 14, item 5: a store that strips the domain (auth_username_format=%Ln)
    # knows "Alice@Example.ORG" and "alice" as one user, "alice", and its pushes name
    # "alice". With --user-name-format %Ln the gateway keys the user the same way:
    # both devices (Alice#phone@Example.ORG, alice#tablet) are one user and the
    # store's push reaches the one that logged in with the domain (keyed
    # "alice@example.org", as the default %Lu would, it would never hear of it).
    store = harness.started_dovecot(
        harness.make_state_dir("pimap-dovecot-names-"),
        push_url="http://127.0.0.1:%d/dovecot" % intake_port, push_secret=intake_secret[0])
    try:
        with open(store.conf_path, "a") as f:
            f.write("auth_username_format = %Ln\n")
        subprocess.run(["doveadm", "-c", store.conf_path, "reload"], check=True,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        time.sleep(0.5)  # the reload is asynchronous
        harness.ensure_messages(store, "alice", 1)
        gw = start_pimapd(store=store.store, shards=4,
                          extra=["--store-events", "push", "--user-name-format", "%Ln",
                                 *intake_args])
        with gw.raw() as phone, gw.raw() as tablet:
            first = session_id(harness.pimap_login(phone, "Alice#phone@Example.ORG",
                                                       "alicepw"))
            _, t = phone.cmd("x", "XFILTER INBOX N ALL")
            harness.ok(t, "x")
            n0 = len(harness.select_view(phone).uids)
            harness.start_idle(phone)
            harness.pimap_login(tablet, "alice#tablet")
            store.deliver("alice", harness.make_message("to the canonical user"))
            lines, got = harness.read_lines(phone, PUSH_WAIT,
                                            until=lambda x: harness.EXISTS_RE.match(x))
            assert got, "the store's push for alice missed Alice@Example.ORG: %r" % lines
            assert lines[-1] == b"* %d EXISTS\r\n" % (n0 + 1), lines
            harness.end_idle(phone)
            assert first
        # Log lines are written by a background thread: they may lag the answers.
        harness.wait_until(lambda: re.search(r" user=alice device=phone client=\S+ "
                                             r"event=login\.ok ", gw.log()) and
                           re.search(r" user=alice device=tablet client=\S+ "
                                     r"event=login\.ok ", gw.log()), 10,
                           what="both devices' logins under the canonical name")
    except BaseException:
        print(store.log()[-5000:])
        raise
    finally:
        store.stop()
