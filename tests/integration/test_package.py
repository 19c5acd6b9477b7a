"""The Debian package (tools/package: CPack from this build): what it holds, what it
depends on, its conffile and maintainer scripts, and that the pimapd, configuration and
unit it ships work together: the packaged binary started with the packaged configuration
serves IMAP, and the packaged unit passes systemd-analyze. Installing it on a fresh Debian 12
and starting it through systemctl: test_package_install.py."""

import os
import re
import shutil
import subprocess

import pytest

import harness

pytestmark = pytest.mark.timeout(300)

from package_build import build_deb, run, sanitizer_build


@pytest.fixture(scope="module")
def package(workdir):
    """(path of the .deb, directory it was extracted to)."""
    if sanitizer_build():
        pytest.skip("the sanitizer build is not packaged")
    out = os.path.join(workdir, "package")
    deb = build_deb(out)
    root = os.path.join(out, "root")
    run("dpkg-deb", "-x", deb, root)
    run("dpkg-deb", "-e", deb, os.path.join(root, "DEBIAN"))
    return deb, root


def test_control_fields_and_dependencies(package):
    deb, _ = package
    fields = run("dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Depends",
                 "Section")
    assert "Package: pimapd" in fields, fields
    version = run(harness.PIMAPD, "--version").split()[-1]
    assert "Version: %s" % version in fields, fields
    depends = re.search(r"^Depends: (.*)$", fields, re.M).group(1)
    for lib in ("liburing", "libzstd", "android-libboringssl", "libsqlite3", "libnghttp2",
                "adduser"):
        assert lib in depends, (lib, depends)


def test_contents(package):
    deb, _ = package
    listing = run("dpkg-deb", "-c", deb)
    for path in ("./usr/sbin/pimapd", "./usr/sbin/pimapctl",
                 "./usr/lib/systemd/system/pimapd.service", "./etc/pimapd/pimapd.conf", "./usr/share/man/man8/pimapd.8.gz",
                 "./usr/share/doc/pimapd/README.md"):
        assert re.search(r" %s$" % re.escape(path), listing, re.M), (path, listing)
    # Nothing of the build but these: no tests, benchmarks or developer tools.
    files = [x.split()[-1] for x in listing.splitlines() if not x.startswith("d")]
    assert len(files) == 6, files


def test_conffile_and_maintainer_scripts(package):
    _, root = package
    with open(os.path.join(root, "DEBIAN", "conffiles")) as f:
        assert f.read().split() == ["/etc/pimapd/pimapd.conf"]
    for script in ("postinst", "prerm", "postrm"):
        path = os.path.join(root, "DEBIAN", script)
        assert os.access(path, os.X_OK), script
        run("sh", "-n", path)
    with open(os.path.join(root, "DEBIAN", "postinst")) as f:
        postinst = f.read()
    assert "adduser --system --group" in postinst and "/var/lib/pimapd" in postinst


def run_postinst(root, workdir, *args):
    """The packaged postinst with every command it runs stubbed on PATH (each logs its
    arguments): returns the log lines."""
    stubs = os.path.join(workdir, "stubs-%d" % len(os.listdir(workdir)))
    os.makedirs(stubs)
    log = os.path.join(stubs, "calls.log")
    for cmd in ("getent", "adduser", "install", "chgrp", "chmod", "deb-systemd-helper",
                "systemctl"):
        path = os.path.join(stubs, cmd)
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho \"%s $*\" >> %s\nexit 0\n" % (cmd, log))
        os.chmod(path, 0o755)
    env = dict(os.environ, PATH=stubs + ":/usr/bin:/bin")
    run("sh", os.path.join(root, "DEBIAN", "postinst"), *args, env=env)
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return f.read().splitlines()


def test_postinst_leaves_an_upgraded_installation_as_the_administrator_set_it(
        package, workdir):
    """An upgrade (configure with the previous version) neither re-enables the unit nor
    resets the configuration's owner and mode; a fresh install enables it."""
    _, root = package
    upgrade = run_postinst(root, workdir, "configure", "0.0.9")
    assert not [x for x in upgrade if x.startswith(("chgrp", "chmod", "deb-systemd-helper"))], (
        upgrade)
    fresh = run_postinst(root, workdir, "configure", "")
    assert "deb-systemd-helper enable pimapd.service" in fresh, fresh


def test_packaged_binary_serves_with_the_packaged_configuration(package, start_pimapd):
    _, root = package
    conf = os.path.join(root, "etc", "pimapd", "pimapd.conf")
    binary = os.path.join(root, "usr", "sbin", "pimapd")
    gw = start_pimapd(start=False, config=conf)
    gw.args[0] = binary
    gw.start()
    with gw.raw() as c:
        assert c.greeting.startswith(b"* OK"), c.greeting
        c.login("alice", "alicepw")


def test_man_page_is_the_help(package):
    _, root = package
    page = os.path.join(root, "usr", "share", "man", "man8", "pimapd.8.gz")
    text = run("man", "-l", "-P", "cat", page, env=dict(os.environ, MANWIDTH="100"))
    for option in ("--store-links-per-shard", "--sample-config", "--park-after"):
        assert option in text, option


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_packaged_unit_is_valid(package, workdir):
    _, root = package
    with open(os.path.join(root, "usr", "lib", "systemd", "system", "pimapd.service")) as f:
        unit = f.read().replace("/usr/sbin/pimapd", os.path.join(root, "usr", "sbin", "pimapd"))
    path = os.path.join(workdir, "packaged-pimapd.service")
    with open(path, "w") as f:
        f.write(unit)
    r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                       timeout=60)
    problems = [x for x in (r.stdout + r.stderr).splitlines()
                if "packaged-pimapd.service" in x]
    assert problems == [], r.stdout + r.stderr
