"""Out-of-band wake-ups (issue 13) over Web Push and UDP: a P-IMAP device that chose
PIMAP_OUTBAND_CHANNEL WEBPUSH and gave its PushSubscription as PIMAP_OUTBAND_ADDRESS is
woken through its push service when mail arrives while it is away; one that chose UDP
gets an OMA EMN datagram at its host:port.

The push service here is a Python HTTPS server on the test certificate (pimapd trusts it
with --outband-ca-file and may reach loopback with --outband-allow-private), and it also
plays the browser: it checks the VAPID JWT (RFC 8292) against the public key that
vapid-keygen printed, decrypts the aes128gcm payload (RFC 8291) with the subscription's
private key, and records TTL/Urgency/Topic. Python's `cryptography` (Debian
python3-cryptography) does the crypto, independently of pimapd's BoringSSL code.

The user is carol; every test uses devices of its own, so nothing carries over.
"""

import base64
import calendar
import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import uuid

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import harness
from harness import make_message, ok, pimap_login, quote, wait_until

pytestmark = pytest.mark.timeout(180)

USER = "carol"
SUBJECT = "mailto:ops@example.net"
MAX_AGE = 20          # --outband-max-age, seconds: also the TTL header
WAKE_WAIT = 15.0      # store event -> wake-up at the receiver, with margin
QUIET = 4.0           # how long "nothing more arrives" is watched


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ----------------------------------------------------------------------------- receiver

class Browser:
    """One PushSubscription: the browser's key pair and auth secret."""

    def __init__(self, endpoint):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        self.auth = os.urandom(16)
        self.endpoint = endpoint

    def subscription(self):
        return json.dumps({"endpoint": self.endpoint, "expirationTime": None,
                           "keys": {"p256dh": b64u(self.public), "auth": b64u(self.auth)}})

    def decrypt(self, body):
        """RFC 8291 §3.4 on the receiving side; returns the plaintext."""
        salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        assert rs >= 18 and idlen == 65, (rs, idlen)
        sender = body[21:21 + idlen]
        sealed = body[21 + idlen:]
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender)
        secret = self.key.exchange(ec.ECDH(), peer)
        ikm = HKDF(hashes.SHA256(), 32, self.auth,
                   b"WebPush: info\x00" + self.public + sender).derive(secret)
        cek = HKDF(hashes.SHA256(), 16, salt, b"Content-Encoding: aes128gcm\x00").derive(ikm)
        nonce = HKDF(hashes.SHA256(), 12, salt, b"Content-Encoding: nonce\x00").derive(ikm)
        plain = AESGCM(cek).decrypt(nonce, sealed, None).rstrip(b"\x00")
        assert plain.endswith(b"\x02"), plain  # the last (only) record
        return plain[:-1]


