"""Hibernation (--hibernate-after): a P-IMAP device idling in the gateway's own IDLE with
nothing pending is reduced to its socket and a small record; its next byte or event rebuilds
the connection exactly as it was. Against a real Dovecot: the device must not notice, except
that pimap_hibernated_devices counts it. Mail, DONE, commands, keepalives, TLS, COMPRESS, a
takeover, a disconnect with a resume, the autologout and the shutdown goodbye, each while
hibernated.

Every test uses its own device names; users are shared with other files only through their
mailboxes, which these tests only add to.
"""

import signal
import time

import pytest

import harness
from harness import (EXISTS_RE, device_fetch_all, end_idle, make_message, ok,
                     pimap_login, read_lines, select_view, start_idle, unique_name, wait_until)

pytestmark = pytest.mark.timeout(120)

HIBERNATE = "200ms"
WAIT = 10.0


def metric(gw, name):
    return gw.metrics()[name][None]


def gateway(start_pimap_gateway, *extra, **kwargs):
    return start_pimap_gateway(notification_filter="ALL",
                               extra=("--hibernate-after", HIBERNATE) + extra, **kwargs)


def wait_hibernated(gw, n, what="the device to hibernate"):
    wait_until(lambda: metric(gw, "pimap_hibernated_devices") == n, WAIT, what=what)


def idling_device(gw, user, device, tls_ctx=None, port=None):
    c = harness.RawImap(harness.HOST, port or gw.imap_port, tls_ctx=tls_ctx)
    pimap_login(c, "%s#%s" % (user, device))
    view = select_view(c)
    start_idle(c)
    return c, view


def deliver(dovecot, user, subject):
    dovecot.deliver(user, make_message(subject, to=user + "@example.org"))


def mail_wakes_it(gw, dovecot, c, user):
    """The idling device `c` hibernates; new mail wakes it; DONE and a NOOP work."""
    wait_hibernated(gw, 1)
    deliver(dovecot, user, "to a sleeper")
    lines, got = read_lines(c, WAIT, until=lambda x: bool(EXISTS_RE.match(x)))
    assert got, lines
    end_idle(c)
    _, t = c.cmd("n", "NOOP")
    ok(t, "n")


def exists_line(lines):
    return [x for x in lines if EXISTS_RE.match(x)]


def test_mail_wakes_a_hibernated_device(start_pimap_gateway, dovecot):
    """New mail reaches a hibernated device at once; DONE, FETCH and a second IDLE work as
    before, and the device hibernates again."""
    gw = gateway(start_pimap_gateway)
    user, device = "alice", unique_name("hib")
    c, view = idling_device(gw, user, device)
    try:
        wait_hibernated(gw, 1)
        before = metric(gw, "pimap_wakeups_total")
        deliver(dovecot, user, "to a sleeper")
        lines, got = read_lines(c, WAIT, until=lambda x: bool(EXISTS_RE.match(x)))
        assert got, lines
        n = int(EXISTS_RE.match(exists_line(lines)[-1]).group(1))
        assert metric(gw, "pimap_wakeups_total") >= before + 1
        end_idle(c)
        uids = device_fetch_all(c, expect=n)
        assert [u for u, _ in uids] == [u for u, _ in dovecot.uid_flags(user)]
        start_idle(c)
        wait_hibernated(gw, 1, "the device to hibernate again")
        assert metric(gw, "pimap_hibernations_total") >= 2
        end_idle(c)
    finally:
        c.close()


def test_done_and_commands_after_hibernation(start_pimap_gateway, dovecot):
    """The device's own DONE wakes it: the IDLE completes with its tag, then commands run
    on a pooled link and the view is the store's."""
    gw = gateway(start_pimap_gateway)
    user = "bob"
    deliver(dovecot, user, "already there")
    c, view = idling_device(gw, user, unique_name("hib"))
    try:
        wait_hibernated(gw, 1)
        c.send("DONE\r\n")
        untagged, t = c.read_tagged("i")
        ok(t, "i")
        assert metric(gw, "pimap_hibernated_devices") == 0
        _, t = c.cmd("n", "NOOP")
        ok(t, "n")
        view.assert_consistent_with(dovecot.uid_flags(user))
        untagged, t = c.cmd("o", "LOGOUT")
        ok(t, "o")
        assert any(x.startswith(b"* BYE") for x in untagged), untagged
    finally:
        c.close()


def test_pipelined_input_after_done_is_kept(start_pimap_gateway, dovecot):
    """DONE and two commands in one packet wake the device: all three are answered in
    order (the bytes after DONE are not lost in the rebuild)."""
    gw = gateway(start_pimap_gateway)
    c, _ = idling_device(gw, "carol", unique_name("hib"))
    try:
        wait_hibernated(gw, 1)
        c.send("DONE\r\na1 NOOP\r\na2 CAPABILITY\r\n")
        _, t = c.read_tagged("i")
        ok(t, "i")
        _, t = c.read_tagged("a1")
        ok(t, "a1")
        untagged, t = c.read_tagged("a2")
        ok(t, "a2")
        assert any(b"XFILTER" in x for x in untagged), untagged
    finally:
        c.close()


