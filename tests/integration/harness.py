"""Process and protocol helpers for the pimapd integration tests.

Everything here runs with Debian's /usr/bin/python3 and the standard library only
(plus pytest in conftest.py). Nothing refers to files outside the repository.
"""

import base64
import ctypes
import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
import uuid

SOURCE_DIR = os.environ.get(
    "PIMAP_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
PIMAPD = os.environ.get("PIMAPD", os.path.join(SOURCE_DIR, "build", "bin", "pimapd"))
DOVECOT_UP = os.path.join(SOURCE_DIR, "tools", "dovecot", "up")
DOVECOT_DOWN = os.path.join(SOURCE_DIR, "tools", "dovecot", "down")

HOST = "127.0.0.1"
USERS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"}
MASTER_USER, MASTER_PASSWORD = "gateway", "gatewaypw"

# Capabilities the relay must never pass through after login.
# Per-hop or pre-login capabilities the gateway does not pass on after login.
FORBIDDEN_POST_AUTH = ("STARTTLS", "LOGINDISABLED", "SASL-IR", "LOGIN-REFERRALS")
FORBIDDEN_POST_AUTH_PREFIXES = ("COMPRESS=", "AUTH=")

NET_TIMEOUT = 30.0  # default for every socket wait (Dovecot auth penalties reach 15 s)


# --------------------------------------------------------------------------- utilities

def free_ports(n=1):
    """n distinct free loopback TCP ports (bound together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def make_state_dir(prefix):
    """A world-traversable temp dir (Dovecot's mail processes run as nobody)."""
    d = tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("PIMAP_TEST_TMP", "/tmp"))
    os.chmod(d, 0o755)
    return d


def unique_name(prefix="t"):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:12])