class PushService:
    """HTTPS push service: POST /push/<token> answers per a script of the token (a list
    of statuses, or "hang"), 201 once it runs out; every request is recorded."""

    def __init__(self, cert, key):
        self.requests = []  # (token, headers dict (lower-case names), body, time)
        self.scripts = {}
        self.connections = 0  # TLS connections accepted
        self.lock = threading.Lock()
        self.release = threading.Event()
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with service.lock:
                    service.connections += 1

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                token = self.path.rsplit("/", 1)[-1]
                headers = {k.lower(): v for k, v in self.headers.items()}
                with service.lock:
                    service.requests.append((token, headers, body, time.monotonic()))
                    script = service.scripts.get(token, [])
                    action = script.pop(0) if script else 201
                if action == "hang":
                    service.release.wait(60)  # never answers in time
                    self.close_connection = True
                    return
                if action == "close":  # 201, and this connection closes
                    self.send_response(201)
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    self.send_response(action)
                if action != "close" and (action == 429 or action >= 500):
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer((harness.HOST, 0), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def new_browser(self, host="localhost"):
        token = uuid.uuid4().hex
        browser = Browser("https://%s:%d/push/%s" % (host, self.port, token))
        browser.token = token
        return browser

    def got(self, token):
        with self.lock:
            return [r for r in self.requests if r[0] == token]

    def wait_for(self, token, n, timeout=WAKE_WAIT):
        wait_until(lambda: len(self.got(token)) >= n, timeout,
                   what="%d push request(s) for %s" % (n, token))
        return self.got(token)

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def push_service(tls_cert):
    s = PushService(*tls_cert)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def vapid_key(workdir):
    """(key path, public key) from tools/vapid-keygen, built next to pimapd."""
    keygen = os.path.join(os.path.dirname(harness.PIMAPD), "vapid-keygen")
    assert os.access(keygen, os.X_OK), "vapid-keygen not built next to pimapd: " + keygen
    path = os.path.join(workdir, "vapid-%s.pem" % uuid.uuid4().hex[:8])
    out = subprocess.run([keygen, path], check=True, capture_output=True, timeout=30)
    public = out.stdout.decode().strip()
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    # The printed key is the file's public key, in the browsers' base64url form.
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    assert unb64u(public) == key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert "=" not in public
    # Never over an existing key.
    again = subprocess.run([keygen, path], capture_output=True, timeout=30)
    assert again.returncode != 0
    return path, public


def outband_args(vapid_key, tls_cert, *extra, allow_private=True):
    args = ["--vapid-key", vapid_key[0], "--vapid-subject", SUBJECT,
            "--outband-ca-file", tls_cert[0], "--outband-max-age", "%ds" % MAX_AGE,
            "--outband-min-interval", "60s", "--outband-timeout", "2s", "--outband-udp"]
    if allow_private:
        args.append("--outband-allow-private")
    return args + list(extra)


@pytest.fixture
def outband_gateway(start_pimap_gateway, vapid_key, tls_cert):
    return start_pimap_gateway(notification_filter="ALL",
                               extra=outband_args(vapid_key, tls_cert))


# ----------------------------------------------------------------------------- device

def set_pref_literal(c, tag, name, value):
    data = value.encode()
    c.send("%s XSETPIMAPPREF %s {%d}\r\n" % (tag, name, len(data)))
    line = c.readline()
    assert line.startswith(b"+"), line
    c.send(data + b"\r\n")
    return c.read_tagged(tag)


def subscribe(gateway, device, browser, *setup, channel="WEBPUSH", address=None):
    """The device logs in, chooses WEBPUSH with `browser`'s subscription (or `channel`
    with `address`), runs `setup` commands, selects INBOX and goes away (the connection
    closes without LOGOUT)."""
    with gateway.raw() as c:
        pimap_login(c, "%s#%s" % (USER, device))
        ok(c.cmd("c", "XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL " + channel)[1], "c")
        ok(set_pref_literal(c, "a", "PIMAP_OUTBAND_ADDRESS",
                            address if address is not None else browser.subscription())[1],
           "a")
        for i, command in enumerate(setup):
            ok(c.cmd("s%d" % i, command)[1], "s%d" % i)
        ok(c.cmd("sel", "SELECT INBOX")[1], "sel")
        # The user's store watch starts with the first login; mail that comes
        # before it has looked is its baseline, not news, for a device already
        # away (as in test_outband_emn.py). Wait until it is there and has had
        # time to look (once per gateway: every test here uses one user).
        if not getattr(gateway, "watch_has_looked", False):
            wait_until(lambda: gateway.metrics()["pimap_watch_connections"][None] >= 1,
                       5.0, what="the user's store watch")
            time.sleep(0.5)
            gateway.watch_has_looked = True


def check_push(request, browser, vapid_key, port):
    """Checks one push request as the push service and the browser would; returns the
    decrypted wake-up."""
    _, headers, body, _ = request
    # VAPID (RFC 8292): "vapid t=<JWT>, k=<public key>", ES256 over the JWT.
    m = re.match(r"^vapid t=([^, ]+), k=([A-Za-z0-9_-]+)$", headers["authorization"])
    assert m, headers["authorization"]
    jwt, k = m.group(1), m.group(2)
    assert k == vapid_key[1]
    head, payload, sig = jwt.split(".")
    assert json.loads(unb64u(head)) == {"typ": "JWT", "alg": "ES256"}
    raw = unb64u(sig)
    assert len(raw) == 64, len(raw)
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64u(k))
    public.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                       int.from_bytes(raw[32:], "big")),
                  ("%s.%s" % (head, payload)).encode(), ec.ECDSA(hashes.SHA256()))
    claims = json.loads(unb64u(payload))
    assert claims["aud"] == "https://localhost:%d" % port, claims
    assert claims["sub"] == SUBJECT, claims
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600, claims
    # RFC 8030 headers.
    assert headers["ttl"] == str(MAX_AGE), headers
    assert headers["urgency"] == "high", headers
    assert re.match(r"^[A-Za-z0-9_-]{1,32}$", headers["topic"]), headers
    assert headers["content-encoding"] == "aes128gcm", headers
    return json.loads(browser.decrypt(body))


