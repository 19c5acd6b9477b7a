"""Issue 15's commands through the HTTPS binding (--https-listen): "everything also
through the HTTPS binding". One P-IMAP session over TLS (the cookie keeps it between
POSTs) runs XTERSE, XSYNC, XCONVERT, XPSEARCH (APPEND to the virtual folder reaching its
backing folder, and a flag change taking a message out of its view) and XDELIVER (to
Python's aiosmtpd as the MTA) against the real Dovecot. Each command also has a plain
HTTP test in its own file (test_x*.py)."""

import re

import pytest

import harness
from harness import HOST, make_message, ok, quote, unique_name, wait_until
from http_client import HttpClient, login_line

pytestmark = pytest.mark.timeout(120)

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

USER = "alice"
LATIN1_TEXT = "Caf\u00e9 cr\u00e8me\r\n"


class Sink:
    def __init__(self):
        self.taken = []

    async def handle_DATA(self, server, session, envelope):
        self.taken.append((envelope.mail_from, list(envelope.rcpt_tos),
                           bytes(envelope.original_content)))
        return "250 2.0.0 Ok: queued"


def latin1_message():
    return (b"From: sender@example.org\r\nTo: alice@example.org\r\n"
            b"Subject: latin1\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=iso-8859-1\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + LATIN1_TEXT.encode("latin-1"))


def box_state(dovecot, box):
    with dovecot.raw(USER) as s:
        untagged, t = s.cmd("st", "STATUS %s (UIDVALIDITY HIGHESTMODSEQ UIDNEXT)" % quote(box))
        ok(t, "st")
    line = b"".join(untagged).decode()
    return (int(re.search(r"UIDVALIDITY (\d+)", line).group(1)),
            int(re.search(r"HIGHESTMODSEQ (\d+)", line).group(1)),
            int(re.search(r"UIDNEXT (\d+)", line).group(1)) - 1)


def test_issue15_commands_over_https(start_pimap_gateway, dovecot, tls_cert, tls_client_ctx):
    box = unique_name("hs")
    with dovecot.raw(USER) as s:
        ok(s.cmd("c", "CREATE " + quote(box))[1], "c")
    first = dovecot.append(USER, box, latin1_message(), flags="\\Flagged")
    second = dovecot.append(USER, box, make_message("second"), flags="\\Flagged")
    uv, ms, last = box_state(dovecot, box)
    dovecot.append(USER, box, make_message("after the sync point"))

    handler = Sink()
    smtp_port, https_port = harness.free_ports(2)
    controller = aiosmtpd_controller.Controller(handler, hostname=HOST, port=smtp_port)
    controller.start()
    try:
        start_pimap_gateway(tls=tls_cert, extra=[
            "--https-listen", "%s:%d" % (HOST, https_port),
            "--smtp", "%s:%d" % (HOST, smtp_port), "--smtp-sender-domain", "example.org"])
        wait_until(lambda: harness.port_is_open(https_port), 5, what="https port")
        star = unique_name("Star")
        with HttpClient(https_port, tls_ctx=tls_client_ctx) as c:
            # XTERSE, XSYNC and XCONVERT in the first POST.
            r = c.post("T XTERSE ON\r\n" + login_line("L", USER, unique_name("hs")) +
                       "N NOOP\r\nO XTERSE OFF\r\n"
                       "Y XSYNC %s %d %d %d (HEADERS (Subject))\r\n" % (quote(box), uv, ms, last) +
                       "X XCONVERT 1 BODY[1] as text/plain\r\n")
            assert r.status == 200, r.body
            assert r.tagged("T") == b"T OK", r.body
            assert r.tagged("N") == b"N OK", r.body
            assert r.tagged("Y").startswith(b"Y OK [XSYNC 4]"), r.body
            assert b"after the sync point" in r.body, r.body
            text = LATIN1_TEXT.encode("utf-8")  # the part with its CRLF
            assert b"* 1 XCONVERT {%d}\r\n" % len(text) + text in r.body, r.body
            assert r.tagged("X").startswith(b"X OK"), r.body

            # XPSEARCH: APPEND to the virtual folder lands in the backing one; unflagging
            # takes a message out of the view.
            message = make_message("appended over https")
            r = c.post("P XPSEARCH %s FLAGGED\r\n" % quote(star) +
                       "V SELECT %s\r\n" % quote(star) +
                       "A APPEND %s (\\Flagged) {%d+}\r\n" % (quote(star), len(message)) +
                       message.decode() + "\r\n" +
                       "U UID STORE %d -FLAGS (\\Flagged)\r\n" % first +
                       "F UID FETCH 1:* (UID)\r\n")
            assert r.status == 200, r.body
            assert r.tagged("P").startswith(b"P OK"), r.body
            assert re.search(rb"\* 2 EXISTS\r\n", r.body), r.body
            m = re.match(rb"A OK \[APPENDUID (\d+) (\d+)\]", r.tagged("A"))
            assert m and int(m.group(1)) == uv, r.body
            appended = int(m.group(2))
            assert b"* 1 EXPUNGE\r\n" in r.body, r.body
            fetched = [int(u) for u in re.findall(rb"\* \d+ FETCH \(UID (\d+)\)", r.body)]
            assert second in fetched and first not in fetched, r.body

            # XDELIVER: submitted to the MTA, the copy saved.
            mail = b"To: ann@example.net\r\nSubject: over https\r\n\r\nhi\r\n"
            r = c.post(b"D XDELIVER N SAVETO=%s {%d+}\r\n" % (box.encode(), len(mail)) +
                       mail + b"\r\n")
            assert r.status == 200, r.body
            assert re.match(rb"D OK \[APPENDUID %d \d+\]" % uv, r.tagged("D")), r.body
        [(mail_from, rcpts, data)] = handler.taken
        assert mail_from == "alice@example.org" and rcpts == ["ann@example.net"]
        assert b"Subject: over https" in data
        in_box = dict(dovecot.uid_flags(USER, box))
        assert first in in_box and appended in in_box, in_box
        assert "\\Flagged" not in in_box[first]
    finally:
        controller.stop()
        with dovecot.raw(USER) as s:
            s.cmd("d", "DELETE " + quote(box))
