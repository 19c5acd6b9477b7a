"""XDELIVER (issue 15 item 1, protocol.md §3.6, docs/xdeliver.md): a P-IMAP device
sends, replies and forwards through the gateway, which submits over SMTP to
--smtp. The MTA is Python's aiosmtpd on loopback as a capturing sink whose
answers a test can set (a refused recipient, a 4xx at the end of DATA). The
captured message is checked with Python's `email` package: MIME structure, the
quoted original, attachments byte for byte against the original in Dovecot, no
Bcc header; the store is checked for the SAVETO copy (APPENDUID) and the
original's \\Answered / $Forwarded, and for their absence when SMTP refused.

The user is carol (login name without '@': she sends as carol@example.org by
--smtp-sender-domain); every test uses folders of its own.
"""

import email
import email.policy
import re
import threading

import pytest

import harness
from harness import ok, pimap_login, quote, unique_name

pytestmark = pytest.mark.timeout(180)

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

USER = "carol"
SENDER = "carol@example.org"


class Sink:
    """aiosmtpd handler: keeps every accepted envelope; `refuse_rcpt` and
    `data_reply` make it answer as a refusing MTA would."""

    def __init__(self):
        self.envelopes = []
        self.refuse_rcpt = set()
        self.data_reply = None
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_rcpt:
            return "550 5.1.1 <%s>: Recipient address rejected" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos),
                                   bytes(envelope.original_content)))
        return "250 2.0.0 Ok: queued"

    def taken(self):
        with self.lock:
            return list(self.envelopes)


@pytest.fixture
def sink():
    port = harness.free_ports(1)[0]
    handler = Sink()
    controller = aiosmtpd_controller.Controller(handler, hostname=harness.HOST, port=port)
    controller.start()
    handler.port = port
    yield handler
    controller.stop()


@pytest.fixture
def gw(start_pimap_gateway, sink):
    return start_pimap_gateway(extra=["--smtp", "%s:%d" % (harness.HOST, sink.port),
                                      "--smtp-sender-domain", "example.org",
                                      "--smtp-timeout", "20s"])


def device(gw, name=None):
    c = gw.raw()
    pimap_login(c, "%s#%s" % (USER, name or unique_name("xd")))
    return c


def xdeliver(c, tag, args, message):
    """XDELIVER with a non-synchronising literal; returns the tagged line."""
    c.send(("%s XDELIVER %s {%d+}\r\n" % (tag, args, len(message))).encode() + message + b"\r\n")
    untagged, t = c.read_tagged(tag)
    # R06: XDELIVER causes no untagged response.
    assert untagged == [], untagged
    return t


def create(dovecot, box):
    with dovecot.raw(USER) as c:
        _, t = c.cmd("c", "CREATE " + quote(box))
        ok(t, "c")


def count(dovecot, box):
    return len(dovecot.uid_flags(USER, box))


ORIGINAL_PNG = bytes(range(256)) * 8  # binary, base64 in the message


def original_message():
    import base64
    b64 = base64.encodebytes(ORIGINAL_PNG).replace(b"\n", b"\r\n")
    return (b"From: Ann <ann@example.net>\r\n"
            b"To: carol@example.org\r\n"
            b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
            b"Subject: plans\r\n"
            b"Message-ID: <orig-" + unique_name("m").encode() + b"@example.net>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
            b"\r\n"
            b"--b1\r\n"
            b"Content-Type: text/plain; charset=us-ascii\r\n"
            b"\r\n"
            b"Meet at 3?\r\n"
            b".A line with a leading dot\r\n"
            b"--b1\r\n"
            b"Content-Type: image/png; name=a.png\r\n"
            b"Content-Disposition: attachment; filename=a.png\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"\r\n" + b64 +
            b"--b1--\r\n")


def leaf_entity(data, n):
    """The n-th (0-based) part of the multipart message `data`: header and body,
    the bytes between its delimiter line and the CRLF before the next one."""
    head, body = data.split(b"\r\n\r\n", 1)
    boundary = b"--" + re.search(rb'boundary="?([^";\r\n]+)"?', head).group(1)
    chunks = (b"\r\n" + body).split(b"\r\n" + boundary)
    return chunks[1 + n][2:]  # past the delimiter line's CRLF


