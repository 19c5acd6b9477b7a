"""A private etcd for the cluster's integration tests (issue 16).

Etcd starts Debian's /usr/bin/etcd (3.4, package etcd-server) as a one-member
cluster on free loopback ports, its data and log in a temporary directory, and
reads and writes keys through etcd's JSON gateway (/v3/kv/..., base64 keys and
values) with urllib: the standard library only, like harness.py.

    with Etcd() as etcd:
        pimapd = Pimapd(store, extra=["--etcd", etcd.client_url])
        ...
        assert etcd.get("pimap/users/alice") == "node-1"

A short heartbeat and election timeout: the member leads at once and its
minimum lease TTL is 1 s (2 s with the defaults), which keeps expiry tests
short. stop() and kill() keep the data directory and the ports, so start()
brings the same member back (a restart, or recovery after a crash).
"""

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

from harness import HOST, _pdeathsig, free_ports, make_state_dir

ETCD = os.environ.get("PIMAP_ETCD", "/usr/bin/etcd")


def etcd_available():
    return os.access(ETCD, os.X_OK)


def _b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")


def _prefix_end(prefix):
    """etcd's range_end of a prefix scan: the last byte below 0xff + 1."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"  # every key from the prefix on


class Etcd:
    """One etcd member on free loopback ports (a context manager)."""

    def __init__(self, state_dir=None, name="default"):
        self.dir = state_dir or make_state_dir("pimap-etcd-")
        self.name = name
        self.client_port, self.peer_port = free_ports(2)
        self.log_path = os.path.join(self.dir, "etcd.log")
        self.proc = None
        self._log = None

    @property
    def client_url(self):
        return "http://%s:%d" % (HOST, self.client_port)

    # -- lifecycle
    def start(self, timeout=20.0):
        if not etcd_available():
            raise RuntimeError("%s not found (Debian's etcd-server; tools/setup installs it)"
                               % ETCD)
        peer = "http://%s:%d" % (HOST, self.peer_port)
        args = [ETCD, "--name", self.name,
                "--data-dir", os.path.join(self.dir, "data"),
                "--listen-client-urls", self.client_url,
                "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "%s=%s" % (self.name, peer),
                "--heartbeat-interval", "10", "--election-timeout", "50"]
        self._log = open(self.log_path, "ab")
        self._log.write(("$ %s\n" % " ".join(args)).encode())
        self._log.flush()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, preexec_fn=_pdeathsig)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20.0):
        """Until /health says the member is healthy (it has a leader)."""
        deadline = time.monotonic() + timeout
        last_err = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("etcd exited with %d during start-up:\n%s"
                                   % (self.proc.returncode, self.log()))
            try:
                with urllib.request.urlopen(self.client_url + "/health", timeout=2) as r:
                    body = json.loads(r.read())
                if body.get("health") == "true":
                    return
                last_err = "health %r" % body
            except (OSError, ValueError) as e:
                last_err = repr(e)
            time.sleep(0.05)
        raise RuntimeError("etcd not healthy within %.1fs (%s):\n%s"
                           % (timeout, last_err, self.log()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM and wait (SIGKILL after the timeout); returns the exit code, 0 for a
        graceful shutdown (etcd shuts down, then re-raises SIGTERM: -15)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()
        code = self.proc.returncode
        return 0 if code == -signal.SIGTERM else code

    def kill(self):
        """SIGKILL (a crash): the member's data stays for a later start()."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_log()

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the v3 JSON gateway
    def call(self, path, body, timeout=10.0):
        """POSTs body (a dict) to path (e.g. "/v3/kv/range"); the answer as a dict.
        An error answer raises urllib.error.HTTPError."""
        request = urllib.request.Request(
            self.client_url + path, data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read())

    def _range(self, key, range_end=None):
        body = {"key": _b64(key)}
        if range_end is not None:
            body["range_end"] = _b64(range_end)
        # proto3 JSON: no "kvs" when nothing matched, no "value" when empty.
        return self.call("/v3/kv/range", body).get("kvs", [])

    @staticmethod
    def _out(data, like):
        return data.decode() if isinstance(like, str) else data

    def get(self, key):
        """The value at key (str for a str key, bytes for bytes), or None."""
        kvs = self._range(key)
        if not kvs:
            return None
        return self._out(base64.b64decode(kvs[0].get("value", "")), key)

    def get_prefix(self, prefix):
        """{key: value} of every key under prefix (str or bytes, like prefix)."""
        raw = prefix.encode() if isinstance(prefix, str) else prefix
        out = {}
        for kv in self._range(raw, _prefix_end(raw)):
            out[self._out(base64.b64decode(kv.get("key", "")), prefix)] = \
                self._out(base64.b64decode(kv.get("value", "")), prefix)
        return out

    def put(self, key, value, lease=0):
        """Puts value at key (under lease, 0: none); the new revision."""
        body = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self.call("/v3/kv/put", body)["header"]["revision"])

    def delete_prefix(self, prefix):
        """Deletes every key under prefix; the deleted count."""
        raw = prefix.encode() if isinstance(prefix, str) else prefix
        body = {"key": _b64(raw), "range_end": _b64(_prefix_end(raw))}
        return int(self.call("/v3/kv/deleterange", body).get("deleted", "0"))

    def grant(self, ttl):
        """A new lease of ttl seconds (etcd may raise it to its minimum): its ID."""
        return int(self.call("/v3/lease/grant", {"TTL": str(ttl)})["ID"])

    def revoke(self, lease):
        """Revokes lease (its keys go with it); a lease already gone is fine."""
        try:
            self.call("/v3/lease/revoke", {"ID": str(lease)})
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
