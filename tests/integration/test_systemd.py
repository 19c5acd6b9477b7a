"""pimapd under systemd (Type=notify, tools/systemd/pimapd.service): the sd_notify protocol
spoken to a datagram socket the test holds as systemd would ($NOTIFY_SOCKET). READY=1 only
once the listeners accept; RELOADING=1 then READY=1 around a SIGHUP; WATCHDOG=1 while every
shard runs, and none while one is stopped (SIGSTOP stops them all: the keep-alives must
stop, so systemd's watchdog would restart it); STOPPING=1 at SIGTERM. Without
NOTIFY_SOCKET pimapd runs as before (every other test)."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

import harness

pytestmark = pytest.mark.timeout(120)

WATCHDOG_USEC = 400000  # 0.4 s: a keep-alive every 0.2 s


@pytest.fixture
def notify_socket(workdir):
    path = os.path.join(workdir, "notify-%d.sock" % time.monotonic_ns())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    yield s, path
    s.close()
    os.unlink(path)


def messages(s, timeout):
    """The datagrams received within timeout, as lists of KEY=VALUE lines."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return out
        s.settimeout(left)
        try:
            out.append(s.recv(4096).decode().split("\n"))
        except socket.timeout:
            return out


def wait_for(s, line, timeout=10.0):
    """Reads datagrams until one holds `line`; returns that datagram and those before it."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = messages(s, min(0.5, deadline - time.monotonic()))
        for m in got:
            seen.append(m)
            if line in m:
                return seen
    raise AssertionError("no %r from pimapd within %.0fs: %r" % (line, timeout, seen))


def test_readiness_reload_watchdog_and_stop(start_pimapd, notify_socket):
    s, path = notify_socket
    gw = start_pimapd(shards=2, start=False,
                      env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    gw.start()  # returns once the IMAP port answers
    ready = wait_for(s, "READY=1")[-1]
    assert "MAINPID=%d" % gw.proc.pid in ready, ready
    assert any(x.startswith("STATUS=2 shards") for x in ready), ready
    # READY=1 came only after the listeners: the port was open when it was sent, so a
    # client connecting now gets a greeting.
    with gw.raw() as c:
        assert c.greeting.startswith(b"* OK"), c.greeting

    # The watchdog's keep-alives, about twice per WATCHDOG_USEC.
    beats = [m for m in messages(s, 2.0) if "WATCHDOG=1" in m]
    assert len(beats) >= 4, beats

    # Reload: RELOADING=1 (with the monotonic time systemd asks for), then READY=1.
    gw.proc.send_signal(signal.SIGHUP)
    seen = wait_for(s, "READY=1")
    reloading = [m for m in seen if "RELOADING=1" in m]
    assert reloading and any(x.startswith("MONOTONIC_USEC=") for x in reloading[0]), seen
    assert seen.index(reloading[0]) < len(seen) - 1

    # A stopped process sends no keep-alive (systemd would restart it); they come back.
    gw.proc.send_signal(signal.SIGSTOP)
    try:
        messages(s, 0.3)  # what was in flight
        assert [m for m in messages(s, 1.5) if "WATCHDOG=1" in m] == []
    finally:
        gw.proc.send_signal(signal.SIGCONT)
    wait_for(s, "WATCHDOG=1")

    gw.proc.send_signal(signal.SIGTERM)
    wait_for(s, "STOPPING=1")
    assert gw.proc.wait(timeout=15) == 0


def test_first_keep_alive_comes_early_and_a_lost_socket_stops_nothing(start_pimapd, workdir):
    """The first WATCHDOG=1 comes well before systemd's deadline (READY + WatchdogSec);
    when the notify socket goes away (systemd restarted), pimapd keeps serving."""
    path = os.path.join(workdir, "notify-lost-%d.sock" % time.monotonic_ns())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    try:
        usec = 2000000
        gw = start_pimapd(start=False, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": str(usec)})
        gw.start()
        wait_for(s, "READY=1")
        ready_at = time.monotonic()
        wait_for(s, "WATCHDOG=1", timeout=usec / 1e6)
        assert time.monotonic() - ready_at < 0.75 * usec / 1e6
    finally:
        s.close()
        os.unlink(path)
    time.sleep(2.5 * usec / 4e6)  # a few failed keep-alives
    assert gw.proc.poll() is None, gw.log()
    with gw.raw() as c:
        assert c.greeting.startswith(b"* OK"), c.greeting


def test_watchdog_for_another_pid_is_not_ours(start_pimapd, notify_socket):
    """WATCHDOG_PID names another process (systemd's NotifyAccess with a wrapper): pimapd
    says READY but sends no keep-alives."""
    s, path = notify_socket
    gw = start_pimapd(start=False, env={"NOTIFY_SOCKET": path,
                                        "WATCHDOG_USEC": str(WATCHDOG_USEC),
                                        "WATCHDOG_PID": "1"})
    gw.start()
    wait_for(s, "READY=1")
    assert [m for m in messages(s, 1.5) if "WATCHDOG=1" in m] == []


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_file_is_valid(workdir):
    """tools/systemd/pimapd.service passes systemd-analyze verify (its ExecStart binary
    pointed at this build)."""
    src = os.path.join(harness.SOURCE_DIR, "tools", "systemd", "pimapd.service")
    with open(src) as f:
        unit = f.read()
    assert "Type=notify" in unit and "WatchdogSec=" in unit
    unit = unit.replace("/usr/sbin/pimapd", harness.PIMAPD)
    path = os.path.join(workdir, "pimapd.service")
    with open(path, "w") as f:
        f.write(unit)
    r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                       timeout=60)
    # verify also complains about the host (no running systemd in a container); only
    # lines about this unit file count.
    problems = [x for x in (r.stdout + r.stderr).splitlines() if "pimapd.service" in x]
    assert problems == [], r.stdout + r.stderr