def test_advertised_and_needs_smtp(gw, sink, start_pimap_gateway):
    c = device(gw)
    assert "XDELIVER" in c.capabilities()
    # A regular session has it too (R01 §3): see the relayed tests below.
    with gw.raw() as r:
        r.login(USER, harness.USERS[USER])
        assert "XDELIVER" in r.capabilities()
    # Without --smtp: not advertised, NO.
    plain = start_pimap_gateway()
    d = device(plain)
    assert "XDELIVER" not in d.capabilities()
    t = xdeliver(d, "x", "N", b"To: a@example.net\r\n\r\nhi\r\n")
    assert t.startswith(b"x NO"), t
    with plain.raw() as r:
        r.login(USER, harness.USERS[USER])
        assert "XDELIVER" not in r.capabilities()
        t = xdeliver(r, "x", "N", b"To: a@example.net\r\n\r\nhi\r\n")
        assert t.startswith(b"x NO [CANNOT]"), t
    # Not authenticated: refused (never an open relay).
    with gw.raw() as r:
        _, t = r.cmd("y", "XDELIVER N {25+}\r\nTo: a@example.net\r\n\r\nx\r\n")
        assert t.startswith(b"y BAD") or t.startswith(b"y NO"), t
    assert sink.taken() == []


def test_new_with_saveto_and_bcc(gw, sink, dovecot):
    sent = unique_name("Sent")
    create(dovecot, sent)
    c = device(gw)
    message = (b"From: Carol <carol@example.org>\r\n"
               b"To: Ann <ann@example.net>, bob@example.net\r\n"
               b"Cc: cc@example.net\r\n"
               b"Bcc: hidden@example.net\r\n"
               b"Subject: afternoon meeting\r\n"
               b"\r\n"
               b"Hello, 3:30?\r\n"
               b".dot\r\n")
    t = xdeliver(c, "a1", "N SAVETO=%s" % sent, message)
    m = re.match(rb"a1 OK \[APPENDUID (\d+) (\d+)\]", t)
    assert m, t
    [(mail_from, rcpts, data)] = sink.taken()
    assert mail_from == SENDER
    assert sorted(rcpts) == sorted(["ann@example.net", "bob@example.net",
                                    "cc@example.net", "hidden@example.net"])
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Bcc"] is None and b"hidden@" not in data.split(b"\r\n\r\n")[0]
    assert msg["Subject"] == "afternoon meeting"
    assert msg.get_content().replace("\r\n", "\n") == "Hello, 3:30?\n.dot\n"
    # The copy is in the store under the UID the OK gave, as sent.
    uid = int(m.group(2))
    flags = dict(dovecot.uid_flags(USER, sent))
    assert uid in flags and "\\Seen" in flags[uid]
    with dovecot.raw(USER) as r:
        r.cmd("e", "EXAMINE " + quote(sent))
        untagged, t = r.cmd("f", "UID FETCH %d BODY.PEEK[]" % uid)
        ok(t, "f")
        assert b"afternoon meeting" in b"".join(untagged)


def test_reply_quotes_and_attaches(gw, sink, dovecot):
    box = unique_name("Orig")
    create(dovecot, box)
    original = original_message()
    uid = dovecot.append(USER, box, original)
    c = device(gw)
    _, t = c.cmd("s", "SELECT " + quote(box))
    ok(t, "s")
    t = xdeliver(c, "r1", "R %d Y" % uid,
                 b"To: ann@example.net\r\nSubject: Re: plans\r\n"
                 b"Content-Type: text/plain; charset=us-ascii\r\n\r\nYes, 3 it is.\r\n")
    assert t.startswith(b"r1 OK"), t
    [(mail_from, rcpts, data)] = sink.taken()
    assert rcpts == ["ann@example.net"]
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "image/png"]
    text = parts[0].get_content().replace("\r\n", "\n")
    assert text.startswith("Yes, 3 it is.\n")
    assert "Ann <ann@example.net> wrote:" in text
    assert "> Meet at 3?\n> .A line with a leading dot\n" in text
    # The attachment: the very bytes of the original's part, decoded and raw.
    assert parts[1].get_content() == ORIGINAL_PNG
    # ... and the part as a whole, MIME header included, as the store holds it.
    with dovecot.raw(USER) as r:
        r.cmd("e", "EXAMINE " + quote(box))
        untagged, t = r.cmd("f", "UID FETCH %d (BODY.PEEK[])" % uid)
        ok(t, "f")
    entity = original[original.index(b"Content-Type: image/png"):original.rindex(b"\r\n--b1--")]
    assert entity in b"".join(untagged)
    assert leaf_entity(data, 1) == entity
    # \Answered on the original, afterwards.
    assert "\\Answered" in dict(dovecot.uid_flags(USER, box))[uid]


