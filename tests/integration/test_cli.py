"""Command line and config file."""

import os
import subprocess

import pytest

import harness

pytestmark = pytest.mark.timeout(60)

OPTIONS = ["--store", "--imap-listen", "--imaps-listen", "--tls-cert", "--tls-key", "--shards",
           "--allow-plaintext-auth", "--log-level", "--config", "--admin-listen",
           "--max-line-bytes", "--max-literal-bytes", "--login-timeout", "--idle-timeout"]


def run(*args, timeout=10):
    return subprocess.run([harness.PIMAPD, *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def test_help():
    r = run("--help")
    assert r.returncode == 0, r
    out = r.stdout + r.stderr
    missing = [o for o in OPTIONS if o not in out]
    assert not missing, "--help does not mention %s:\n%s" % (missing, out)


@pytest.mark.parametrize("args", [
    ["--no-such-option"],
    ["--store", "127.0.0.1:1", "--bogus"],
    ["--store", "127.0.0.1:1", "--shards", "abc"],
    ["--store", "127.0.0.1:1", "--shards", "257"],
    ["--store", "127.0.0.1:1", "--log-level", "chatty"],
    ["--store", "127.0.0.1:1", "--imap-listen", "not-an-address"],
    ["--store", "127.0.0.1:1", "--max-line-bytes", "-5"],
    ["--store", "127.0.0.1:1", "--shards"],
])
def test_bad_usage_exits_2(args):
    r = run(*args)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), "no message on stderr for %s" % args


def test_missing_config_file_fails(tmp_path):
    r = run("--config", str(tmp_path / "nope.conf"), "--imap-listen", "none")
    assert r.returncode != 0, r


def test_config_file_and_flag_override(start_pimapd, dovecot, workdir):
    p1, p2, pa = harness.free_ports(3)
    conf = os.path.join(workdir, "cli-%d.conf" % p1)
    with open(conf, "w") as f:
        f.write("# pimapd test config\n"
                "store = %s\n"
                "imap-listen = 127.0.0.1:%d\n"
                "admin-listen = 127.0.0.1:%d\n"
                "shards = 2\n"
                "log-level = info\n" % (dovecot.store, p1, pa))
    # Config alone (plus the plaintext policy flag) serves on p1.
    gw = start_pimapd(store=None, imap="config", imap_port=p1, admin_port=pa,
                      plaintext=True, config=conf)
    with gw.raw() as c:
        c.login("alice", "alicepw")
        _, t = c.cmd("s", "SELECT INBOX")
        assert t.startswith(b"s OK"), t
    assert gw.metrics()["pimap_shards"][None] == 2
    assert gw.terminate() == 0

    # Flags override the config values.
    gw2 = start_pimapd(store=None, imap="config", imap_port=p2, admin_port=pa,
                       plaintext=True, config=conf,
                       extra=["--imap-listen", "127.0.0.1:%d" % p2, "--shards", "1"])
    assert not harness.port_is_open(p1), "config imap-listen used although the flag overrides it"
    with gw2.raw() as c:
        c.login("bob", "bobpw")
    assert gw2.metrics()["pimap_shards"][None] == 1


def test_config_file_store_overridden_by_flag(start_pimapd, dovecot, workdir):
    p1 = harness.free_ports(1)[0]
    conf = os.path.join(workdir, "cli-store-%d.conf" % p1)
    with open(conf, "w") as f:
        f.write("store = 127.0.0.1:1\nimap-listen = 127.0.0.1:%d\n" % p1)
    gw = start_pimapd(store=dovecot.store, imap="config", imap_port=p1, plaintext=True,
                      config=conf)
    with gw.raw() as c:
        c.login("carol", "carolpw")  # would fail against the bogus store in the file


def test_store_missing_fails():
    r = run("--imap-listen", "127.0.0.1:%d" % harness.free_ports(1)[0])
    assert r.returncode != 0, (r.returncode, r.stderr)
    assert r.stderr.strip()


def test_a_second_gateway_on_the_same_port_is_refused(start_pimapd, dovecot):
    # The shards' listeners share their port through SO_REUSEPORT: without a
    # check, a second pimapd started by mistake would join silently and take
    # a share of the connections.
    gw = start_pimapd(shards=2, admin=True)
    r = run("--store", dovecot.store, "--allow-plaintext-auth", "--imap-listen",
            "%s:%d" % (harness.HOST, gw.imap_port), "--admin-listen", "none")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "in use" in r.stderr, r.stderr
    # The same for the operator's endpoint alone.
    other = harness.free_ports(1)[0]
    r = run("--store", dovecot.store, "--imap-listen", "%s:%d" % (harness.HOST, other),
            "--admin-listen", "%s:%d" % (harness.HOST, gw.admin_port))
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "in use" in r.stderr, r.stderr
    # The first one still serves every connection.
    with gw.raw() as c:
        c.login("alice", "alicepw")


def test_one_address_for_two_listeners_is_refused(dovecot):
    port = harness.free_ports(1)[0]
    r = run("--store", dovecot.store, "--imap-listen", "%s:%d" % (harness.HOST, port),
            "--admin-listen", "%s:%d" % (harness.HOST, port))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "two listeners" in r.stderr, r.stderr