def wait_until(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


def port_is_open(port, host=HOST):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def generate_cert(directory):
    """Self-signed EC P-256 cert for localhost/127.0.0.1; returns (cert, key) paths."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    if not (os.path.exists(cert) and os.path.exists(key)):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, timeout=30)
        os.chmod(key, 0o600)
    return cert, key


def client_tls_context(cafile):
    """A client context that trusts exactly the test certificate, TLS >= 1.2."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


# --------------------------------------------------------------------------- Dovecot

class Dovecot:
    """A private Dovecot 2.3 started through tools/dovecot/up."""

    def __init__(self, state_dir=None):
        self.dir = state_dir or make_state_dir("pimap-dovecot-")
        self.imap_port, self.lmtp_port = free_ports(2)
        self.pid = None

    def start(self):
        r = subprocess.run([DOVECOT_UP, self.dir, str(self.imap_port), str(self.lmtp_port)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("tools/dovecot/up failed (%d):\n%s%s"
                               % (r.returncode, r.stdout, r.stderr))
        self.pid = int(r.stdout.strip().splitlines()[-1])
        return self

    def stop(self):
        subprocess.run([DOVECOT_DOWN, self.dir], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)

    @property
    def store(self):
        return "%s:%d" % (HOST, self.imap_port)

    def log(self):
        try:
            with open(os.path.join(self.dir, "log", "dovecot.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def imap(self, user="alice", password=None):
        """A direct (not through the gateway) logged-in imaplib connection."""
        import imaplib
        m = imaplib.IMAP4(HOST, self.imap_port, timeout=NET_TIMEOUT)
        m.login(user, password or USERS[user])
        return m

    def deliver(self, rcpt, message):
        """Deliver a message with LMTP into rcpt's INBOX."""
        import smtplib
        with smtplib.LMTP(HOST, self.lmtp_port, timeout=NET_TIMEOUT) as lmtp:
            refused = lmtp.sendmail("sender@example.org", [rcpt], message)
            assert not refused, refused


# --------------------------------------------------------------------------- pimapd

def _pdeathsig():
    # Make sure pimapd dies with the test process even if pytest is killed hard.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Pimapd:
    """One pimapd process on free loopback ports, stderr captured to a file."""

    def __init__(self, store, *, tls=None, plaintext=True, shards=None, admin=False,
                 imap=True, imaps=None, extra=(), config=None, log_dir=None,
                 imap_port=None, admin_port=None):
        """imap=True: --imap-listen on a free port; False: --imap-listen none;
        "config": no --imap-listen flag (the config file or an extra flag sets it,
        imap_port= tells the harness where to look). admin_port= likewise for admin."""
        self.binary = PIMAPD
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("pimapd binary not found at %s (set PIMAPD or build it first)"
                               % self.binary)
        ports = free_ports(3)
        self.imap_port = imap_port or (ports[0] if imap else None)
        imaps = bool(tls) if imaps is None else imaps
        self.imaps_port = ports[1] if imaps else None
        self.admin_port = admin_port or (ports[2] if admin else None)
        self.tls = tls
        self.log_dir = log_dir or make_state_dir("pimapd-log-")
        self.log_path = os.path.join(self.log_dir, "pimapd-%s.log" % uuid.uuid4().hex[:8])
        args = [self.binary]
        if config:
            args += ["--config", config]  # first: every later flag overrides the file
        if store is not None:
            args += ["--store", store]
        if imap != "config":
            args += ["--imap-listen", "%s:%d" % (HOST, self.imap_port) if imap else "none"]
        if self.imaps_port:
            args += ["--imaps-listen", "%s:%d" % (HOST, self.imaps_port)]
        if tls:
            args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        if plaintext:
            args += ["--allow-plaintext-auth"]
        if shards:
            args += ["--shards", str(shards)]
        if admin:
            args += ["--admin-listen", "%s:%d" % (HOST, self.admin_port)]
        args += list(extra)
        self.args = args
        self.proc = None
        self._log = None

    # -- lifecycle
    def start(self, timeout=10.0):
        self._log = open(self.log_path, "ab")
        self._log.write(("$ %s\n" % " ".join(self.args)).encode())
        self._log.flush()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, preexec_fn=_pdeathsig)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        last_err = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pimapd exited with %d during start-up:\n%s"
                                   % (self.proc.returncode, self.log()))
            try:
                if self.imap_port:
                    with socket.create_connection((HOST, self.imap_port), timeout=2) as s:
                        s.settimeout(2)
                        line = _recv_line(s)
                elif self.imaps_port:
                    ctx = ssl.create_default_context()
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                    with socket.create_connection((HOST, self.imaps_port), timeout=2) as raw:
                        with ctx.wrap_socket(raw) as s:
                            s.settimeout(2)
                            line = _recv_line(s)
                else:
                    raise RuntimeError("no IMAP listener configured")
                if line.startswith(b"* OK"):
                    if self.admin_port:
                        wait_until(lambda: port_is_open(self.admin_port), max(
                            0.5, deadline - time.monotonic()), what="admin port")
                    return
                last_err = "unexpected greeting %r" % line
            except (OSError, ssl.SSLError, EOFError) as e:
                last_err = repr(e)
            time.sleep(0.05)
        raise RuntimeError("pimapd did not greet within %.1fs (%s):\n%s"
                           % (timeout, last_err, self.log()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=10.0):
        """SIGTERM and wait; returns the exit code (SIGKILL after the timeout)."""
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
                raise AssertionError("pimapd did not exit within %.1fs of SIGTERM" % timeout)
        self._close_log()
        return self.proc.returncode

    def stop(self):
        try:
            return self.terminate()
        except AssertionError:
            return None

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

    # -- clients
    def imap(self, user=None, password=None):
        import imaplib
        m = imaplib.IMAP4(HOST, self.imap_port, timeout=NET_TIMEOUT)
        if user:
            m.login(user, password or USERS[user.split("#")[0]])
        return m

    def imaps(self, ctx, user=None, password=None):
        import imaplib
        m = imaplib.IMAP4_SSL(HOST, self.imaps_port, ssl_context=ctx, timeout=NET_TIMEOUT)
        if user:
            m.login(user, password or USERS[user.split("#")[0]])
        return m

    def raw(self, tls_ctx=None):
        if tls_ctx is not None:
            return RawImap(HOST, self.imaps_port, tls_ctx=tls_ctx)
        return RawImap(HOST, self.imap_port)

    def metrics_text(self):
        with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, self.admin_port),
                                    timeout=NET_TIMEOUT) as r:
            assert r.status == 200, r.status
            return r.read().decode()

    def metrics(self):
        return parse_metrics(self.metrics_text())


# --------------------------------------------------------------------------- metrics

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)(\s+\d+)?$')


def parse_metrics(text):
    """Prometheus text -> {name: {shard_or_None: float}} (other labels are ignored)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, "malformed metrics line: %r" % line
        name, labels, value = m.group(1), m.group(3), float(m.group(4))
        shard = None
        if labels:
            lm = re.search(r'shard="([^"]*)"', labels)
            shard = lm.group(1) if lm else None
        out.setdefault(name, {})[shard] = value
    return out


# --------------------------------------------------------------------------- raw IMAP

def _recv_line(sock):
    buf = b""
    while not buf.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            raise EOFError("connection closed after %r" % buf)
        buf += c
    return buf


_LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}\r\n$")


class RawImap:
    """A line-oriented IMAP client over a plain or TLS socket, every wait with a timeout.

    readline() returns one response line including CRLF; when the line ends with a
    literal announcement {n}, the literal and the rest of the line are appended.
    """

    def __init__(self, host, port, tls_ctx=None, timeout=NET_TIMEOUT):
        self.timeout = timeout
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls_ctx is not None:
            sock = tls_ctx.wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.buf = b""
        self.greeting = self.readline()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out; buffered %r" % self.buf[:200])
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 16)
        except ssl.SSLZeroReturnError:  # TLS close_notify = orderly EOF
            chunk = b""
        if not chunk:
            raise EOFError("connection closed; buffered %r" % self.buf[:200])
        self.buf += chunk

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def readline(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        out = b""
        while True:
            while b"\n" not in self.buf:
                self._fill(deadline)
            i = self.buf.index(b"\n") + 1
            line, self.buf = self.buf[:i], self.buf[i:]
            out += line
            m = _LITERAL_AT_END.search(line)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill(deadline)
            out += self.buf[:n]
            self.buf = self.buf[n:]

    def read_eof(self, timeout=None):
        """Read until the peer closes; returns the bytes seen (raises on timeout)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                self._fill(deadline)
            except EOFError:
                data, self.buf = self.buf, b""
                return data
            except (ConnectionResetError, BrokenPipeError):
                data, self.buf = self.buf, b""
                return data

    def read_tagged(self, tag, timeout=None):
        """Lines up to and including the tagged completion: (untagged_lines, tagged_line)."""
        if isinstance(tag, str):
            tag = tag.encode()
        deadline = time.monotonic() + (timeout or self.timeout)
        untagged = []
        while True:
            line = self.readline(max(0.001, deadline - time.monotonic()))
            if line.startswith(tag + b" "):
                return untagged, line
            untagged.append(line)

    def cmd(self, tag, text, timeout=None):
        if isinstance(text, str):
            text = text.encode()
        self.send(tag.encode() + b" " + text + b"\r\n")
        return self.read_tagged(tag, timeout)

    def login(self, user, password, tag="L1"):
        _, t = self.cmd(tag, "LOGIN %s %s" % (quote(user), quote(password)))
        assert t.startswith(tag.encode() + b" OK"), t
        return t

    def capabilities(self, tag="C1"):
        untagged, t = self.cmd(tag, "CAPABILITY")
        assert t.startswith(tag.encode() + b" OK"), t
        caps = set()
        for line in untagged:
            if line.upper().startswith(b"* CAPABILITY "):
                caps.update(line[13:].decode().upper().split())
        return caps

    def starttls(self, ctx, host=HOST, tag="S1"):
        _, t = self.cmd(tag, "STARTTLS")
        assert t.startswith(tag.encode() + b" OK"), t
        assert self.buf == b"", "data after STARTTLS OK: %r" % self.buf
        self.sock = ctx.wrap_socket(self.sock, server_hostname=host)


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sasl_plain(user, password, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, user, password)).encode()).decode()


def caps_from_line(line):
    """The capability list in a '* OK [CAPABILITY ...]' or '* CAPABILITY ...' line."""
    if isinstance(line, bytes):
        line = line.decode(errors="replace")
    m = re.search(r"\[CAPABILITY ([^\]]*)\]", line, re.I)
    if m:
        return set(m.group(1).upper().split())
    m = re.match(r"\* CAPABILITY (.*)", line.strip(), re.I)
    return set(m.group(1).upper().split()) if m else set()


def forbidden_post_auth(caps):
    return sorted(c for c in caps if c in FORBIDDEN_POST_AUTH
                  or c.startswith(FORBIDDEN_POST_AUTH_PREFIXES))


def make_message(subject, body_bytes=b"hello\r\n", sender="sender@example.org",
                 to="alice@example.org"):
    return (b"From: " + sender.encode() + b"\r\n"
            b"To: " + to.encode() + b"\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@pimap.test>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=us-ascii\r\n"
            b"\r\n" + body_bytes)
