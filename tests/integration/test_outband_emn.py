"""Out-of-band wake-ups (issue 13) over SMS and WAP_PUSH: a P-IMAP device that chose
PIMAP_OUTBAND_CHANNEL SMS (or WAP_PUSH) and gave an MSISDN (or WAP Push address) as
PIMAP_OUTBAND_ADDRESS is woken, while it is away, by one JSON POST to the operator's
webhook (--emn-webhook) carrying an OMA EMN document; and XPROVISION, which tells a
device what the server serves.

The webhook sink is a Python http.server on loopback (plain http, allowed by
--outband-allow-private). It checks the X-Pimap-Signature HMAC with the shared secret
and decodes the WBXML with a small decoder of its own that follows WAP-192 and the EMN
1.0 token tables (below), independently of pimapd's encoder. Mail arrives by APPEND
through imaplib straight to the harness's Dovecot.

The user is carol; every test uses devices of its own, so nothing carries over.
"""

import base64
import calendar
import hashlib
import hmac
import http.server
import json
import os
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

import harness
from harness import make_message, ok, pimap_login, quote, untagged_kind, wait_until

pytestmark = pytest.mark.timeout(180)

USER = "carol"
SECRET = b"s3cret shared with the operator"
MAX_AGE = 20          # --outband-max-age, seconds
WAKE_WAIT = 15.0      # store event -> POST at the sink, with margin
QUIET = 4.0           # how long "nothing more arrives" is watched


# ----------------------------------------------------------------------------- WBXML

# WAP-192 global tokens and the EMN 1.0 code page 0 (OMA-Push-EMN-V1_0 §9).
END, STR_I, OPAQUE = 0x01, 0x03, 0xC3
EMN_TAGS = {0x05: "emn"}
EMN_ATTR_STARTS = {0x05: ("timestamp", ""), 0x06: ("mailbox", ""),
                   0x07: ("mailbox", "mailat:"), 0x08: ("mailbox", "pop://"),
                   0x09: ("mailbox", "imap://"), 0x0A: ("mailbox", "http://"),
                   0x0B: ("mailbox", "http://www."), 0x0C: ("mailbox", "https://"),
                   0x0D: ("mailbox", "https://www.")}
EMN_ATTR_VALUES = {0x85: ".com", 0x86: ".edu", 0x87: ".net", 0x88: ".org"}


