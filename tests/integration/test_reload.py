"""SIGHUP reloads the configuration (issue 17 item 3): pimapd reads its command line and
config file again, applies what can change at run time (limits, timeouts, log level, TLS
material, the store address for new links, ...) to every shard without closing a connection,
and names what needs a restart (listeners, shards, event sources, ...), which keeps running
as it was. A configuration with an error changes nothing."""

import os
import re
import signal
import subprocess
import time

import pytest

import harness
from harness import (EXISTS_RE, end_idle, make_message, ok, pimap_login, read_lines,
                     select_view, start_idle, wait_until)

pytestmark = pytest.mark.timeout(120)

LONG = "NOOP " + "z" * 4000  # a 4 KB line
PIMAPCTL = os.path.join(os.path.dirname(os.path.abspath(harness.PIMAPD)), "pimapctl")


def write_config(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def reloads(gw):
    """The reload lines' messages (any --log-format: a logfmt msg ends in a quote)."""
    return [m.rstrip('"}') for m in re.findall(r"SIGHUP: (.*)$", gw.log(), re.M)
            if "configuration reloaded" in m or "nothing changes" in m]


def sighup(gw, before):
    gw.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: len(reloads(gw)) > before, 10, what="the reload's log line")
    return reloads(gw)[-1]


def test_sighup_applies_limits_keeps_connections_and_names_what_needs_a_restart(
        start_pimapd, dovecot, workdir):
    conf = os.path.join(workdir, "reload-%d.conf" % os.getpid())
    write_config(conf, ["shards = 2", "max-line-bytes = 64K", "log-level = info"])
    gw = start_pimapd(config=conf, extra=["--store-link-idle", "1s",
                                         "--default-notification-filter", "ALL"])
    with gw.raw() as old, gw.raw() as device:
        # Before: a 4 KB line is within the limit.
        _, t = old.cmd("a1", LONG)
        assert t.startswith(b"a1 ") and b"too long" not in t, t
        pimap_login(device, "alice#reload")
        time.sleep(1.0)  # the user's watch starts and takes its first look
        select_view(device, "INBOX")
        start_idle(device)

        write_config(conf, ["shards = 3", "max-line-bytes = 2K", "log-level = debug"])
        line = sighup(gw, len(reloads(gw)))
        assert "applied: log-level, max-line-bytes" in line, line
        assert "need a restart (not applied): shards" in line, line

        # A connection made now reads with the new limit; the old one is still served,
        # and the idling device still gets its pushes.
        with gw.raw() as new:
            _, t = new.cmd("b1", LONG)
            assert t.startswith(b"b1 BAD") and b"too long" in t, t
            _, t = new.cmd("b2", "NOOP")
            assert t.startswith(b"b2 OK"), t
        _, t = old.cmd("a2", "NOOP")
        assert t.startswith(b"a2 OK"), t
        dovecot.deliver("alice", make_message("after the reload", to="alice@example.org"))
        lines, got = read_lines(device, 10, until=lambda x: bool(EXISTS_RE.match(x)))
        assert got, lines
        end_idle(device)
        ok(device.cmd("z", "LOGOUT")[1], "z")
    # log-level debug is in force: debug lines appear from now on.
    wait_until(lambda: re.search(r"^\S+ D |level=debug", gw.log(), re.M), 10,
               what="a debug line")

    # Back to the start: nothing needs a restart any more ("shards" is what runs).
    write_config(conf, ["shards = 2", "max-line-bytes = 64K", "log-level = info"])
    line = sighup(gw, len(reloads(gw)))
    assert "applied: log-level, max-line-bytes)" in line, line


def test_a_configuration_with_an_error_changes_nothing(start_pimapd, workdir):
    conf = os.path.join(workdir, "reload-bad-%d.conf" % os.getpid())
    sock = os.path.join(workdir, "reload-admin-%d.sock" % os.getpid())
    write_config(conf, ["max-line-bytes = 2K"])
    gw = start_pimapd(config=conf, extra=["--admin-socket", sock])
    write_config(conf, ["max-line-bytes = 64K", "no-such-option = 1"])
    # pimapctl reload says it failed (the reload behind it is SIGHUP's).
    if os.access(PIMAPCTL, os.X_OK):
        r = subprocess.run([PIMAPCTL, "--socket", sock, "reload"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 1 and "failed" in r.stdout + r.stderr, r
    line = sighup(gw, len(reloads(gw)))
    assert "nothing changes" in line and "no-such-option" in line, line
    with gw.raw() as c:  # still the old limit
        _, t = c.cmd("a1", LONG)
        assert t.startswith(b"a1 BAD") and b"too long" in t, t
    # Fixed: applied.
    write_config(conf, ["max-line-bytes = 64K"])
    line = sighup(gw, len(reloads(gw)))
    assert "applied: max-line-bytes" in line, line
    with gw.raw() as c:
        _, t = c.cmd("a1", LONG)
        assert t.startswith(b"a1 ") and b"too long" not in t, t