# ----------------------------------------------------------------------------- tests

def test_away_device_woken_once_then_coalesced_then_not_when_back(
        outband_gateway, push_service, dovecot, vapid_key):
    browser = push_service.new_browser()
    subscribe(outband_gateway, "wp-once", browser)
    dovecot.deliver(USER, make_message("wake me"))
    got = push_service.wait_for(browser.token, 1)
    wake = check_push(got[0], browser, vapid_key, push_service.port)
    store = dovecot.uid_flags(USER)
    assert wake["folder"] == "INBOX", wake
    assert wake["count"] >= 1, wake
    assert wake["uidnext"] == store[-1][0] + 1, (wake, store[-1])
    # --outband-payload minimal (the default): nothing about the message.
    assert set(wake) == {"folder", "count", "uidnext"}, wake
    assert "wake me" not in json.dumps(wake), wake

    # A burst while the wake-up is recent: coalesced (--outband-min-interval 60s).
    for i in range(5):
        dovecot.deliver(USER, make_message("burst %d" % i))
    time.sleep(QUIET)
    assert len(push_service.got(browser.token)) == 1, push_service.got(browser.token)
    m = outband_gateway.metrics()
    assert m["pimap_outband_coalesced_total"][None] >= 1, m
    assert m["pimap_webpush_sent_total"][None] == 1, m
    assert m["pimap_webpush_latency_seconds_count"][None] == 1, m
    # Its key agreement was made while it was away (the payload above decrypted
    # with it): the wake-up paid only the symmetric part.
    assert m["pimap_webpush_keys_ahead_total"][None] == 1, m

    # The device comes back (and stays): nothing out of band any more.
    with outband_gateway.raw() as c:
        pimap_login(c, "%s#wp-once" % USER)
        ok(c.cmd("sel", "SELECT INBOX")[1], "sel")
        dovecot.deliver(USER, make_message("while back"))
        time.sleep(QUIET)
        assert len(push_service.got(browser.token)) == 1, push_service.got(browser.token)
        _, t = c.cmd("n", "NOOP")
        ok(t, "n")


