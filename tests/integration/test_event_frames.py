"""Pushed events as zstd dictionary frames (docs/zstd-event-frames.md): a P-IMAP
device fetches the dictionary (XZSTDDICT, or GET <http-path>/dict/<id>), turns the
framing on (XZSTDEVENTS <id>), and new mail pushed in IDLE arrives as one
"* Z ~{n}" frame that Debian's zstd decodes with that dictionary."""

import os
import re
import subprocess
import time
import urllib.request

import pytest

import harness
from harness import EXISTS_RE, HOST, ensure_messages, ok, pimap_login, start_idle

pytestmark = pytest.mark.timeout(120)

PUSH_WAIT = 10.0
FRAME = re.compile(rb"^\* Z ~\{(\d+)\}\r\n")


def capability_id(untagged_and_tagged):
    for line in untagged_and_tagged:
        m = re.search(rb"XZSTDEVENTS=(\d+)", line)
        if m:
            return int(m.group(1))
    return None


def test_pushed_events_come_as_dictionary_frames(start_pimap_gateway, dovecot, workdir):
    ensure_messages(dovecot, "alice", 8)
    http_port = harness.free_ports(1)[0]
    gw = start_pimap_gateway(notification_filter="ALL",
                             extra=["--http-listen", "%s:%d" % (HOST, http_port)])
    with gw.raw() as c:
        untagged = pimap_login(c, "alice#zf")
        _, tagged = c.cmd("c", "CAPABILITY")
        dict_id = capability_id(_ + [tagged])
        assert dict_id, _
        # The dictionary, in-band ...
        untagged, tagged = c.cmd("d", "XZSTDDICT")
        ok(tagged, "d")
        head = re.match(rb"^\* XZSTDDICT (\d+) ~\{(\d+)\}\r\n", untagged[0])
        assert head and int(head.group(1)) == dict_id, untagged[0][:80]
        dictionary = untagged[0][head.end():head.end() + int(head.group(2))]
        assert len(dictionary) == int(head.group(2))
        # ... and over HTTP, the same bytes.
        with urllib.request.urlopen("http://%s:%d/pimap/dict/%d" % (HOST, http_port, dict_id),
                                    timeout=10) as r:
            assert r.read() == dictionary
        path = os.path.join(workdir, "events-%d.zdict" % dict_id)
        with open(path, "wb") as f:
            f.write(dictionary)

        # An unknown id is refused with the current one.
        _, tagged = c.cmd("z0", "XZSTDEVENTS 12345")
        assert tagged.startswith(b"z0 NO [XZSTDDICT %d]" % dict_id), tagged
        _, tagged = c.cmd("z", "XZSTDEVENTS %d" % dict_id)
        ok(tagged, "z")
        untagged, tagged = c.cmd("s", "SELECT INBOX")
        ok(tagged, "s")
        n0 = [int(EXISTS_RE.match(x).group(1)) for x in untagged if EXISTS_RE.match(x)][-1]

        keyword = "$Zf" + harness.unique_name("k").replace("-", "")
        start_idle(c)
        # One store change touching many messages: the watch sees it at once and
        # the gateway pushes one burst, which a frame shrinks (a lone short event
        # would go plain: framing never makes traffic larger).
        with dovecot.raw("alice") as d:
            _, t = d.cmd("s", "SELECT INBOX")
            ok(t, "s")
            # A keyword of this test's own: other tests' flags stay as they were.
            _, t = d.cmd("f", "STORE 1:%d +FLAGS (%s)" % (n0, keyword))
            ok(t, "f")
        events = b""
        frames = 0
        deadline = time.monotonic() + PUSH_WAIT
        while events.count(keyword.encode()) < n0 and time.monotonic() < deadline:
            line = c.readline(timeout=max(0.1, deadline - time.monotonic()))
            m = FRAME.match(line)
            if not m:
                events += line  # plain: a burst the frame would not shrink
                continue
            frame = line[m.end():m.end() + int(m.group(1))]
            assert line.endswith(b"\r\n") and len(line) == m.end() + len(frame) + 2
            plain = subprocess.run(["zstd", "-q", "-d", "-c", "-D", path], input=frame,
                                   capture_output=True, timeout=30)
            assert plain.returncode == 0, plain.stderr
            events += plain.stdout
            frames += 1
        assert events.count(keyword.encode()) == n0, events
        assert frames >= 1, events
        c.send("DONE\r\n")
        _, tagged = c.read_tagged("i")
        ok(tagged, "i")
    with dovecot.raw("alice") as d:
        _, t = d.cmd("s", "SELECT INBOX")
        ok(t, "s")
        _, t = d.cmd("f", "STORE 1:* -FLAGS (%s)" % keyword)
        ok(t, "f")


def test_new_mail_in_the_device_format_is_one_frame(start_pimap_gateway, dovecot, workdir):
    """PIMAP_INBAND_NEW_FORMAT ALL: the EXISTS and the FETCH of the new message (its
    envelope: what a phone shows) come together in one frame."""
    ensure_messages(dovecot, "alice", 2)
    gw = start_pimap_gateway(notification_filter="ALL")
    with gw.raw() as c:
        pimap_login(c, "alice#zn")
        untagged, tagged = c.cmd("d", "XZSTDDICT")
        ok(tagged, "d")
        head = re.match(rb"^\* XZSTDDICT (\d+) ~\{(\d+)\}\r\n", untagged[0])
        path = os.path.join(workdir, "events-zn.zdict")
        with open(path, "wb") as f:
            f.write(untagged[0][head.end():head.end() + int(head.group(2))])
        ok(c.cmd("z", "XZSTDEVENTS %s" % head.group(1).decode())[1], "z")
        ok(c.cmd("p", "XSETPIMAPPREF PIMAP_INBAND_NEW_FORMAT ALL")[1], "p")
        untagged, tagged = c.cmd("s", "SELECT INBOX")
        ok(tagged, "s")
        n0 = [int(EXISTS_RE.match(x).group(1)) for x in untagged if EXISTS_RE.match(x)][-1]
        start_idle(c)
        subject = harness.unique_name("zn")
        dovecot.deliver("alice", harness.make_message(subject))
        line = c.readline(timeout=PUSH_WAIT)
        m = FRAME.match(line)
        assert m, line
        frame = line[m.end():m.end() + int(m.group(1))]
        plain = subprocess.run(["zstd", "-q", "-d", "-c", "-D", path], input=frame,
                               capture_output=True, timeout=30)
        assert plain.returncode == 0, plain.stderr
        lines = plain.stdout.split(b"\r\n")
        assert lines[0] == b"* %d EXISTS" % (n0 + 1), plain.stdout
        assert lines[1].startswith(b"* %d FETCH (" % (n0 + 1)), plain.stdout
        assert b"ENVELOPE (" in lines[1] and subject.encode() in lines[1], plain.stdout
        assert plain.stdout.endswith(b")\r\n") and len(lines) == 3, plain.stdout
        c.send("DONE\r\n")
        _, tagged = c.read_tagged("i")
        ok(tagged, "i")


def test_off_without_a_dictionary(start_pimap_gateway):
    gw = start_pimap_gateway(extra=["--event-dictionary", "none"])
    with gw.raw() as c:
        pimap_login(c, "bob#zf")
        untagged, tagged = c.cmd("c", "CAPABILITY")
        assert capability_id(untagged + [tagged]) is None
        _, tagged = c.cmd("d", "XZSTDDICT")
        assert tagged.startswith(b"d BAD") or tagged.startswith(b"d NO"), tagged