def test_forward_from_another_folder(gw, sink, dovecot):
    box = unique_name("Orig")
    create(dovecot, box)
    uid = dovecot.append(USER, box, original_message())
    c = device(gw)
    _, t = c.cmd("s", "SELECT INBOX")
    ok(t, "s")
    t = xdeliver(c, "f1", "F %s %d N" % (quote(box), uid),
                 b"To: dan@example.net\r\nSubject: Fwd: plans\r\n\r\nFYI\r\n")
    assert t.startswith(b"f1 OK"), t
    [(_, rcpts, data)] = sink.taken()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg.get_content_type() == "text/plain"  # N: no attachments
    text = msg.get_content().replace("\r\n", "\n")
    assert "-------- Forwarded Message --------" in text and "> Meet at 3?" in text
    assert "$Forwarded" in dict(dovecot.uid_flags(USER, box))[uid]
    # The device's own folder is still the selected one.
    _, t = c.cmd("n", "NOOP")
    ok(t, "n")
    _, t = c.cmd("u", "UID FETCH 1:* (FLAGS)")
    ok(t, "u")


def test_smtp_refusals_leave_nothing(gw, sink, dovecot):
    sent = unique_name("Sent")
    create(dovecot, sent)
    box = unique_name("Orig")
    create(dovecot, box)
    uid = dovecot.append(USER, box, original_message())
    c = device(gw)
    _, t = c.cmd("s", "SELECT " + quote(box))
    ok(t, "s")
    sink.refuse_rcpt.add("nobody@example.net")
    t = xdeliver(c, "n1", "R %d N SAVETO=%s" % (uid, sent),
                 b"To: ann@example.net, nobody@example.net\r\n\r\nhi\r\n")
    assert t.startswith(b"n1 NO") and b"550 5.1.1" in t, t
    sink.refuse_rcpt.clear()
    sink.data_reply = "451 4.3.0 Try again later"
    t = xdeliver(c, "n2", "N SAVETO=%s" % sent, b"To: ann@example.net\r\n\r\nhi\r\n")
    assert t.startswith(b"n2 NO") and b"451 4.3.0 Try again later" in t, t
    assert sink.taken() == []
    assert count(dovecot, sent) == 0
    assert "\\Answered" not in dict(dovecot.uid_flags(USER, box))[uid]
    # The session goes on.
    sink.data_reply = None
    t = xdeliver(c, "n3", "N", b"To: ann@example.net\r\n\r\nhi\r\n")
    assert t.startswith(b"n3 OK"), t


def test_sender_rule_and_bad_arguments(gw, sink):
    c = device(gw)
    t = xdeliver(c, "s1", "N", b"From: boss@example.org\r\nTo: a@example.net\r\n\r\nx\r\n")
    assert t.startswith(b"s1 NO") and SENDER.encode() in t, t
    t = xdeliver(c, "s2", "N", b"Subject: nobody\r\n\r\nx\r\n")
    assert t.startswith(b"s2 NO"), t
    t = xdeliver(c, "s3", "Q 5 Y", b"To: a@example.net\r\n\r\nx\r\n")
    assert t.startswith(b"s3 BAD"), t
    # R without a selected mailbox and without one named.
    t = xdeliver(c, "s4", "R 5 Y", b"To: a@example.net\r\n\r\nx\r\n")
    assert t.startswith(b"s4 BAD"), t
    t = xdeliver(c, "s5", "R INBOX 999999 Y", b"To: a@example.net\r\n\r\nx\r\n")
    assert t.startswith(b"s5 NO"), t
    assert sink.taken() == []
    # Without From: the gateway puts the user's.
    t = xdeliver(c, "s6", "N", b"To: a@example.net\r\n\r\nx\r\n")
    assert t.startswith(b"s6 OK"), t
    [(_, _, data)] = sink.taken()
    assert data.startswith(b"From: <carol@example.org>\r\n")


# ---- A regular (relayed) session: the gateway runs XDELIVER itself.


def regular(gw):
    c = gw.raw()
    c.login(USER, harness.USERS[USER])
    return c


def xdeliver_relayed(c, tag, args, message):
    """XDELIVER in a regular session; returns (untagged, tagged line): the
    store's news for the client may pass meanwhile."""
    c.send(("%s XDELIVER %s {%d+}\r\n" % (tag, args, len(message))).encode() + message + b"\r\n")
    return c.read_tagged(tag)