def test_wake_ups_reuse_connections(start_pimap_gateway, vapid_key, tls_cert,
                                    push_service, dovecot):
    """100 devices of one user away, one mail: 100 wake-ups to one origin go over
    HTTP/1.1 keep-alive connections from the shard's pool (at most 16 per origin),
    not one TLS handshake each. A response with "Connection: close" is honoured:
    that connection is not used again."""
    gateway = start_pimap_gateway(
        notification_filter="ALL",
        extra=outband_args(vapid_key, tls_cert, "--max-devices-per-user", "0"))
    browsers = [push_service.new_browser() for _ in range(100)]
    for i, browser in enumerate(browsers):
        subscribe(gateway, "wp-reuse-%d" % i, browser)
    # Connections the subscriptions' set-up may have left: none expected, counted.
    before = push_service.connections
    dovecot.deliver(USER, make_message("one mail, a hundred devices"))
    for browser in browsers:
        push_service.wait_for(browser.token, 1)
    used = push_service.connections - before
    assert 1 <= used <= 16, used
    # The receiver records a request before it answers: the count follows.
    wait_until(lambda: gateway.metrics()["pimap_webpush_sent_total"][None] == 100,
               5.0, what="100 wake-ups counted as sent")
    m = gateway.metrics()
    assert m.get("pimap_webpush_retried_total", {}).get(None, 0) == 0, m

    # The push service closes after its answer: the next wake-up needs a new
    # connection, and gets one.
    closing = push_service.new_browser()
    push_service.scripts[closing.token] = ["close"]
    after = push_service.new_browser()
    subscribe(gateway, "wp-reuse-closing", closing)
    dovecot.deliver(USER, make_message("answered with Connection: close"))
    push_service.wait_for(closing.token, 1)
    subscribe(gateway, "wp-reuse-after", after)
    dovecot.deliver(USER, make_message("after the close"))
    check_push(push_service.wait_for(after.token, 1)[0], after, vapid_key,
               push_service.port)
    wait_until(lambda: gateway.metrics()["pimap_webpush_sent_total"][None] == 102,
               5.0, what="both wake-ups counted as sent")


def test_topic_is_per_device(outband_gateway, push_service, dovecot, vapid_key):
    a, b = push_service.new_browser(), push_service.new_browser(host="127.0.0.1")
    subscribe(outband_gateway, "wp-topic-a", a)
    subscribe(outband_gateway, "wp-topic-b", b)
    dovecot.deliver(USER, make_message("two devices"))
    ra = push_service.wait_for(a.token, 1)[0]
    rb = push_service.wait_for(b.token, 1)[0]
    check_push(ra, a, vapid_key, push_service.port)
    assert ra[1]["topic"] != rb[1]["topic"], (ra[1], rb[1])
    # An IP-literal endpoint: the JWT's audience is that origin.
    claims = json.loads(unb64u(rb[1]["authorization"].split()[1][2:-1].split(".")[1]))
    assert claims["aud"] == "https://127.0.0.1:%d" % push_service.port, claims
    assert json.loads(b.decrypt(rb[2]))["folder"] == "INBOX"


def test_filters_that_reject_wake_nobody(outband_gateway, push_service, dovecot):
    control = push_service.new_browser()
    quiet_n = push_service.new_browser()
    quiet_e = push_service.new_browser()
    subscribe(outband_gateway, "wp-control", control)
    subscribe(outband_gateway, "wp-filter-n", quiet_n, "XFILTER INBOX N NONE")
    subscribe(outband_gateway, "wp-filter-e", quiet_e,
              "XSETPIMAPPREF PIMAP_EVENT_FILTER NONE")
    dovecot.deliver(USER, make_message("filtered out"))
    push_service.wait_for(control.token, 1)  # the event did reach the gateway
    time.sleep(QUIET)
    assert push_service.got(quiet_n.token) == []
    assert push_service.got(quiet_e.token) == []


def test_gone_subscription_is_removed(outband_gateway, push_service, dovecot):
    browser = push_service.new_browser()
    push_service.scripts[browser.token] = [410]
    subscribe(outband_gateway, "wp-gone", browser)
    dovecot.deliver(USER, make_message("to a gone subscription"))
    push_service.wait_for(browser.token, 1)
    wait_until(lambda: outband_gateway.metrics()
               .get("pimap_webpush_gone_total", {}).get(None, 0) == 1,
               5.0, what="the 410 counted")
    with outband_gateway.raw() as c:
        pimap_login(c, "%s#wp-gone" % USER)
        untagged, t = c.cmd("g", "XGETPIMAPPREF (PIMAP_OUTBAND_ADDRESS PIMAP_OUTBAND_CHANNEL)")
        ok(t, "g")
        line = b"".join(untagged)
        assert b'PIMAP_OUTBAND_ADDRESS ""' in line, untagged
        assert b"PIMAP_OUTBAND_CHANNEL WEBPUSH" in line, untagged
    # Away again with no address: no more attempts.
    dovecot.deliver(USER, make_message("after gone"))
    time.sleep(QUIET)
    assert len(push_service.got(browser.token)) == 1


