"""Process and protocol helpers for the pimapd integration tests.

Everything here runs with Debian's /usr/bin/python3 and the standard library only
(plus pytest in conftest.py). Nothing refers to files outside the repository.
"""

import base64
import ctypes
import os
import re
import secrets
import shlex
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
# (COMPRESS=DEFLATE is the gateway's own after login, not the store's passed through.)
FORBIDDEN_POST_AUTH_PREFIXES = ("AUTH=",)

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


def make_secret_file(path):
    """A fresh random shared secret in path (mode 0600); returns (secret, path)."""
    secret = secrets.token_hex(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret, path


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


# The gateways the tests start close idle pooled store links after 1 s
# (--store-link-idle): margin for doveadm and a busy machine.
LINK_IDLE_WAIT = 10.0


def wait_who(store, user, n, timeout=LINK_IDLE_WAIT, what=None):
    """Waits until `doveadm who` shows exactly n store connections of user."""
    last = []

    def pred():
        last[:] = [store.who(user)]
        return last[0] == n

    try:
        wait_until(pred, timeout, interval=0.2,
                   what=what or "%d store connection(s) of %s" % (n, user))
    except AssertionError as e:
        raise AssertionError("%s (doveadm who: %r)" % (e, last)) from None


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

    def __init__(self, state_dir=None, push_url=None, push_secret=None, tls=None,
                 public_namespace=False, rawlog=False):
        self.dir = state_dir or make_state_dir("pimap-dovecot-")
        self.imap_port, self.lmtp_port, imaps_port = free_ports(3)
        self.pid = None
        self.push_url = push_url  # store-event pushes to pimapd's intake (issue 5)
        self.push_secret = push_secret  # sent as X-Pimap-Secret
        # tls=(cert, key): STARTTLS on imap_port, implicit TLS on imaps_port.
        self.tls = tls
        self.imaps_port = imaps_port if tls else None
        # A public namespace "Public." shared by every user (tools/dovecot/up).
        self.public_namespace = public_namespace
        # Every IMAP session's traffic recorded (tools/dovecot/up; rawlog_in()).
        self.rawlog = rawlog

    def start(self):
        env = dict(os.environ)
        if self.public_namespace:
            env["PIMAP_PUBLIC_NAMESPACE"] = "1"
        if self.rawlog:
            env["PIMAP_STORE_RAWLOG"] = "1"
        if self.push_url:
            env["PIMAP_PUSH_URL"] = self.push_url
            env["PIMAP_PUSH_SECRET"] = self.push_secret or ""
        if self.tls:
            env["PIMAP_STORE_TLS_CERT"], env["PIMAP_STORE_TLS_KEY"] = self.tls
            env["PIMAP_IMAPS_PORT"] = str(self.imaps_port)
        r = subprocess.run([DOVECOT_UP, self.dir, str(self.imap_port), str(self.lmtp_port)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                           env=env)
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

    def rawlog_in(self):
        """What each IMAP session sent the store so far (rawlog=True): {file name: bytes}."""
        d = os.path.join(self.dir, "rawlog")
        out = {}
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if name.endswith(".in"):
                with open(os.path.join(d, name), "rb") as f:
                    out[name] = f.read()
        return out

    def imap(self, user="alice", password=None):
        """A direct (not through the gateway) logged-in imaplib connection."""
        import imaplib
        m = imaplib.IMAP4(HOST, self.imap_port, timeout=NET_TIMEOUT)
        m.login(user, password or USERS[user])
        return m

    def deliver(self, rcpt, message, sender="sender@example.org"):
        """Deliver a message with LMTP into rcpt's INBOX."""
        import smtplib
        with smtplib.LMTP(HOST, self.lmtp_port, timeout=NET_TIMEOUT) as lmtp:
            refused = lmtp.sendmail(sender, [rcpt], message)
            assert not refused, refused

    @property
    def conf_path(self):
        return os.path.join(self.dir, "dovecot.conf")

    def restart(self):
        """Stop and start again on the same state dir and ports (mail and UIDs kept)."""
        self.stop()
        wait_until(lambda: not port_is_open(self.imap_port), 10, what="store port closed")
        return self.start()

    def who(self, user):
        """Number of IMAP connections the store has open for user (doveadm who)."""
        return doveadm_who(self.conf_path, user)

    def raw(self, user="alice", password=None):
        """A direct (not through the gateway) logged-in RawImap connection to the store."""
        c = RawImap(HOST, self.imap_port)
        c.login(user, password or USERS[user])
        return c

    def uid_flags(self, user, box="INBOX"):
        """The store's [(uid, flags)] of box in MSN order, flags without \\Recent."""
        with self.raw(user) as c:
            untagged, t = c.cmd("x", "EXAMINE " + quote(box))
            assert t.startswith(b"x OK"), t
            if not any(re.match(rb"^\* [1-9]\d* EXISTS", x) for x in untagged):
                return []
            untagged, t = c.cmd("f", "FETCH 1:* (UID FLAGS)")
            assert t.startswith(b"f OK"), t
            return fetch_list(untagged)

    def append(self, user, box, message, flags="", date=None):
        """APPEND directly to the store; date = a datetime for INTERNALDATE. Returns the UID."""
        with self.raw(user) as c:
            return append(c, box, message, flags=flags, date=date)


def started_dovecot(state_dir, push_url=None, push_secret=None):
    """A private Dovecot in state_dir, started (push_url: its push_notification
    Lua driver posts store events there, with push_secret). The caller stops it."""
    d = Dovecot(state_dir, push_url=push_url, push_secret=push_secret)
    os.makedirs(d.dir, exist_ok=True)
    os.chmod(d.dir, 0o755)
    d.start()
    return d


def doveadm_who(conf_path, user):
    """Count the store's IMAP connections for user via `doveadm -c conf who -1 user`."""
    r = subprocess.run(["doveadm", "-c", conf_path, "who", "-1", user],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "doveadm who failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr)
    return sum(1 for line in r.stdout.splitlines()[1:] if line.split()[:1] == [user])


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
                 imap_port=None, admin_port=None, env=None):
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
        # PIMAPD_EXTRA_ARGS: flags for every pimapd of the run (e.g. a short
        # --park-after, to run a suite with stock clients parked between commands).
        args += shlex.split(os.environ.get("PIMAPD_EXTRA_ARGS", ""))
        args += list(extra)
        self.args = args
        self.env = env  # extra environment variables (e.g. systemd's NOTIFY_SOCKET)
        self.proc = None
        self._log = None

    # -- lifecycle
    def start(self, timeout=10.0):
        self._log = open(self.log_path, "ab")
        self._log.write(("$ %s\n" % " ".join(self.args)).encode())
        self._log.flush()
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, preexec_fn=_pdeathsig, env=env)
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

    def raw(self, tls_ctx=None, source=None):
        """source: the client's own address (e.g. "127.0.0.2": any 127/8
        address is local), for tests of what the gateway does with it."""
        if tls_ctx is not None:
            return RawImap(HOST, self.imaps_port, tls_ctx=tls_ctx, source=source)
        return RawImap(HOST, self.imap_port, source=source)

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
    """A line-oriented IMAP client over plain or TLS (SNI: sni or host), every wait timed.

    readline() returns one response line including CRLF; when the line ends with a
    literal announcement {n}, the literal and the rest of the line are appended.
    """

    def __init__(self, host, port, tls_ctx=None, timeout=NET_TIMEOUT, source=None, sni=None):
        self.timeout = timeout
        sock = socket.create_connection((host, port), timeout=timeout,
                                        source_address=(source, 0) if source else None)
        if tls_ctx is not None:
            sock = tls_ctx.wrap_socket(sock, server_hostname=sni or host)
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


# --------------------------------------------------------------------------- P-IMAP helpers

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def imap_date_time(dt):
    """RFC 3501 date-time of an aware or UTC-naive datetime (locale independent)."""
    import datetime
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    dt = dt.astimezone(datetime.timezone.utc)
    return '"%02d-%s-%04d %02d:%02d:%02d +0000"' % (dt.day, _MONTHS[dt.month - 1], dt.year,
                                                    dt.hour, dt.minute, dt.second)


def append(c, box, message, flags="", date=None, tag="ap"):
    """APPEND over a RawImap (synchronising literal); returns the APPENDUID UID or None."""
    head = "%s APPEND %s" % (tag, quote(box))
    if flags:
        head += " (%s)" % flags
    if date is not None:
        head += " " + imap_date_time(date)
    c.send(head + " {%d}\r\n" % len(message))
    line = c.readline()
    assert line.startswith(b"+"), line
    c.send(message + b"\r\n")
    _, t = c.read_tagged(tag)
    assert t.startswith(tag.encode() + b" OK"), t
    m = re.search(rb"\[APPENDUID \d+ (\d+)\]", t)
    return int(m.group(1)) if m else None


EXISTS_RE = re.compile(rb"^\* (\d+) EXISTS\r\n$", re.I)
EXPUNGE_RE = re.compile(rb"^\* (\d+) EXPUNGE\r\n$", re.I)
FETCH_RE = re.compile(rb"^\* (\d+) FETCH \((.*)\)\r\n$", re.I | re.S)
_UID_RE = re.compile(rb"(?:^|[ (])UID (\d+)", re.I)
_FLAGS_RE = re.compile(rb"(?:^|[ (])FLAGS \(([^)]*)\)", re.I)


def clean_flags(raw):
    """Flags of a FETCH as a frozenset, without the session-specific \\Recent."""
    if isinstance(raw, bytes):
        raw = raw.decode()
    return frozenset(f for f in raw.split() if f.lower() != "\\recent")


def parse_fetch(line):
    """'* n FETCH (...)' -> (msn, uid or None, flags frozenset or None); None if no FETCH."""
    m = FETCH_RE.match(line)
    if not m:
        return None
    body = m.group(2)
    u = _UID_RE.search(body)
    f = _FLAGS_RE.search(body)
    return (int(m.group(1)), int(u.group(1)) if u else None,
            clean_flags(f.group(1)) if f else None)


def fetch_list(untagged):
    """The [(uid, flags)] of a 'FETCH 1:* (UID FLAGS)' response in MSN order.

    Several FETCH lines for one MSN are merged (the last wins). Raises if the response
    carries EXPUNGE (forbidden during FETCH by MSN) or the MSNs are not 1..n."""
    by_msn = {}
    for line in untagged:
        assert not EXPUNGE_RE.match(line), "EXPUNGE during FETCH: %r" % untagged
        p = parse_fetch(line)
        if p is None:
            continue
        msn, uid, flags = p
        old = by_msn.get(msn, (None, None))
        if uid is not None and old[0] is not None:
            assert uid == old[0], "MSN %d reported as UID %d and %d" % (msn, old[0], uid)
        by_msn[msn] = (uid if uid is not None else old[0], flags if flags is not None else old[1])
    assert sorted(by_msn) == list(range(1, len(by_msn) + 1)), "MSNs not 1..n: %r" % untagged
    out = [by_msn[i] for i in range(1, len(by_msn) + 1)]
    assert all(u is not None and f is not None for u, f in out), untagged
    return out


class DeviceView:
    """What a P-IMAP device knows about its selected folder, replayed from the untagged
    responses it receives: UIDs in MSN order (None = announced by EXISTS, UID unknown) and
    flags per UID. apply() raises AssertionError on a response that cannot be right for the
    device (an MSN out of range, a FETCH naming a UID that is not at that MSN, a shrinking
    EXISTS)."""

    def __init__(self, entries=()):
        self.uids = [u for u, _ in entries]
        self.flags = {u: f for u, f in entries}
        self.resyncs = 0
        self.log = []

    def apply(self, line):
        self.log.append(line)
        if line.strip().upper() == b"* RESYNC":
            self.resyncs += 1
            self.uids = []  # the next EXISTS tells the size of the fresh view
            self.flags = {}
            return "resync"
        m = EXISTS_RE.match(line)
        if m:
            n = int(m.group(1))
            assert n >= len(self.uids), "EXISTS %d below the %d messages known: %r" % (
                n, len(self.uids), self.log)
            self.uids += [None] * (n - len(self.uids))
            return "exists"
        m = EXPUNGE_RE.match(line)
        if m:
            n = int(m.group(1))
            assert 1 <= n <= len(self.uids), "EXPUNGE %d with %d messages: %r" % (
                n, len(self.uids), self.log)
            u = self.uids.pop(n - 1)
            self.flags.pop(u, None)
            return "expunge"
        p = parse_fetch(line)
        if p:
            msn, uid, flags = p
            assert 1 <= msn <= len(self.uids), "FETCH %d with %d messages: %r" % (
                msn, len(self.uids), self.log)
            if uid is not None:
                known = self.uids[msn - 1]
                assert known is None or known == uid, (
                    "FETCH %d names UID %d but MSN %d is UID %d: %r"
                    % (msn, uid, msn, known, self.log))
                self.uids[msn - 1] = uid
            if flags is not None and self.uids[msn - 1] is not None:
                self.flags[self.uids[msn - 1]] = flags
            return "fetch"
        return None

    def apply_all(self, lines):
        return [k for k in (self.apply(x) for x in lines) if k]

    def assert_consistent_with(self, store):
        """Every UID and flag set the device knows equals the store's ([(uid, flags)])."""
        assert len(self.uids) == len(store), "device has %d messages, store %d\n%r\n%r" % (
            len(self.uids), len(store), self.uids, store)
        for i, (u, (su, sf)) in enumerate(zip(self.uids, store)):
            assert u is None or u == su, "MSN %d: device thinks UID %s, store has UID %d\n%r\n%r" % (
                i + 1, u, su, self.uids, store)
            if u is not None and u in self.flags:
                assert self.flags[u] == sf, "UID %d: device flags %s, store %s" % (
                    u, sorted(self.flags[u]), sorted(sf))


def read_lines(c, timeout, until=None):
    """Untagged lines read within timeout; stops early when until(line) is true.

    Returns (lines, matched)."""
    deadline = time.monotonic() + timeout
    lines = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return lines, False
        try:
            line = c.readline(timeout=remaining)
        except socket.timeout:
            return lines, False
        lines.append(line)
        if until is not None and until(line):
            return lines, True


def pimap_login(c, user, password=None, tag="L1"):
    """LOGIN user#device; asserts OK and returns the untagged lines."""
    untagged, t = c.cmd(tag, "LOGIN %s %s" % (quote(user), quote(
        password or USERS[user.split("#")[0]])))
    assert t.startswith(tag.encode() + b" OK"), (untagged, t)
    return untagged


def select_view(c, box="INBOX", tag="s"):
    """SELECT box, then FETCH 1:* (UID FLAGS): returns a DeviceView of the selection."""
    untagged, t = c.cmd(tag, "SELECT " + quote(box))
    assert t.startswith(tag.encode() + b" OK"), (untagged, t)
    n = [int(EXISTS_RE.match(x).group(1)) for x in untagged if EXISTS_RE.match(x)]
    assert n, untagged
    return DeviceView(device_fetch_all(c, expect=n[-1], tag=tag + "f"))


def device_fetch_all(c, expect=None, tag="fa"):
    """The device's full '[(uid, flags)]' through FETCH 1:* (UID FLAGS)."""
    if expect == 0:
        return []
    untagged, t = c.cmd(tag, "FETCH 1:* (UID FLAGS)")
    assert t.startswith(tag.encode() + b" OK"), (untagged, t)
    out = fetch_list(untagged)
    if expect is not None:
        assert len(out) == expect, (expect, untagged)
    return out


def untagged_kind(lines, word):
    """Lines of '* WORD ...' (case-insensitive) among lines."""
    w = word.upper().encode()
    return [x for x in lines if x.upper().startswith(b"* " + w + b" ") or
            x.upper().rstrip() == b"* " + w]


def ok(t, tag):
    assert t.startswith(tag.encode() + b" OK"), t


def start_idle(c, tag="i"):
    c.send(tag + " IDLE\r\n")
    line = c.readline()
    assert line.startswith(b"+"), line


def end_idle(c, tag="i"):
    c.send("DONE\r\n")
    untagged, t = c.read_tagged(tag)
    ok(t, tag)
    return untagged


def ensure_messages(dovecot, user, n):
    """Deliver until user's INBOX holds at least n messages (store view)."""
    have = len(dovecot.uid_flags(user))
    for k in range(have, n):
        dovecot.deliver(user, make_message("filler %d" % k, to=user + "@example.org"))


def store_flag(dovecot, user, uid, flag="\\Flagged", box="INBOX"):
    with dovecot.raw(user) as s:
        _, t = s.cmd("s", "SELECT " + quote(box))
        ok(t, "s")
        _, t = s.cmd("f", "UID STORE %d +FLAGS (%s)" % (uid, flag))
        ok(t, "f")


def store_expunge(dovecot, user, uid, box="INBOX"):
    with dovecot.raw(user) as s:
        _, t = s.cmd("s", "SELECT " + quote(box))
        ok(t, "s")
        _, t = s.cmd("d", "UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)
        ok(t, "d")
        _, t = s.cmd("e", "UID EXPUNGE %d" % uid)
        ok(t, "e")


def resume_parts(untagged):
    """Split a resume LOGIN response: (session state or None, folder or None, other lines)."""
    state = folder = None
    rest = []
    for line in untagged:
        u = line.rstrip(b"\r\n")
        if u.upper().startswith(b"* SESSION "):
            assert state is None, "two SESSION lines: %r" % untagged
            state = u[10:].decode().upper()
        elif u.upper().startswith(b"* FOLDER "):
            folder = u[9:].decode()
        else:
            rest.append(line)
    return state, folder, rest