def test_keepalive_while_hibernated(start_pimap_gateway, dovecot):
    """--idle-keepalive goes on while hibernated, without waking the device."""
    gw = gateway(start_pimap_gateway, "--idle-keepalive", "1s")
    c, _ = idling_device(gw, "alice", unique_name("hib"))
    try:
        wait_hibernated(gw, 1)
        wakeups = metric(gw, "pimap_wakeups_total")
        lines, got = read_lines(c, 5, until=lambda x: x.startswith(b"* OK Still here"))
        assert got, lines
        lines, got = read_lines(c, 5, until=lambda x: x.startswith(b"* OK Still here"))
        assert got, lines
        assert metric(gw, "pimap_hibernated_devices") == 1
        assert metric(gw, "pimap_wakeups_total") == wakeups
        end_idle(c)
    finally:
        c.close()


def test_tls_device_hibernates_and_wakes(start_pimap_gateway, dovecot, tls_cert,
                                        tls_client_ctx):
    """Over implicit TLS the TLS session stays with the record: mail and DONE still work."""
    gw = gateway(start_pimap_gateway, tls=tls_cert)
    user = "bob"
    c, _ = idling_device(gw, user, unique_name("hib"), tls_ctx=tls_client_ctx,
                         port=gw.imaps_port)
    try:
        mail_wakes_it(gw, dovecot, c, user)
    finally:
        c.close()


def test_takeover_of_a_hibernated_device(start_pimap_gateway, dovecot):
    """A newer connection of the device takes the session over from a hibernated one: the
    old one is told so and closed, the new one resumes the selected folder."""
    gw = gateway(start_pimap_gateway)
    user, device = "alice", unique_name("hib")
    old, _ = idling_device(gw, user, device)
    new = harness.RawImap(harness.HOST, gw.imap_port)
    try:
        wait_hibernated(gw, 1)
        untagged = pimap_login(new, "%s#%s" % (user, device))
        assert any(b"SESSION SELECTED" in x for x in untagged), untagged
        lines, got = read_lines(old, WAIT, until=lambda x: x.startswith(b"* BYE"))
        assert got and b"taken over" in lines[-1], lines
        old.read_eof()
        _, t = new.cmd("n", "NOOP")
        ok(t, "n")
    finally:
        old.close()
        new.close()


def test_disconnect_while_hibernated_then_resume(start_pimap_gateway, dovecot):
    """The device vanishes while hibernated; mail arrives; its resume replays it exactly."""
    gw = gateway(start_pimap_gateway)
    user, device = "bob", unique_name("hib")
    c, view = idling_device(gw, user, device)
    wait_hibernated(gw, 1)
    c.close()
    wait_until(lambda: metric(gw, "pimap_hibernated_devices") == 0, WAIT,
               what="the record to go with the socket")
    deliver(dovecot, user, "while away")
    time.sleep(1.5)  # the watch journals it
    c = harness.RawImap(harness.HOST, gw.imap_port)
    try:
        untagged = pimap_login(c, "%s#%s" % (user, device))
        view.apply_all(untagged)
        view.assert_consistent_with(dovecot.uid_flags(user))
        assert exists_line(untagged), untagged
    finally:
        c.close()


def test_compressed_device_hibernates_and_wakes(start_pimap_gateway, dovecot):
    """COMPRESS=DEFLATE stays on the transport the record keeps."""
    from test_compress import ZRawImap
    gw = gateway(start_pimap_gateway)
    user = "carol"
    c = ZRawImap(harness.HOST, gw.imap_port)
    try:
        pimap_login(c, "%s#%s" % (user, unique_name("hib")))
        _, t = c.cmd("z", "COMPRESS DEFLATE")
        ok(t, "z")
        c.start_compression()
        select_view(c)
        start_idle(c)
        mail_wakes_it(gw, dovecot, c, user)
    finally:
        c.close()


def test_shutdown_says_goodbye_to_hibernated_devices(start_pimap_gateway, dovecot):
    gw = gateway(start_pimap_gateway)
    c, _ = idling_device(gw, "alice", unique_name("hib"))
    try:
        wait_hibernated(gw, 1)
        gw.proc.send_signal(signal.SIGTERM)
        lines, got = read_lines(c, WAIT, until=lambda x: x.startswith(b"* BYE"))
        assert got and b"shutting down" in lines[-1], lines
        assert gw.proc.wait(timeout=WAIT) == 0
    finally:
        c.close()


def test_no_hibernation_when_disabled(start_pimap_gateway, dovecot):
    """--hibernate-after 0: the device idles as a live connection."""
    gw = start_pimap_gateway(notification_filter="ALL", extra=("--hibernate-after", "0"))
    c, _ = idling_device(gw, "bob", unique_name("hib"))
    try:
        time.sleep(1.0)
        assert metric(gw, "pimap_hibernations_total") == 0
        end_idle(c)
    finally:
        c.close()
