"""Issue 14: what the gateway does with the client's address. It reaches the
store (ID x-originating-ip before the login, honoured because the test Dovecot
trusts 127.0.0.0/8) and every log line of the connection; the client's own ID
fields reach the store after the login.

Clients connect from other loopback addresses (127.0.0.2 and up are local on
Linux) so that the store can tell them from the gateway (127.0.0.1).
"""

import http.client
import re
import subprocess

import pytest

import harness
from harness import HOST, sasl_plain, wait_until

pytestmark = pytest.mark.timeout(180)

LOG_WAIT = 10.0


def store_logins(dovecot, user, rip):
    """The store's successful logins of user from rip (its log)."""
    return len(re.findall(r"Login: user=<%s>[^\n]*rip=%s," % (re.escape(user), re.escape(rip)),
                          dovecot.log()))


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
    wait_until(lambda: 'client=127.0.0.2:%d login user="alice"' % port in gw.log(), LOG_WAIT,
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
    wait_until(lambda: re.search(r'client=127\.0\.0\.5:\d+ login user="alice" device="web"',
                                 gw.log()), LOG_WAIT, what="pimapd's login line")
