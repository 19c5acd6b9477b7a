"""The admin endpoint (--admin-listen) as a scraper and an operator use it:
curl and Python against a real pimapd. GET /metrics (Prometheus text), HEAD,
404/405, gzip, keep-alive across scrapes, and a stuck client that must hold up
neither other scrapes nor the IMAP side (the endpoint runs on a shard's ring,
not on a blocking thread of its own).
"""

import gzip
import http.client
import socket
import subprocess
import threading
import time

import pytest

import harness

pytestmark = pytest.mark.timeout(120)

TYPE = "text/plain; version=0.0.4; charset=utf-8"


def curl(*args):
    p = subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args),
                       capture_output=True, timeout=30)
    return p


def test_metrics_with_curl_head_404_405_and_gzip(start_pimapd):
    gw = start_pimapd(shards=2, admin=True)
    url = "http://%s:%d/metrics" % (harness.HOST, gw.admin_port)
    p = curl("-D", "-", url)
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"\r\nContent-Type: " + TYPE.encode() in head, head
    m = harness.parse_metrics(body.decode())
    assert m["pimap_shards"][None] == 2
    assert "pimap_heap_in_use_bytes" in m and "pimap_log_lines_dropped_total" in m
    # One sample per shard and the sum.
    assert set(m["pimap_device_connections"]) == {None, "0", "1"}, m["pimap_device_connections"]

    # HEAD: GET's headers, no body.
    p = curl("-I", url)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"HTTP/1.1 200"), p.stdout
    assert b"Content-Length: " in p.stdout and p.stdout.endswith(b"\r\n\r\n"), p.stdout

    p = curl("-o", "/dev/null", "-w", "%{http_code}",
             "http://%s:%d/nope" % (harness.HOST, gw.admin_port))
    assert p.stdout == b"404", p.stdout
    p = curl("-D", "-", "-o", "/dev/null", "-X", "DELETE", url)
    assert p.stdout.startswith(b"HTTP/1.1 405"), p.stdout
    assert b"\r\nAllow: GET, HEAD\r\n" in p.stdout, p.stdout

    # gzip when asked for; the same metrics once decoded.
    p = curl("-D", "-", "-H", "Accept-Encoding: gzip", url)
    head, _, coded = p.stdout.partition(b"\r\n\r\n")
    assert b"\r\nContent-Encoding: gzip\r\n" in head, head
    m = harness.parse_metrics(gzip.decompress(coded).decode())
    assert m["pimap_shards"][None] == 2
    p = curl("--compressed", url)
    assert harness.parse_metrics(p.stdout.decode())["pimap_shards"][None] == 2


def test_keep_alive_across_scrapes(start_pimapd):
    gw = start_pimapd(shards=2, admin=True)
    c = http.client.HTTPConnection(harness.HOST, gw.admin_port, timeout=10)
    c.connect()
    local = c.sock.getsockname()
    for _ in range(5):
        c.request("GET", "/metrics")
        r = c.getresponse()
        assert r.status == 200 and r.getheader("Content-Type") == TYPE
        assert b"pimap_shards 2\n" in r.read()
        assert r.getheader("Connection") is None  # kept open
        # The same TCP connection served every scrape.
        assert c.sock is not None and c.sock.getsockname() == local
    c.close()
    # curl too: two URLs, one connection.
    url = "http://%s:%d/metrics" % (harness.HOST, gw.admin_port)
    p = curl("-v", "-o", "/dev/null", "-o", "/dev/null", url, url)
    assert p.returncode == 0, p.stderr
    assert b"Re-using existing connection" in p.stderr or b"Reusing existing" in p.stderr, \
        p.stderr


def test_stuck_client_blocks_neither_scrapes_nor_imap(start_pimapd):
    """A client that sends half a request and then trickles one byte at a time
    (never completing it) while a scraper and an IMAP client go on: both are
    answered at once. The blocking admin thread this replaced served one
    client at a time and waited on the trickler (fails here: the scrape times
    out)."""
    gw = start_pimapd(shards=1, admin=True)
    stuck = socket.create_connection((harness.HOST, gw.admin_port), timeout=10)
    stuck.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    stop = threading.Event()

    def trickle():
        # A byte every 0.3 s: never idle long, never done.
        while not stop.is_set():
            try:
                stuck.sendall(b"a")
            except OSError:
                return
            stop.wait(0.3)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        time.sleep(0.5)  # the stuck connection is accepted and being read
        for _ in range(3):
            started = time.monotonic()
            c = http.client.HTTPConnection(harness.HOST, gw.admin_port, timeout=2)
            c.request("GET", "/metrics")
            r = c.getresponse()
            assert r.status == 200
            assert b"pimap_shards 1\n" in r.read()
            c.close()
            assert time.monotonic() - started < 2
        # The IMAP side on the same (only) shard keeps serving.
        with gw.raw() as imap:
            _, t_ = imap.cmd("L", "LOGIN alice alicepw")
            assert t_.startswith(b"L OK"), t_
            _, t_ = imap.cmd("n", "NOOP")
            assert t_.startswith(b"n OK"), t_
    finally:
        stop.set()
        t.join(5)
        stuck.close()