def test_regular_session_new_with_saveto(gw, sink, dovecot):
    sent = unique_name("Sent")
    create(dovecot, sent)
    with regular(gw) as c:
        untagged, t = c.cmd("c", "CAPABILITY")
        ok(t, "c")
        assert b" XDELIVER" in b"".join(untagged)
        message = (b"To: Ann <ann@example.net>\r\nBcc: hidden@example.net\r\n"
                   b"Subject: relayed\r\n\r\nHello from a stock client\r\n")
        untagged, t = xdeliver_relayed(c, "a1", "N SAVETO=%s" % sent, message)
        m = re.match(rb"a1 OK \[APPENDUID (\d+) (\d+)\]", t)
        assert m, t
        assert untagged == []
        [(mail_from, rcpts, data)] = sink.taken()
        assert mail_from == SENDER
        assert sorted(rcpts) == ["ann@example.net", "hidden@example.net"]
        assert b"hidden@" not in data.split(b"\r\n\r\n")[0]
        assert int(m.group(2)) in dict(dovecot.uid_flags(USER, sent))
        # The session is relayed as before.
        _, t = c.cmd("s", "STATUS %s (MESSAGES)" % quote(sent))
        ok(t, "s")


def test_regular_session_reply_in_selected_folder(gw, sink, dovecot):
    box = unique_name("Orig")
    create(dovecot, box)
    original = original_message()
    uid = dovecot.append(USER, box, original)
    with regular(gw) as c:
        _, t = c.cmd("s", "SELECT " + quote(box))
        ok(t, "s")
        untagged, t = xdeliver_relayed(
            c, "r1", "R %d Y" % uid,
            b"To: ann@example.net\r\nSubject: Re: plans\r\n\r\nYes.\r\n")
        assert t.startswith(b"r1 OK"), t
        # The original's body never reaches the client; its new flag does (the
        # store's FETCH, which keeps a stock client's cache in step).
        joined = b"".join(untagged)
        assert b"BODY[]" not in joined, joined
        assert b"\\Answered" in joined, untagged
        [(_, rcpts, data)] = sink.taken()
        msg = email.message_from_bytes(data, policy=email.policy.default)
        parts = list(msg.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "image/png"]
        assert parts[1].get_content() == ORIGINAL_PNG
        assert "> Meet at 3?" in parts[0].get_content()
        assert "\\Answered" in dict(dovecot.uid_flags(USER, box))[uid]
        # New mail meanwhile still reaches the client through the relay.
        dovecot.append(USER, box, b"Subject: later\r\n\r\nx\r\n")
        untagged, t = c.cmd("n", "NOOP")
        ok(t, "n")
        assert b"2 EXISTS" in b"".join(untagged), untagged


def test_regular_session_refusals(gw, sink, dovecot):
    sent = unique_name("Sent")
    create(dovecot, sent)
    box = unique_name("Orig")
    create(dovecot, box)
    uid = dovecot.append(USER, box, original_message())
    with regular(gw) as c:
        # The original in a mailbox other than the selected one: read and
        # flagged on a pooled link; the client's own stays in its mailbox.
        _, t = c.cmd("s", "SELECT INBOX")
        ok(t, "s")
        untagged, t = xdeliver_relayed(c, "o1", "F %s %d N" % (quote(box), uid),
                                       b"To: dan@example.net\r\n\r\nFYI\r\n")
        assert t.startswith(b"o1 OK"), t
        assert untagged == [], untagged  # nothing of the other mailbox
        assert "$Forwarded" in dict(dovecot.uid_flags(USER, box))[uid]
        [(_, _, data)] = sink.taken()
        assert b"> Meet at 3?" in data
        untagged, t = c.cmd("st", "STATUS INBOX (MESSAGES)")
        ok(t, "st")
        _, t = c.cmd("cl", "CLOSE")  # INBOX is still the client's selected one
        ok(t, "cl")
        _, t = c.cmd("s1", "SELECT INBOX")
        ok(t, "s1")
        _, t = xdeliver_relayed(c, "o2", "R 999999 Y", b"To: a@example.net\r\n\r\nx\r\n")
        assert t.startswith(b"o2 NO [NONEXISTENT]"), t  # no such UID in INBOX
        # Named explicitly, the selected mailbox is the client's own link's.
        _, t = c.cmd("s2", "SELECT " + quote(box))
        ok(t, "s2")
        _, t = xdeliver_relayed(c, "o3", "R %s %d N" % (quote(box), uid),
                                b"To: dan@example.net\r\n\r\nRe\r\n")
        assert t.startswith(b"o3 OK"), t
        assert "\\Answered" in dict(dovecot.uid_flags(USER, box))[uid]
        # SMTP refuses: NO with the MTA's words, no copy.
        sink.data_reply = "451 4.3.0 Try again later"
        _, t = xdeliver_relayed(c, "n1", "N SAVETO=%s" % sent,
                                b"To: ann@example.net\r\n\r\nhi\r\n")
        assert t.startswith(b"n1 NO") and b"451 4.3.0" in t, t
        assert count(dovecot, sent) == 0
        _, t = xdeliver_relayed(c, "b1", "Q 5 Y", b"To: a@example.net\r\n\r\nx\r\n")
        assert t.startswith(b"b1 BAD"), t
        _, t = c.cmd("n", "NOOP")
        ok(t, "n")
    assert len(sink.taken()) == 2


