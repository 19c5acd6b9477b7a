"""Shutdown on SIGTERM/SIGINT, and losing the store under a logged-in client."""

import signal
import socket
import time

import pytest

import harness

pytestmark = pytest.mark.timeout(120)


def expect_bye_then_eof(c, timeout=10):
    data = c.buf + c.read_eof(timeout=timeout)
    lines = data.split(b"\r\n")
    assert any(x.startswith(b"* BYE") for x in lines), data[-500:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_sends_bye_and_exits_zero(start_pimapd, tls_cert, tls_client_ctx, sig):
    gw = start_pimapd(tls=tls_cert, shards=2)
    pre = gw.raw()                     # not logged in
    logged = gw.raw()
    logged.login("alice", "alicepw")
    idler = gw.raw(tls_ctx=tls_client_ctx)
    idler.login("bob#phone", "bobpw")
    _, t = idler.cmd("s", "SELECT INBOX")
    assert t.startswith(b"s OK"), t
    idler.send(b"i IDLE\r\n")
    assert idler.readline().startswith(b"+")
    time.sleep(0.2)

    t0 = time.monotonic()
    gw.proc.send_signal(sig)
    for c in (pre, logged, idler):
        expect_bye_then_eof(c, timeout=10)
        c.close()
    rc = gw.proc.wait(10)
    elapsed = time.monotonic() - t0
    assert rc == 0, "exit code %r\n%s" % (rc, gw.log()[-3000:])
    assert elapsed < 8, elapsed
    # Listeners are gone.
    with pytest.raises(OSError):
        socket.create_connection((harness.HOST, gw.imap_port), timeout=2).close()


def test_sigterm_idle_process_exits_quickly(start_pimapd):
    gw = start_pimapd()
    t0 = time.monotonic()
    assert gw.terminate(timeout=10) == 0
    assert time.monotonic() - t0 < 5


def test_store_dies_under_client(start_pimapd, dedicated_dovecot):
    gw = start_pimapd(store=dedicated_dovecot.store, shards=2)
    c = gw.raw()
    c.login("alice", "alicepw")
    _, t = c.cmd("s", "SELECT INBOX")
    assert t.startswith(b"s OK"), t
    idler = gw.raw()
    idler.login("carol#tab", "carolpw")
    _, t = idler.cmd("s", "SELECT INBOX")
    assert t.startswith(b"s OK"), t
    idler.send(b"i IDLE\r\n")
    assert idler.readline().startswith(b"+")

    dedicated_dovecot.stop()
    assert not harness.port_is_open(dedicated_dovecot.imap_port)
    # The relayed client's store session is gone with the store: BYE.
    expect_bye_then_eof(c, timeout=15)
    c.close()
    # The P-IMAP device holds no store connection while it idles: it stays
    # connected and in IDLE (no BYE, no end of its IDLE). Folder news from the
    # watch may still come.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            line = idler.readline(timeout=max(0.1, deadline - time.monotonic()))
        except socket.timeout:
            break
        assert line.startswith(b"* ") and not line.startswith(b"* BYE"), line

    # The gateway itself survives; a new login fails cleanly (store down) but the
    # connection is answered.
    assert gw.running(), gw.log()[-3000:]
    with gw.raw() as n:
        assert n.greeting.startswith(b"* OK")
        n.send(b"l LOGIN alice alicepw\r\n")
        try:
            line = n.readline(timeout=15)
            while not (line.startswith(b"l ") or line.startswith(b"* BYE")):
                line = n.readline(timeout=15)
        except EOFError:
            line = b"<EOF>"
        assert not line.startswith(b"l OK"), line
    assert gw.running(), gw.log()[-3000:]

    # After the store comes back, logins work again, and the device that idled
    # through the outage ends its IDLE and runs commands on a new link.
    dedicated_dovecot.start()
    with gw.raw() as n:
        n.login("alice", "alicepw")
    idler.send(b"DONE\r\n")
    line = idler.readline(timeout=15)
    while not line.startswith(b"i "):
        line = idler.readline(timeout=15)
    assert line.startswith(b"i OK"), line
    _, t = idler.cmd("n", "NOOP")
    assert t.startswith(b"n OK"), t
    idler.close()