def test_server_error_then_created_is_retried(outband_gateway, push_service, dovecot,
                                              vapid_key):
    browser = push_service.new_browser()
    push_service.scripts[browser.token] = [500]
    subscribe(outband_gateway, "wp-retry", browser)
    dovecot.deliver(USER, make_message("retry me"))
    got = push_service.wait_for(browser.token, 2)
    # Retry-After: 1 honoured (not sooner).
    assert got[1][3] - got[0][3] >= 0.9, (got[0][3], got[1][3])
    wakes = [check_push(r, browser, vapid_key, push_service.port) for r in got]
    assert wakes[0] == wakes[1], wakes  # the same message again
    m = outband_gateway.metrics()
    assert m["pimap_webpush_retried_total"][None] >= 1, m
    wait_until(lambda: outband_gateway.metrics()["pimap_webpush_sent_total"][None] == 1,
               5.0, what="the retried wake-up counted as sent")
    time.sleep(2)
    assert len(push_service.got(browser.token)) == 2


def test_hanging_push_service_is_bounded_and_others_unaffected(
        outband_gateway, push_service, dovecot):
    hanging = push_service.new_browser()
    push_service.scripts[hanging.token] = ["hang"] * 100
    healthy = push_service.new_browser()
    subscribe(outband_gateway, "wp-hang", hanging)
    subscribe(outband_gateway, "wp-healthy", healthy)
    start = time.monotonic()
    dovecot.deliver(USER, make_message("one hangs"))
    push_service.wait_for(healthy.token, 1)
    assert time.monotonic() - start < 8.0
    # --outband-timeout 2s: the hanging attempt is abandoned and tried again...
    push_service.wait_for(hanging.token, 2, timeout=WAKE_WAIT)
    assert outband_gateway.metrics()["pimap_webpush_retried_total"][None] >= 1
    # ...until --outband-max-age, then dropped and counted.
    wait_until(lambda: outband_gateway.metrics()
               .get("pimap_webpush_dropped_total", {}).get(None, 0) >= 1,
               MAX_AGE + 10.0, what="the hanging wake-up dropped")
    assert outband_gateway.running()


def test_private_endpoints_refused_by_default(start_pimap_gateway, vapid_key, tls_cert,
                                              push_service, dovecot):
    gateway = start_pimap_gateway(
        notification_filter="ALL",
        extra=outband_args(vapid_key, tls_cert, allow_private=False))
    browser = push_service.new_browser()
    subscribe(gateway, "wp-private", browser)
    dovecot.deliver(USER, make_message("ssrf"))
    wait_until(lambda: gateway.metrics()
               .get("pimap_webpush_failed_total", {}).get(None, 0) >= 1,
               WAKE_WAIT, what="the loopback endpoint refused")
    assert push_service.got(browser.token) == []
    assert "loopback or private" in gateway.log()


