"""Issue 16 item 4: pimapd behind HAProxy (Debian's, TCP mode, send-proxy-v2). pimapd
believes a PROXY protocol header only from --proxy-protocol-from, and then uses the client's
address it carries everywhere: its own log lines, the login throttling, the ID it sends the
store (Dovecot's rip=). A trusted peer that sends no header, or a malformed one, is closed
without a greeting; an untrusted peer's "PROXY ..." line is only a bad IMAP command.

Addresses: the client connects from 127.0.0.5 (any 127/8 address is local), HAProxy forwards
from 127.0.0.2 (its `source`), which is the one trusted address; the harness's own probes
come from 127.0.0.1, untrusted, and are served as usual."""

import os
import re
import shutil
import socket
import subprocess
import time

import pytest

import harness
from harness import HOST, wait_until

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(shutil.which("haproxy") is None,
                                 reason="haproxy not installed (tools/setup installs it)")]

BALANCER = "127.0.0.2"
CLIENT = "127.0.0.5"
LOG_WAIT = 10.0


@pytest.fixture
def haproxy():
    """factory(imap_port, http_port=None) -> the HAProxy front's IMAP (and HTTP) port."""
    procs = []

    def start(imap_port, http_port=None, imaps_port=None):
        d = harness.make_state_dir("haproxy-")
        front_imap, front_http = harness.free_ports(2)
        cfg = ["global", "  maxconn 1000",
               "defaults", "  mode tcp", "  timeout connect 5s",
               "  timeout client 60s", "  timeout server 60s",
               "frontend imap", "  bind %s:%d" % (HOST, front_imap),
               "  default_backend pimap_imap",
               "backend pimap_imap",
               "  server p1 %s:%d send-proxy-v2 source %s" % (HOST, imap_port, BALANCER)]
        if imaps_port:
            front_imap_tls = harness.free_ports(1)[0]
            cfg += ["frontend imaps", "  bind %s:%d" % (HOST, front_imap_tls),
                    "  default_backend pimap_imaps",
                    "backend pimap_imaps",
                    "  server p1 %s:%d send-proxy-v2 source %s" % (HOST, imaps_port, BALANCER)]
            front_http = front_imap_tls  # the caller asked for this one
        if http_port:
            cfg += ["frontend http", "  bind %s:%d" % (HOST, front_http),
                    "  default_backend pimap_http",
                    "backend pimap_http",
                    "  server p1 %s:%d send-proxy source %s" % (HOST, http_port, BALANCER)]
        path = os.path.join(d, "haproxy.cfg")
        with open(path, "w") as f:
            f.write("\n".join(cfg) + "\n")
        p = subprocess.Popen(["haproxy", "-db", "-f", path], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(p)
        wait_until(lambda: harness.port_is_open(front_imap), 10, what="haproxy listening")
        return front_imap, front_http

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def store_logins(dovecot, user, rip):
    return len(re.findall(r"Login: user=<%s>[^\n]*rip=%s," % (re.escape(user), re.escape(rip)),
                          dovecot.log()))


def test_client_address_through_haproxy_reaches_the_log_and_the_store(
        start_pimapd, dovecot, haproxy):
    gw = start_pimapd(extra=["--proxy-protocol-from", BALANCER + "/32"])
    front, _ = haproxy(gw.imap_port)
    c = harness.RawImap(HOST, front, source=CLIENT)
    try:
        assert c.greeting.startswith(b"* OK"), c.greeting
        port = c.sock.getsockname()[1]
        c.login("alice", "alicepw")
        _, t = c.cmd("s", "SELECT INBOX")
        assert t.startswith(b"s OK"), t
        # The store's login names the client, not the balancer nor the gateway.
        wait_until(lambda: store_logins(dovecot, "alice", CLIENT) >= 1, LOG_WAIT,
                   what="the store's login line with rip=%s" % CLIENT)
        wait_until(lambda: " user=alice client=%s:%d event=login.ok " % (CLIENT, port)
                   in gw.log(), LOG_WAIT, what="pimapd's login line with the client address")
        c.cmd("z", "LOGOUT")
    finally:
        c.close()


def test_p_imap_device_through_haproxy(start_pimapd, dovecot, haproxy):
    """A P-IMAP device's login through the balancer (the session engine's path)."""
    gw = start_pimapd(extra=["--proxy-protocol-from", BALANCER + "/32",
                             "--auth-cache-ttl", "0"])
    front, _ = haproxy(gw.imap_port)
    c = harness.RawImap(HOST, front, source=CLIENT)
    try:
        c.login("bob#phone-proxied", "bobpw")
        wait_until(lambda: store_logins(dovecot, "bob", CLIENT) >= 1, LOG_WAIT,
                   what="the store's login line with rip=%s" % CLIENT)
        _, t = c.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t
    finally:
        c.close()


def test_login_throttling_counts_the_client_not_the_balancer(start_pimapd, haproxy):
    """Failed logins of one client behind the balancer are counted against its own
    address: past --login-fail-max it is refused, while another client behind the same
    balancer logs in (were the balancer's address counted, both would be refused)."""
    gw = start_pimapd(shards=1, extra=["--proxy-protocol-from", BALANCER + "/32",
                                       "--login-fail-delay", "100ms",
                                       "--login-fail-max", "3"])
    front, _ = haproxy(gw.imap_port)
    # Own addresses: the store's own per-IP penalty for these failures would
    # slow other tests' logins from CLIENT.
    with harness.RawImap(HOST, front, source="127.0.0.21") as bad:
        for i, user in enumerate(("alice", "carol", "bob")):
            _, t = bad.cmd("f%d" % i, "LOGIN %s wrong" % user, timeout=30)
            assert b"NO [AUTHENTICATIONFAILED]" in t, t
        _, t = bad.cmd("f3", "LOGIN bob bobpw", timeout=30)
        assert b"f3 NO [UNAVAILABLE]" in t, t
    with harness.RawImap(HOST, front, source="127.0.0.22") as good:
        _, t = good.cmd("g", "LOGIN bob bobpw", timeout=30)
        assert b"g OK" in t, t


def test_implicit_tls_through_haproxy(start_pimapd, dovecot, haproxy, tls_cert):
    """IMAPS: the header comes before the TLS handshake, and the ClientHello that follows
    it (often in the same segment) is not taken with it."""
    gw = start_pimapd(tls=tls_cert, extra=["--proxy-protocol-from", BALANCER + "/32"])
    _, front_tls = haproxy(gw.imap_port, imaps_port=gw.imaps_port)
    wait_until(lambda: harness.port_is_open(front_tls), 10, what="haproxy imaps front")
    ctx = harness.client_tls_context(tls_cert[0])
    c = harness.RawImap(HOST, front_tls, tls_ctx=ctx, source=CLIENT, sni="localhost")
    try:
        assert c.greeting.startswith(b"* OK"), c.greeting
        c.login("carol", "carolpw")
        wait_until(lambda: store_logins(dovecot, "carol", CLIENT) >= 1, LOG_WAIT,
                   what="the store's login line with rip=%s" % CLIENT)
    finally:
        c.close()


def raw_connect(port, source):
    s = socket.create_connection((HOST, port), timeout=10, source_address=(source, 0))
    return s


def read_all(s, timeout=5.0):
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False
    except ConnectionResetError:
        # Closed with the peer's bytes unread: the kernel answers with a reset.
        return data, True


def test_trusted_peer_must_send_a_valid_header(start_pimapd):
    gw = start_pimapd(extra=["--proxy-protocol-from", BALANCER + "/32"])
    # No header: nothing is sent (the gateway waits for one), then closed.
    s = raw_connect(gw.imap_port, BALANCER)
    s.sendall(b"a1 CAPABILITY\r\n")
    data, closed = read_all(s, timeout=10)
    assert closed and data == b"", data
    s.close()
    # A malformed header: closed at once, no greeting.
    s = raw_connect(gw.imap_port, BALANCER)
    s.sendall(b"PROXY TCP4 300.0.0.1 1.2.3.4 1 2\r\n")
    data, closed = read_all(s)
    assert closed and data == b"", data
    s.close()
    # A v1 header then the client's first command in the same segment: the command is
    # not lost (only the header is consumed), and the carried address is believed.
    s = raw_connect(gw.imap_port, BALANCER)
    s.sendall(b"PROXY TCP4 198.51.100.9 127.0.0.1 40000 143\r\na1 NOOP\r\n")
    s.settimeout(10)
    got = b""
    while b"a1 OK" not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    assert got.startswith(b"* OK"), got
    s.close()
    # The gateway kept serving others throughout.
    with gw.raw() as c:
        _, t = c.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t


def test_trusted_peer_silent_is_closed_after_the_deadline(start_pimapd):
    """A balancer's connection that says nothing (or half a header) gets no greeting and
    is closed when the header's time (5 s) is up."""
    gw = start_pimapd(extra=["--proxy-protocol-from", BALANCER + "/32"])
    silent = raw_connect(gw.imap_port, BALANCER)
    partial = raw_connect(gw.imap_port, BALANCER)
    partial.sendall(b"PROXY TCP4 1.2")
    began = time.monotonic()
    for s in (silent, partial):
        data, closed = read_all(s, timeout=15)
        assert closed and data == b"", data
        s.close()
    assert 3 < time.monotonic() - began < 12


def test_waiting_for_headers_is_bounded_and_a_drain_closes_them(start_pimapd):
    """Connections waiting for their header are bounded per listener and shard (256): past
    it a balancer's connection is closed at once, while other clients are served; a drain
    closes those still waiting (none is served after it)."""
    sock = os.path.join(harness.make_state_dir("admin-"), "admin.sock")
    gw = start_pimapd(shards=1, extra=["--proxy-protocol-from", BALANCER + "/32",
                                       "--admin-socket", sock])
    waiting = [raw_connect(gw.imap_port, BALANCER) for _ in range(256)]
    time.sleep(0.5)
    extra = raw_connect(gw.imap_port, BALANCER)
    data, closed = read_all(extra, timeout=3)
    assert closed and data == b"", data
    extra.close()
    with gw.raw() as c:  # untrusted: served as ever
        _, t = c.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t
    # Drain: the waiting connections are closed, and a header sent now serves nothing.
    pimapctl = os.path.join(os.path.dirname(harness.PIMAPD), "pimapctl")
    r = subprocess.run([pimapctl, "--socket", sock, "drain"], capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r
    waiting[0].sendall(b"PROXY TCP4 198.51.100.9 127.0.0.1 40000 143\r\n")
    for s in waiting:
        data, closed = read_all(s, timeout=5)
        assert closed and data == b"", data
        s.close()


def test_untrusted_peer_header_is_not_believed(start_pimapd):
    gw = start_pimapd(extra=["--proxy-protocol-from", BALANCER + "/32"])
    with gw.raw(source=CLIENT) as c:
        # Greeted at once (no header awaited); a PROXY line is just a bad command.
        assert c.greeting.startswith(b"* OK"), c.greeting
        c.send(b"PROXY TCP4 198.51.100.9 127.0.0.1 40000 143\r\n")
        line = c.readline()
        assert b"BAD" in line, line
        _, t = c.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t


def test_http_binding_through_haproxy_v1(start_pimapd, haproxy):
    """The HTTP listener takes the header too (here v1, HAProxy's send-proxy)."""
    http_port = harness.free_ports(1)[0]
    gw = start_pimapd(extra=["--proxy-protocol-from", BALANCER + "/32",
                             "--http-listen", "%s:%d" % (HOST, http_port)])
    wait_until(lambda: harness.port_is_open(http_port), 10, what="http listener")
    _, front_http = haproxy(gw.imap_port, http_port)
    wait_until(lambda: harness.port_is_open(front_http), 10, what="haproxy http front")
    s = raw_connect(front_http, CLIENT)
    s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, _ = read_all(s, timeout=10)
    s.close()
    assert data.startswith(b"HTTP/1.1 "), data