def mb_u_int32(data, i):
    value = 0
    while True:
        b = data[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, i


def decode_emn_wbxml(data):
    """Returns (header dict, tag name, {attribute: value}); the timestamp's OPAQUE
    octets (two BCD digits each, trailing zero octets left out) as YYYY-MM-DDThh:mm:ssZ."""
    header = {"version": data[0]}
    i = 1
    header["public_id"], i = mb_u_int32(data, i)
    header["charset"], i = mb_u_int32(data, i)
    strtbl, i = mb_u_int32(data, i)
    i += strtbl
    tag = data[i]
    i += 1
    assert tag & 0x3F in EMN_TAGS, hex(tag)
    assert tag & 0x80, "emn carries its attributes"
    attrs = {}
    name = None
    while data[i] != END:
        t = data[i]
        i += 1
        if t < 0x80 and t in EMN_ATTR_STARTS:  # a new attribute
            name, prefix = EMN_ATTR_STARTS[t]
            attrs[name] = prefix
        elif t == STR_I:
            j = data.index(0, i)
            attrs[name] += data[i:j].decode("utf-8")
            i = j + 1
        elif t in EMN_ATTR_VALUES:
            attrs[name] += EMN_ATTR_VALUES[t]
        elif t == OPAQUE:
            n, i = mb_u_int32(data, i)
            octets = data[i:i + n] + bytes(7 - n)
            i += n
            digits = "".join("%d%d" % (b >> 4, b & 0x0F) for b in octets)
            attrs[name] += "%s-%s-%sT%s:%s:%sZ" % (digits[0:4], digits[4:6], digits[6:8],
                                                   digits[8:10], digits[10:12],
                                                   digits[12:14])
        else:
            raise AssertionError("unexpected token 0x%02x at %d" % (t, i - 1))
    i += 1
    if tag & 0x40:  # content: none expected in an EMN
        raise AssertionError("emn has content")
    assert i == len(data), (i, len(data))
    return header, EMN_TAGS[tag & 0x3F], attrs


def test_wbxml_decoder_on_the_spec_example():
    """The decoder itself, on a document written out by hand from the token table."""
    doc = bytes([0x03, 0x0D, 0x6A, 0x00, 0x85, 0x07, 0x03]) + b"joe@foo\x00" + bytes(
        [0x85, 0x05, 0xC3, 0x06, 0x20, 0x02, 0x04, 0x16, 0x06, 0x40, 0x01])
    header, tag, attrs = decode_emn_wbxml(doc)
    assert header == {"version": 0x03, "public_id": 0x0D, "charset": 106}
    assert tag == "emn"
    assert attrs == {"mailbox": "mailat:joe@foo.com", "timestamp": "2002-04-16T06:40:00Z"}


# ----------------------------------------------------------------------------- webhook

class WebhookSink:
    """POST /hook answers per a script of the JSON's address (a list of statuses),
    200 once it runs out; every request is recorded."""

    def __init__(self):
        self.requests = []  # (json dict, headers dict (lower-case names), raw body, time)
        self.scripts = {}
        self.lock = threading.Lock()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                doc = json.loads(body)
                with sink.lock:
                    sink.requests.append((doc, headers, body, time.monotonic()))
                    script = sink.scripts.get(doc.get("address"), [])
                    action = script.pop(0) if script else 200
                self.send_response(action)
                if action == 429 or action >= 500:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer((harness.HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://%s:%d/hook" % (harness.HOST, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def got(self, address):
        with self.lock:
            return [r for r in self.requests if r[0].get("address") == address]

    def wait_for(self, address, n, timeout=WAKE_WAIT):
        wait_until(lambda: len(self.got(address)) >= n, timeout,
                   what="%d webhook request(s) for %s" % (n, address))
        return self.got(address)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink():
    s = WebhookSink()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def secret_file(workdir):
    path = os.path.join(workdir, "emn-secret-%s" % uuid.uuid4().hex[:8])
    with open(path, "wb") as f:
        f.write(SECRET + b"\n")  # the trailing newline is not part of the key
    return path


def emn_args(sink, secret_file, *extra):
    return ["--emn-webhook", sink.url, "--emn-webhook-secret-file", secret_file,
            "--outband-allow-private", "--outband-max-age", "%ds" % MAX_AGE,
            "--outband-min-interval", "60s", "--outband-timeout", "2s"] + list(extra)


@pytest.fixture
def emn_gateway(start_pimap_gateway, sink, secret_file):
    return start_pimap_gateway(notification_filter="ALL", extra=emn_args(sink, secret_file))


def away(gateway, device, channel, address):
    """The device logs in, chooses `channel` and `address`, selects INBOX and goes away
    (the connection closes without LOGOUT)."""
    with gateway.raw() as c:
        pimap_login(c, "%s#%s" % (USER, device))
        ok(c.cmd("c", "XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL " + channel)[1], "c")
        ok(c.cmd("a", "XSETPIMAPPREF PIMAP_OUTBAND_ADDRESS " + quote(address))[1], "a")
        ok(c.cmd("sel", "SELECT INBOX")[1], "sel")
        # The user's store watch starts after the login; mail appended before it
        # has looked is its baseline, not news. Wait until it is there and has
        # had time to look (it is in IDLE within tens of ms).
        wait_until(lambda: gateway.metrics()["pimap_watch_connections"][None] >= 1,
                   5.0, what="the user's store watch")
        time.sleep(0.5)


def append(dovecot, subject):
    """New mail for carol: APPEND through imaplib straight to the store."""
    m = dovecot.imap(USER)
    try:
        typ, data = m.append("INBOX", None, None, make_message(subject))
        assert typ == "OK", data
    finally:
        m.logout()


def check_post(request, channel, address, content_type):
    """One webhook request as the operator's adapter sees it; returns the EMN bytes."""
    doc, headers, raw, _ = request
    assert headers["content-type"] == "application/json", headers
    want = "sha256=" + hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-pimap-signature"], want), headers
    assert set(doc) == {"channel", "address", "content_type", "body"}, doc
    assert doc["channel"] == channel, doc
    assert doc["address"] == address, doc
    assert doc["content_type"] == content_type, doc
    return base64.b64decode(doc["body"], validate=True)


def check_timestamp(stamp, before):
    t = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    assert before - 2 <= t <= time.time() + 2, (before, stamp)


# ----------------------------------------------------------------------------- tests

def test_sms_woken_once_then_coalesced_then_not_when_back(emn_gateway, sink, dovecot):
    address = "+1555%07d" % (uuid.uuid4().int % 10**7)
    away(emn_gateway, "emn-once", "SMS", address)
    before = time.time()
    appended = time.monotonic()
    append(dovecot, "wake me by sms")
    got = sink.wait_for(address, 1)
    print("\nEMN APPEND (imaplib, to Dovecot) -> POST at the sink: %.1f ms"
          % (1000 * (got[0][3] - appended)))
    emn = check_post(got[0], "SMS", address, "application/vnd.wap.emn+wbxml")
    header, tag, attrs = decode_emn_wbxml(emn)
    assert header == {"version": 0x03, "public_id": 0x0D, "charset": 106}, header
    assert tag == "emn"
    assert attrs["mailbox"] == "mailat:" + USER, attrs
    check_timestamp(attrs["timestamp"], before)

    # A burst while the wake-up is recent: coalesced (--outband-min-interval 60s).
    for i in range(3):
        append(dovecot, "burst %d" % i)
    time.sleep(QUIET)
    assert len(sink.got(address)) == 1, sink.got(address)
    m = emn_gateway.metrics()
    assert m["pimap_emn_sent_total"][None] == 1, m
    assert m["pimap_emn_latency_seconds_count"][None] == 1, m
    # The gateway's own part (pytest -s): event admitted -> the webhook's 2xx.
    print("EMN event admitted -> webhook 2xx (pimap_emn_latency_seconds): %.1f ms"
          % (1000 * m["pimap_emn_latency_seconds_sum"][None]))
    assert m["pimap_outband_coalesced_total"][None] >= 1, m

    # The device comes back (and stays): nothing out of band any more.
    with emn_gateway.raw() as c:
        pimap_login(c, "%s#emn-once" % USER)
        ok(c.cmd("sel", "SELECT INBOX")[1], "sel")
        append(dovecot, "while back")
        time.sleep(QUIET)
        assert len(sink.got(address)) == 1, sink.got(address)
        ok(c.cmd("n", "NOOP")[1], "n")


def test_server_error_then_ok_is_retried(emn_gateway, sink, dovecot):
    address = "+1666%07d" % (uuid.uuid4().int % 10**7)
    sink.scripts[address] = [500]
    away(emn_gateway, "emn-retry", "SMS", address)
    append(dovecot, "retry me")
    got = sink.wait_for(address, 2)
    # Retry-After: 1 honoured (not sooner); the same request again.
    assert got[1][3] - got[0][3] >= 0.9, (got[0][3], got[1][3])
    assert got[0][2] == got[1][2]
    check_post(got[1], "SMS", address, "application/vnd.wap.emn+wbxml")
    wait_until(lambda: emn_gateway.metrics()["pimap_emn_sent_total"][None] == 1,
               5.0, what="the retried wake-up counted as sent")
    m = emn_gateway.metrics()
    assert m["pimap_emn_retried_total"][None] >= 1, m
    time.sleep(2)
    assert len(sink.got(address)) == 2


def test_refused_is_failed_not_retried(emn_gateway, sink, dovecot):
    address = "+1888%07d" % (uuid.uuid4().int % 10**7)
    sink.scripts[address] = [400]
    away(emn_gateway, "emn-refused", "SMS", address)
    append(dovecot, "refused")
    sink.wait_for(address, 1)
    wait_until(lambda: emn_gateway.metrics()["pimap_emn_failed_total"][None] == 1,
               5.0, what="the 400 counted as failed")
    time.sleep(2)
    assert len(sink.got(address)) == 1
    m = emn_gateway.metrics()
    assert m["pimap_emn_retried_total"][None] == 0, m
    assert m["pimap_emn_sent_total"][None] == 0, m


def test_wap_push_text_form(start_pimap_gateway, sink, secret_file, dovecot):
    gateway = start_pimap_gateway(notification_filter="ALL",
                                  extra=emn_args(sink, secret_file, "--emn-format", "text"))
    address = "WAPPUSH=+1777%07d/TYPE=PLMN@ppg.example.net" % (uuid.uuid4().int % 10**7)
    away(gateway, "emn-wap", "WAP_PUSH", address)
    before = time.time()
    append(dovecot, "wake me by wap push")
    got = sink.wait_for(address, 1)
    emn = check_post(got[0], "WAP_PUSH", address, "text/vnd.wap.emn+xml")
    assert b"<!DOCTYPE emn PUBLIC \"-//WAPFORUM//DTD EMN 1.0//EN\"" in emn, emn
    root = ET.fromstring(emn)
    assert root.tag == "emn" and list(root) == [], emn
    assert root.get("mailbox") == "mailat:" + USER, emn
    check_timestamp(root.get("timestamp"), before)


def test_malformed_addresses_are_bad(emn_gateway):
    with emn_gateway.raw() as c:
        pimap_login(c, "%s#emn-bad" % USER)
        ok(c.cmd("c", "XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL SMS")[1], "c")
        for i, bad in enumerate(["joe smith", "+1 555 1234", "12", "WAPPUSH=+1555/TYPE=PLMN"]):
            _, t = c.cmd("b%d" % i, "XSETPIMAPPREF PIMAP_OUTBAND_ADDRESS " + quote(bad))
            assert t.startswith(b"b%d BAD" % i), (bad, t)
        ok(c.cmd("g", "XSETPIMAPPREF PIMAP_OUTBAND_ADDRESS +15551234567")[1], "g")
        # A WAP Push address is no SMS address; as WAP_PUSH's it is fine.
        ok(c.cmd("n", "XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL NONE")[1], "n")
        ok(c.cmd("w", "XSETPIMAPPREF PIMAP_OUTBAND_ADDRESS WAPPUSH=+1555/TYPE=PLMN")[1], "w")
        _, t = c.cmd("s", "XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL SMS")
        assert t.startswith(b"s BAD"), t
        ok(c.cmd("wp", "XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL WAP_PUSH")[1], "wp")
        ok(c.cmd("z", "LOGOUT")[1], "z")


# ----------------------------------------------------------------------------- XPROVISION

@pytest.fixture(scope="module")
def vapid_key(workdir):
    """(key path, public key) from tools/vapid-keygen, built next to pimapd."""
    keygen = os.path.join(os.path.dirname(harness.PIMAPD), "vapid-keygen")
    path = os.path.join(workdir, "vapid-emn-%s.pem" % uuid.uuid4().hex[:8])
    out = subprocess.run([keygen, path], check=True, capture_output=True, timeout=30)
    return path, out.stdout.decode().strip()


def provision_lines(untagged):
    return [x.decode().rstrip("\r\n") for x in untagged_kind(untagged, "XPROVISION")]


def test_xprovision_channels_without_key_over_plain(emn_gateway):
    with emn_gateway.raw() as c:
        caps = pimap_login(c, "%s#prov-plain" % USER)
        untagged, t = c.cmd("k", "CAPABILITY")
        ok(t, "k")
        assert b" XPROVISION" in b"".join(untagged), untagged
        untagged, t = c.cmd("p", "XPROVISION")
        ok(t, "p")
        lines = provision_lines(untagged)
        assert "* XPROVISION XPIMAPPREF PIMAP_OUTBAND_CHANNEL (SMS WAP_PUSH NONE)" in lines, \
            lines
        assert "* XPROVISION XPIMAPPREF PIMAP_EVENT_FILTER (ALL NONE NEW)" in lines, lines
        assert any(x.startswith("* XPROVISION XFILTER (ALL ANSWERED") for x in lines), lines
        assert not any("VAPID" in x for x in lines), lines
        # The device id, if given, is the login's.
        ok(c.cmd("q", "XPROVISION prov-plain")[1], "q")
        _, t = c.cmd("r", "XPROVISION other-device")
        assert t.startswith(b"r NO"), t
    # A regular (not P-IMAP) session advertises and serves it too (protocol.md
    # §2.2, R01 §3); it has no device id, so naming one gets NO.
    with emn_gateway.raw() as c:
        untagged, t = c.cmd("L", "LOGIN %s %s" % (USER, quote(harness.USERS[USER])))
        ok(t, "L")
        untagged, t = c.cmd("k", "CAPABILITY")
        assert b" XPROVISION" in b"".join(untagged), untagged
        untagged, t = c.cmd("p", "XPROVISION")
        ok(t, "p")
        assert "* XPROVISION XPIMAPPREF PIMAP_OUTBAND_CHANNEL (SMS WAP_PUSH NONE)" in \
            [x.decode().rstrip("\r\n") for x in untagged_kind(untagged, "XPROVISION")], \
            untagged
        _, t = c.cmd("q", "XPROVISION prov-plain")
        assert t.startswith(b"q NO"), t


def test_xprovision_key_only_over_tls(start_pimap_gateway, sink, secret_file, vapid_key,
                                      tls_cert, tls_client_ctx):
    gateway = start_pimap_gateway(
        notification_filter="ALL", tls=tls_cert,
        extra=emn_args(sink, secret_file, "--vapid-key", vapid_key[0],
                       "--vapid-subject", "mailto:ops@example.net", "--outband-udp"))
    with gateway.raw() as c:
        pimap_login(c, "%s#prov-tls" % USER)
        untagged, t = c.cmd("p", "XPROVISION")
        assert t.startswith(b"p NO [PRIVACYREQUIRED]"), t
        assert provision_lines(untagged) == [], untagged
    with gateway.raw(tls_ctx=tls_client_ctx) as c:
        pimap_login(c, "%s#prov-tls" % USER)
        untagged, t = c.cmd("p", "XPROVISION")
        ok(t, "p")
        lines = provision_lines(untagged)
        assert ("* XPROVISION XPIMAPPREF PIMAP_OUTBAND_CHANNEL "
                "(WEBPUSH SMS WAP_PUSH UDP NONE)") in lines, lines
        assert "* XPROVISION PIMAP_VAPID_KEY (%s)" % vapid_key[1] in lines, lines