def test_udp_emn_datagram(outband_gateway, dovecot):
    """UDP: one datagram with the OMA EMN text per wake-up, coalesced like the rest."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind((harness.HOST, 0))
        rx.settimeout(WAKE_WAIT)
        subscribe(outband_gateway, "udp-1", None, channel="UDP",
                  address="127.0.0.1:%d" % rx.getsockname()[1])
        before = time.time()
        dovecot.deliver(USER, make_message("emn please"))
        data, _ = rx.recvfrom(2048)
        m = re.match(rb'^<emn mailbox="mailat:carol" '
                     rb'timestamp="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"></emn>$', data)
        assert m, data
        stamp = calendar.timegm(time.strptime(m.group(1).decode(), "%Y-%m-%dT%H:%M:%SZ"))
        assert before - 2 <= stamp <= time.time() + 2, (before, stamp)
        dovecot.deliver(USER, make_message("emn coalesced"))
        rx.settimeout(QUIET)
        with pytest.raises(socket.timeout):
            rx.recvfrom(2048)
    assert outband_gateway.metrics()["pimap_udp_sent_total"][None] == 1


def test_malformed_subscriptions_are_bad(outband_gateway, push_service):
    good = json.loads(push_service.new_browser().subscription())
    bad = [
        dict(good, endpoint=good["endpoint"].replace("https:", "http:")),
        dict(good, keys=dict(good["keys"], auth=b64u(b"short"))),
        dict(good, keys=dict(good["keys"], p256dh=b64u(b"\x04" + b"x" * 10))),
        {"endpoint": good["endpoint"]},
    ]
    with outband_gateway.raw() as c:
        pimap_login(c, "%s#wp-bad" % USER)
        ok(c.cmd("c", "XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL WEBPUSH")[1], "c")
        for i, sub in enumerate(bad):
            _, t = set_pref_literal(c, "b%d" % i, "PIMAP_OUTBAND_ADDRESS", json.dumps(sub))
            assert t.startswith(b"b%d BAD" % i), (sub, t)
        _, t = c.cmd("p", "XSETPIMAPPREF PIMAP_OUTBAND_ADDRESS %s" % quote("13335559999"))
        assert t.startswith(b"p BAD"), t
        _, t = c.cmd("z", "LOGOUT")


# ----------------------------------------------------------------------------- full payload

# Encoded-words as mail clients write them: RFC 2047 Q of UTF-8 (folded across two
# lines) and of ISO-8859-1; what the browser must read, decoded.
FULL_SUBJECT_RAW = "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n =?UTF-8?Q?_aus_Bonn?="
FULL_SUBJECT = "Grüße aus Bonn"
FULL_FROM_RAW = "=?ISO-8859-1?Q?J=FCrgen_M=FCller?= <juergen@example.org>"
FULL_FROM = "Jürgen Müller <juergen@example.org>"


def check_full_wake(wake, store, subject=FULL_SUBJECT, sender=FULL_FROM):
    newest = store[-1][0]
    assert wake["folder"] == "INBOX", wake
    assert wake["uidnext"] == newest + 1, (wake, store[-1])
    assert wake["uid"] == newest, (wake, store[-1])
    assert wake["subject"] == subject, wake
    assert wake["from"] == sender, wake


def assert_not_logged(gateway, *texts):
    log = gateway.log()
    for text in texts:
        assert text not in log, "%r is in the gateway's log" % text


def test_full_payload_notify_mode(start_pimap_gateway, vapid_key, tls_cert,
                                  push_service, dovecot):
    """--store-events notify (the default): the watch learns the Subject and From of
    the newest new message with one FETCH (BODY.PEEK: the mail stays unseen) and the
    wake-up shows them decoded. Debug logging on: still never in the log."""
    gateway = start_pimap_gateway(
        notification_filter="ALL",
        extra=outband_args(vapid_key, tls_cert, "--outband-payload", "full",
                           "--log-level", "debug"))
    browser = push_service.new_browser()
    subscribe(gateway, "wp-full-notify", browser)
    dovecot.deliver(USER, make_message(FULL_SUBJECT_RAW, sender=FULL_FROM_RAW))
    wake = check_push(push_service.wait_for(browser.token, 1)[0], browser, vapid_key,
                      push_service.port)
    store = dovecot.uid_flags(USER)
    check_full_wake(wake, store)
    assert "\\Seen" not in store[-1][1], store[-1]
    assert_not_logged(gateway, "Gr=C3=BC", "Grüße", "Müller", "M=FC", "juergen@")


def test_full_payload_notify_mode_other_folder(start_pimap_gateway, vapid_key, tls_cert,
                                               push_service, dovecot):
    """Mail filed into another folder (as by a Sieve rule): the watch learns it on an
    excursion and fetches the two fields while that folder is still open."""
    box = "Filed-%s" % uuid.uuid4().hex[:8]
    with dovecot.raw(USER) as s:
        ok(s.cmd("c", "CREATE " + quote(box))[1], "c")
    gateway = start_pimap_gateway(
        notification_filter="ALL",
        extra=outband_args(vapid_key, tls_cert, "--outband-payload", "full"))
    browser = push_service.new_browser()
    subscribe(gateway, "wp-full-folder", browser)
    uid = dovecot.append(USER, box, make_message(FULL_SUBJECT_RAW, sender=FULL_FROM_RAW))
    wake = check_push(push_service.wait_for(browser.token, 1)[0], browser, vapid_key,
                      push_service.port)
    assert wake["folder"] == box, wake
    assert wake["uid"] == uid and wake["uidnext"] == uid + 1, (wake, uid)
    assert wake["subject"] == FULL_SUBJECT and wake["from"] == FULL_FROM, wake
    assert "\\Seen" not in dovecot.uid_flags(USER, box)[-1][1]


def test_full_payload_push_mode(start_pimap_gateway, vapid_key, tls_cert, push_service,
                                push_dovecot, intake_args):
    """--store-events push: the store's MessageNew carries them (its subject decoded,
    its from raw); a long subject is cut to 256 bytes at a character boundary."""
    gateway = start_pimap_gateway(
        notification_filter="ALL", store=push_dovecot.store,
        extra=outband_args(vapid_key, tls_cert, "--outband-payload", "full",
                           "--store-events", "push", *intake_args))
    gateway.watch_has_looked = True  # push mode: no watch, no baseline to wait for
    browser = push_service.new_browser()
    subscribe(gateway, "wp-full-push", browser)
    push_dovecot.deliver(USER, make_message(FULL_SUBJECT_RAW, sender=FULL_FROM_RAW))
    wake = check_push(push_service.wait_for(browser.token, 1)[0], browser, vapid_key,
                      push_service.port)
    check_full_wake(wake, push_dovecot.uid_flags(USER))
    assert gateway.metrics()["pimap_watch_connections"][None] == 0

    # Another device, a long subject (200 x "ü" encoded: 400 bytes decoded).
    long_browser = push_service.new_browser()
    subscribe(gateway, "wp-full-long", long_browser)
    word = "=?UTF-8?Q?" + "=C3=BC" * 20 + "?="
    push_dovecot.deliver(USER, make_message("\r\n ".join([word] * 10),
                                            sender="plain@example.org"))
    wake = check_push(push_service.wait_for(long_browser.token, 1)[0], long_browser,
                      vapid_key, push_service.port)
    check_full_wake(wake, push_dovecot.uid_flags(USER), subject="ü" * 128,
                    sender="plain@example.org")
    assert_not_logged(gateway, "Grüße", "Müller", "juergen@", "üü")


def test_full_payload_push_mode_minimal_keeps_nothing(
        start_pimap_gateway, vapid_key, tls_cert, push_service, push_dovecot,
        intake_args):
    """The same store push with --outband-payload minimal: nothing about the message."""
    gateway = start_pimap_gateway(
        notification_filter="ALL", store=push_dovecot.store,
        extra=outband_args(vapid_key, tls_cert, "--store-events", "push", *intake_args))
    gateway.watch_has_looked = True
    browser = push_service.new_browser()
    subscribe(gateway, "wp-minimal-push", browser)
    push_dovecot.deliver(USER, make_message(FULL_SUBJECT_RAW, sender=FULL_FROM_RAW))
    wake = check_push(push_service.wait_for(browser.token, 1)[0], browser, vapid_key,
                      push_service.port)
    assert set(wake) == {"folder", "count", "uidnext"}, wake
