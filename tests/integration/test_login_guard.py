"""Issue 14: what the gateway does with the client's address and with failed
logins. The client's address reaches the store (ID x-originating-ip before the
login, honoured because the test Dovecot trusts 127.0.0.0/8) and every log line
of the connection; the client's own ID fields reach the store after the login;
failed logins per user and per IP slow down exponentially and are refused past
--login-fail-max, without a store connection; a success starts over.

Clients connect from other loopback addresses (127.0.0.2 and up are local on
Linux) so that the store can tell them from the gateway (127.0.0.1). The store
has its own per-IP penalty for failed logins (seconds), which now falls on the
client's address instead of the gateway's: the timings here are lower bounds.
"""

import http.client
import re
import subprocess
import time

import pytest

import harness
from harness import HOST, sasl_plain, wait_until

pytestmark = pytest.mark.timeout(180)

DELAY = 0.5  # --login-fail-delay in the throttling tests
LOG_WAIT = 10.0


def store_logins(dovecot, user, rip):
    """The store's successful logins of user from rip (its log)."""
    return len(re.findall(r"Login: user=<%s>[^\n]*rip=%s," % (re.escape(user), re.escape(rip)),
                          dovecot.log()))


def store_auth_failures(dovecot, rip):
    """The store's failed authentications from rip (imap-login's log lines)."""
    return sum(1 for line in dovecot.log().splitlines()
               if "imap-login:" in line and "rip=%s," % rip in line
               and "auth failed" in line)


