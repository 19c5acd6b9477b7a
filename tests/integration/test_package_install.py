"""The Debian package installed the way an operator installs it, on a fresh Debian 12:
a minimal bookworm made by debootstrap, booted with systemd in systemd-nspawn (it shares
this machine's network, so the test Dovecot on loopback is its store). Inside, at boot:
`apt-get install ./pimapd_*.deb` (dpkg -i plus the Depends from Debian), the store named in
/etc/pimapd/pimapd.conf, `systemctl start pimapd`. From here: an IMAP client logs in through
the packaged pimapd as the pimapd system user runs it under the unit's hardening; then
`systemctl stop pimapd` inside. Needs network access to deb.debian.org (as tools/setup)."""

import os
import shutil
import subprocess
import time

import pytest

import harness
from harness import HOST, free_ports, ok

pytestmark = pytest.mark.timeout(600)

from package_build import build_deb, run, sanitizer_build


BOOT_SCRIPT = """\
#!/bin/bash
# Runs once at boot (pkgtest.service): what an operator does on a new machine.
exec > /root/pkgtest.log 2>&1
set -x
export DEBIAN_FRONTEND=noninteractive
apt-get update -q && apt-get install -y -q /root/pimapd.deb || {{ echo install-failed > /root/result; exit 0; }}
sed -i 's|^store = .*|store = {store}|' /etc/pimapd/pimapd.conf
printf 'imap-listen = {listen}\\nallow-plaintext-auth = true\\n' >> /etc/pimapd/pimapd.conf
systemctl start pimapd
systemctl is-active pimapd > /root/result
stat -c %U /proc/$(systemctl show -p MainPID --value pimapd) >> /root/result
journalctl -u pimapd --no-pager > /root/journal.log
# The operator's CLI on the unit's admin socket, once the client below has logged in.
while [ ! -e /root/ctl ]; do sleep 0.2; done
pimapctl who > /root/who.txt 2>&1; echo "exit $?" >> /root/who.txt
while [ ! -e /root/stop ]; do sleep 0.2; done
systemctl stop pimapd
systemctl is-active pimapd > /root/stopped || true
poweroff
"""

BOOT_UNIT = """\
[Unit]
Description=pimap package test
After=network.target
[Service]
Type=oneshot
ExecStart=/bin/bash /root/pkgtest.sh
[Install]
WantedBy=multi-user.target
"""


def wait_for_file(path, timeout, proc, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    with open(log, errors="replace") as f:
        console = f.read()[-4000:]
    pytest.fail("%s did not appear within %ds (container %s); console:\n%s"
                % (path, timeout, "exited" if proc.poll() is not None else "running", console))


def test_dpkg_install_and_systemctl_start_on_a_fresh_debian_12(dovecot, workdir):
    if sanitizer_build():
        pytest.skip("the sanitizer build is not packaged")
    for tool in ("debootstrap", "systemd-nspawn", "cpack"):
        assert shutil.which(tool), "%s missing (tools/setup installs it)" % tool
    out = os.path.join(workdir, "package-install")
    deb = build_deb(out)

    rootfs = os.path.join(out, "bookworm")
    run("debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus",
        "bookworm", rootfs, "http://deb.debian.org/debian", timeout=480)
    # A sandbox that cannot start containers at all (no namespaces for systemd-nspawn) is
    # not this test's business: say so and skip, instead of failing on something else.
    probe = subprocess.run(["systemd-nspawn", "-q", "--keep-unit", "--register=no", "-D",
                            rootfs, "/bin/true"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("systemd-nspawn cannot run a container here: %s" % probe.stderr.strip())
    shutil.copy(deb, os.path.join(rootfs, "root", "pimapd.deb"))
    listen_port = free_ports(1)[0]
    with open(os.path.join(rootfs, "root", "pkgtest.sh"), "w") as f:
        f.write(BOOT_SCRIPT.format(store=dovecot.store,
                                   listen="%s:%d" % (HOST, listen_port)))
    units = os.path.join(rootfs, "etc", "systemd", "system")
    with open(os.path.join(units, "pkgtest.service"), "w") as f:
        f.write(BOOT_UNIT)
    wants = os.path.join(units, "multi-user.target.wants")
    os.makedirs(wants, exist_ok=True)
    os.symlink("/etc/systemd/system/pkgtest.service", os.path.join(wants, "pkgtest.service"))

    console = os.path.join(out, "console.log")
    with open(console, "w") as log:
        proc = subprocess.Popen(
            ["systemd-nspawn", "-q", "--keep-unit", "--register=no", "-D", rootfs, "-b"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        result = os.path.join(rootfs, "root", "result")
        wait_for_file(result, 420, proc, console)
        with open(result) as f:
            got = f.read().split()
        with open(os.path.join(rootfs, "root", "pkgtest.log"), errors="replace") as f:
            install_log = f.read()[-3000:]
        journal = ""
        if os.path.exists(os.path.join(rootfs, "root", "journal.log")):
            with open(os.path.join(rootfs, "root", "journal.log"), errors="replace") as f:
                journal = f.read()[-3000:]
        assert got[:1] == ["active"], (got, install_log, journal)
        # The daemon runs as the package's system user, not root.
        assert got[1:] == ["pimapd"], (got, journal)

        # Through the packaged pimapd to the test Dovecot: a P-IMAP device, which
        # pimapctl (on the unit's admin socket) then lists.
        c = harness.RawImap(HOST, listen_port)
        try:
            assert c.greeting.startswith(b"* OK"), c.greeting
            harness.pimap_login(c, "alice#packaged")
            ok(c.cmd("s", "SELECT INBOX")[1], "s")
            open(os.path.join(rootfs, "root", "ctl"), "w").close()
            who = os.path.join(rootfs, "root", "who.txt")
            wait_for_file(who, 60, proc, console)
            time.sleep(0.5)  # its exit line
            with open(who) as f:
                listed = f.read()
            assert "exit 0" in listed and "alice" in listed and "packaged" in listed, listed
            ok(c.cmd("z", "LOGOUT")[1], "z")
        finally:
            c.close()
    finally:
        open(os.path.join(rootfs, "root", "stop"), "w").close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with open(os.path.join(rootfs, "root", "stopped")) as f:
        assert f.read().strip() in ("inactive", "failed"), "pimapd still active after stop"
    shutil.rmtree(rootfs, ignore_errors=True)