def test_regular_session_large_message(gw, sink):
    """A message past the 64 KiB a gateway's own command is otherwise bounded by
    (--xdeliver-max-bytes applies to XDELIVER in a regular session too)."""
    body = (b"x" * 998 + b"\r\n") * 300
    with regular(gw) as c:
        untagged, t = xdeliver_relayed(
            c, "l1", "N", b"To: ann@example.net\r\nSubject: big\r\n\r\n" + body)
        assert t.startswith(b"l1 OK"), t
    [(_, _, data)] = sink.taken()
    assert data.endswith(body)


def test_over_the_http_binding(start_pimap_gateway, sink):
    """The HTTP binding runs P-IMAP sessions on the same engine: XDELIVER works
    there too (one POST carries the command and its literal)."""
    from http_client import http_session
    port = harness.free_ports(1)[0]
    gw = start_pimap_gateway(extra=["--smtp", "%s:%d" % (harness.HOST, sink.port),
                                    "--smtp-sender-domain", "example.org",
                                    "--http-listen", "%s:%d" % (harness.HOST, port)])
    harness.wait_until(lambda: harness.port_is_open(port), 5, what="http port")
    c, _ = http_session(port, USER, unique_name("hx"))
    with c:
        r = c.post("c CAPABILITY\r\n")
        assert b"XDELIVER" in r.body, r.body
        message = b"To: ann@example.net\r\nSubject: over http\r\n\r\nhi\r\n"
        r = c.post(b"x XDELIVER N {%d+}\r\n" % len(message) + message + b"\r\n")
        assert r.tagged("x").startswith(b"x OK"), r.body
    [(mail_from, rcpts, data)] = sink.taken()
    assert mail_from == SENDER and rcpts == ["ann@example.net"]
    assert b"Subject: over http" in data


def test_starttls_and_auth_plain(start_pimap_gateway, tls_cert, workdir):
    """--smtp-starttls (the MTA's certificate checked against --smtp-ca-file) and
    AUTH PLAIN with --smtp-auth-user: the sink requires both before MAIL."""
    import os
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_cert[0], tls_cert[1])
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult
        logins.append((mechanism, auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"relaypw")

    handler = Sink()
    port = harness.free_ports(1)[0]
    controller = aiosmtpd_controller.Controller(
        handler, hostname=harness.HOST, port=port, tls_context=ctx,
        require_starttls=True, auth_required=True, authenticator=authenticator)
    controller.start()
    try:
        pw = os.path.join(workdir, "smtp.pw")
        with open(pw, "w") as f:
            f.write("relaypw\n")
        gw = start_pimap_gateway(extra=[
            "--smtp", "%s:%d" % (harness.HOST, port), "--smtp-starttls",
            "--smtp-ca-file", tls_cert[0], "--smtp-auth-user", "gateway",
            "--smtp-auth-password-file", pw, "--smtp-sender-domain", "example.org"])
        c = device(gw)
        t = xdeliver(c, "t1", "N", b"To: ann@example.net\r\n\r\nover tls\r\n")
        assert t.startswith(b"t1 OK"), t
        assert logins == [("PLAIN", b"gateway", b"relaypw")]
        [(mail_from, _, data)] = handler.taken()
        assert mail_from == SENDER and data.endswith(b"over tls\r\n")
    finally:
        controller.stop()


def test_silent_mta_times_out(start_pimap_gateway):
    """An MTA that accepts the connection but never greets: NO after
    --smtp-timeout, and the session goes on."""
    import socket
    silent = socket.socket()
    silent.bind((harness.HOST, 0))
    silent.listen(4)
    try:
        gw = start_pimap_gateway(extra=[
            "--smtp", "%s:%d" % silent.getsockname(), "--smtp-timeout", "1s",
            "--smtp-sender-domain", "example.org"])
        c = device(gw)
        t = xdeliver(c, "t1", "N", b"To: ann@example.net\r\n\r\nx\r\n")
        assert t.startswith(b"t1 NO") and b"in time" in t, t
        _, t = c.cmd("n", "NOOP")
        ok(t, "n")
    finally:
        silent.close()