def who_ips(dovecot, user):
    r = subprocess.run(["doveadm", "-c", dovecot.conf_path, "who", user],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    return r.stdout


# ----------------------------------------------------------------------------- the address

def test_stock_client_address_reaches_the_store_and_the_log(start_pimapd, dovecot):
    gw = start_pimapd()
    probe = harness.unique_name("probe")
    with gw.raw(source="127.0.0.2") as c:
        port = c.sock.getsockname()[1]
        # ID before login is answered (iOS Mail sends it), its fields kept.
        untagged, t = c.cmd("i1", 'ID ("name" "%s" "version" "1.0")' % probe)
        assert t.startswith(b"i1 OK"), t
        assert any(x.startswith(b'* ID ("name" "pimap"') for x in untagged), untagged
        c.login("alice", "alicepw")
        # The store sees the client, not the gateway, and its ID fields.
        wait_until(lambda: store_logins(dovecot, "alice", "127.0.0.2") >= 1, LOG_WAIT,
                   what="the store's login line with rip=127.0.0.2")
        wait_until(lambda: probe in dovecot.log(), LOG_WAIT, what="the client's ID at the store")
        assert "127.0.0.2" in who_ips(dovecot, "alice")
        _, t = c.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t
    # pimapd's log line of the login names the client.
    wait_until(lambda: " user=alice client=127.0.0.2:%d event=login.ok " % port in gw.log(),
               LOG_WAIT,
               what="pimapd's login line with the client address")


def test_pimap_device_address_and_id_reach_the_store(start_pimapd, dovecot):
    gw = start_pimapd(extra=["--auth-cache-ttl", "0"])  # the login goes to the store
    probe = harness.unique_name("probe")
    with gw.raw(source="127.0.0.3") as c:
        _, t = c.cmd("i1", 'ID ("name" "%s")' % probe)
        assert t.startswith(b"i1 OK"), t
        c.login("bob#phone", "bobpw")
        wait_until(lambda: store_logins(dovecot, "bob", "127.0.0.3") >= 1, LOG_WAIT,
                   what="the store's login line with rip=127.0.0.3")
        wait_until(lambda: probe in dovecot.log(), LOG_WAIT, what="the device's ID at the store")
        # ID after login is the gateway's answer too.
        untagged, t = c.cmd("i2", "ID NIL")
        assert t.startswith(b"i2 OK"), t
        assert any(x.startswith(b'* ID ("name" "pimap"') for x in untagged), untagged


def test_a_client_cannot_set_its_own_originating_ip(start_pimapd, dovecot):
    gw = start_pimapd()
    with gw.raw(source="127.0.0.4") as c:
        _, t = c.cmd("i1", 'ID ("x-originating-ip" "10.6.6.6" "X-Connected-IP" "10.7.7.7")')
        assert t.startswith(b"i1 OK"), t
        c.login("carol", "carolpw")
        wait_until(lambda: store_logins(dovecot, "carol", "127.0.0.4") >= 1, LOG_WAIT,
                   what="the store's login line with rip=127.0.0.4")
    assert "10.6.6.6" not in dovecot.log()


def test_http_client_address_reaches_the_store(start_pimapd, dovecot):
    port = harness.free_ports(1)[0]
    gw = start_pimapd(extra=["--http-listen", "%s:%d" % (HOST, port), "--auth-cache-ttl", "0"])
    probe = harness.unique_name("probe")
    conn = http.client.HTTPConnection(HOST, port, timeout=30, source_address=("127.0.0.5", 0))
    body = ('a ID ("name" "%s")\r\nb AUTHENTICATE PLAIN %s\r\n'
            % (probe, sasl_plain("alice#web", "alicepw"))).encode()
    conn.request("POST", "/pimap", body=body,
                 headers={"Content-Type": "application/vnd.pimap"})
    r = conn.getresponse()
    text = r.read()
    assert r.status == 200, (r.status, text)
    assert b'* ID ("name" "pimap"' in text and b"\r\na OK" in text, text
    assert b"\r\nb OK" in text, text
    conn.close()
    wait_until(lambda: store_logins(dovecot, "alice", "127.0.0.5") >= 1, LOG_WAIT,
               what="the store's login line with rip=127.0.0.5")
    wait_until(lambda: probe in dovecot.log(), LOG_WAIT, what="the device's ID at the store")
    wait_until(lambda: re.search(r" user=alice device=web client=127\.0\.0\.5:\d+ "
                                 r"event=login\.ok ", gw.log()), LOG_WAIT,
               what="pimapd's login line")


# ----------------------------------------------------------------------------- throttling

@pytest.fixture
def throttled(start_pimapd):
    """One shard, so that every per-IP count is in one place."""
    return start_pimapd(shards=1, admin=True,
                        extra=["--login-fail-delay", "%dms" % int(DELAY * 1000),
                               "--login-fail-max", "3", "--login-fail-window", "10m"])


def timed_login(c, tag, user, password):
    start = time.monotonic()
    _, t = c.cmd(tag, "LOGIN %s %s" % (harness.quote(user), harness.quote(password)))
    return t, time.monotonic() - start


def test_failures_slow_down_then_are_refused_without_the_store(throttled, dovecot):
    gw = throttled
    with gw.raw(source="127.0.0.6") as c:
        t, took = timed_login(c, "a1", "alice", "wrong")
        assert b"a1 NO [AUTHENTICATIONFAILED]" in t, t
        # Each retry waits longer: 1x, then 2x the delay.
        t, took = timed_login(c, "a2", "alice", "wrong")
        assert b"a2 NO [AUTHENTICATIONFAILED]" in t, t
        assert took >= DELAY * 0.9, took
        t, took = timed_login(c, "a3", "alice", "wrong")
        assert b"a3 NO [AUTHENTICATIONFAILED]" in t, t
        assert took >= 2 * DELAY * 0.9, took
        wait_until(lambda: store_auth_failures(dovecot, "127.0.0.6") == 3, LOG_WAIT,
                   what="3 failed logins at the store")
        # At the threshold even the right password is refused, at once, and the
        # store never hears of it.
        t, took = timed_login(c, "a4", "alice", "alicepw")
        assert b"a4 NO [UNAVAILABLE]" in t, t
        assert took < DELAY, took
        _, t = c.cmd("n", "NOOP")  # the connection stays usable
        assert t.startswith(b"n OK"), t
    m = gw.metrics()
    assert m["pimap_logins_refused_total"][None] == 1, m["pimap_logins_refused_total"]
    assert m["pimap_logins_delayed_total"][None] == 2, m["pimap_logins_delayed_total"]
    time.sleep(1)
    assert store_auth_failures(dovecot, "127.0.0.6") == 3
    assert store_logins(dovecot, "alice", "127.0.0.6") == 0


def test_ip_counts_across_users_and_success_starts_over(throttled):
    gw = throttled
    with gw.raw(source="127.0.0.7") as c:
        # (bob last: his delay counts from his failure.)
        for i, user in enumerate(("alice", "carol", "bob")):
            t, _ = timed_login(c, "f%d" % i, user, "wrong")
            assert b"NO [AUTHENTICATIONFAILED]" in t, t
        # Three failures from this IP: refused for any user.
        t, _ = timed_login(c, "f3", "bob", "bobpw")
        assert b"f3 NO [UNAVAILABLE]" in t, t
    # From another IP, bob has only his own failure: one delay, then in.
    with gw.raw(source="127.0.0.8") as c:
        t, took = timed_login(c, "b1", "bob", "bobpw")
        assert b"b1 OK" in t, t
        assert took >= DELAY * 0.9, took
    # The success forgot bob's failure: a new one counts from one again. (The
    # retry comes from a third address: the store's own penalty would delay
    # it on the second.)
    with gw.raw(source="127.0.0.8") as c:
        t, _ = timed_login(c, "b2", "bob", "wrong")
        assert b"b2 NO [AUTHENTICATIONFAILED]" in t, t
    with gw.raw(source="127.0.0.9") as c:
        t, took = timed_login(c, "b3", "bob", "bobpw")
        assert b"b3 OK" in t, t
        # One delay (his count started over), not two.
        assert DELAY * 0.9 <= took < 2 * DELAY * 0.9, took


def test_throttling_can_be_turned_off(start_pimapd):
    gw = start_pimapd(shards=1, extra=["--login-fail-delay", "0"])
    with gw.raw(source="127.0.0.10") as c:
        for i in range(5):
            t, _ = timed_login(c, "w%d" % i, "carol", "wrong")
            assert b"NO [AUTHENTICATIONFAILED]" in t, t
        t, _ = timed_login(c, "ok", "carol", "carolpw")
        assert b"ok OK" in t, t
