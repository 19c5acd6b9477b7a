"""Crash consistency of P-IMAP sessions (issue 14): pimapd killed (SIGKILL) while devices
hold changes of their view that no checkpoint reflects, restarted on the same --state-dir.
After every resume the device's MSN-to-UID map must be the store's: a device applies what
it is sent (harness.DeviceView raises on what cannot be right for it) and, after a RESYNC,
fetches the folder again, as a device does."""

import os
import shutil

import pytest

import harness
from harness import (EXISTS_RE, EXPUNGE_RE, ensure_messages, make_message, ok,
                     pimap_login, read_lines, resume_parts, select_view, start_idle,
                     store_expunge, untagged_kind)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def state_dir():
    """A --state-dir for the test's pimapds, removed after them (ask for it first)."""
    d = harness.make_state_dir("pimapd-state-")
    yield d
    if not os.environ.get("PIMAP_KEEP_TEST_DIRS"):
        shutil.rmtree(d, ignore_errors=True)


def _kill(gw):
    gw.proc.kill()
    gw.proc.wait(10)
    gw.stop()


def _check_against_store(c, view, store):
    """FETCH 1:* through the gateway, applied as the device applies it (a FETCH that
    names another UID than the device has at that MSN raises), then compared with the
    store: the device's every MSN, UID and flag set."""
    if store or view.uids:
        untagged, t = c.cmd("fa", "FETCH 1:* (UID FLAGS)")
        ok(t, "fa")
        view.apply_all(untagged)
    view.assert_consistent_with(store)


def _resume(c, login, view):
    """A resumed login applied to the device's view; a RESYNC makes it fetch again."""
    untagged = pimap_login(c, login)
    state, folder, events = resume_parts(untagged)
    assert state == "SELECTED" and folder == "INBOX", "no resume: %r" % untagged
    view.apply_all(events)
    if untagged_kind(events, "RESYNC") and view.uids:
        untagged, t = c.cmd("rf", "FETCH 1:* (UID FLAGS)")
        ok(t, "rf")
        view.apply_all(untagged)
    return events


def test_sigkill_after_pushed_exists_and_expunge(state_dir, start_pimap_gateway, dovecot):
    """The issue's case: `* n EXISTS` and `* m EXPUNGE` pushed in IDLE, pimapd killed
    before the device said anything more, mail delivered meanwhile. The resume must not
    send that EXPUNGE again (without a dirty mark it did, from the SELECT's checkpoint)."""
    user = "carol"
    ensure_messages(dovecot, user, 5)
    args = ["--state-dir", state_dir]
    gw = start_pimap_gateway(notification_filter="ALL", extra=args)
    c = gw.raw()
    pimap_login(c, user + "#crash1")
    view = select_view(c)
    start_idle(c)
    dovecot.deliver(user, make_message("pushed before the crash"))
    lines, seen = read_lines(c, 15, until=EXISTS_RE.match)
    assert seen, "no EXISTS pushed: %r" % lines
    view.apply_all(lines)
    store_expunge(dovecot, user, view.uids[1])
    lines, seen = read_lines(c, 15, until=EXPUNGE_RE.match)
    assert seen, "no EXPUNGE pushed: %r" % lines
    view.apply_all(lines)
    _kill(gw)
    c.close()
    dovecot.deliver(user, make_message("while pimapd is down"))

    gw2 = start_pimap_gateway(notification_filter="ALL", extra=args)
    with gw2.raw() as c:
        _resume(c, user + "#crash1", view)
        _check_against_store(c, view, dovecot.uid_flags(user))
        ok(c.cmd("z", "LOGOUT")[1], "z")
