"""The store link's security (issue 14 item 7): TLS to the store (--store-tls
implicit|starttls, the certificate and its name always verified, no way back to clear
text), the store master user, and what happens to a password the store rejects.

The TLS store is this file's own Dovecot (tools/dovecot/up with a certificate: STARTTLS
on its IMAP port, implicit TLS on another); the shared store of the file has no TLS and
serves as the store that does not offer STARTTLS. The store logs ", TLS," in the login
line of every connection that logged in over TLS.
"""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

import harness
from harness import pimap_login, quote, select_view, wait_until

pytestmark = pytest.mark.timeout(120)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tls_store(workdir, tls_cert, request):
    """A Dovecot with TLS (the harness's self-signed cert for localhost/127.0.0.1)."""
    d = harness.Dovecot(harness.make_state_dir("pimap-dovecot-tls-"), tls=tls_cert)
    os.chmod(d.dir, 0o755)
    d.start()
    yield d
    d.stop()
    if not os.environ.get("PIMAP_KEEP_TEST_DIRS"):
        shutil.rmtree(d.dir, ignore_errors=True)


@pytest.fixture
def store_log_on_failure(tls_store, request):
    yield tls_store
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        sys.stderr.write("\n----- TLS dovecot log -----\n%s\n----- end -----\n"
                         % tls_store.log()[-20000:])


@pytest.fixture(scope="module")
def other_ca(workdir):
    """A certificate that did not sign the store's: the wrong CA."""
    d = os.path.join(workdir, "other-ca")
    os.makedirs(d, exist_ok=True)
    return harness.generate_cert(d)[0]


def login_lines(store, user, since=0):
    """The store's login log lines of user after offset `since` of its log."""
    return [line for line in store.log()[since:].splitlines()
            if "Login: user=<%s>," % user in line]


def tls_gateway(start_pimapd, store, mode, ca, extra=(), **kwargs):
    port = store.imaps_port if mode == "implicit" else store.imap_port
    return start_pimapd(store="%s:%d" % (harness.HOST, port),
                        extra=["--store-tls", mode, "--store-tls-ca-file", ca] + list(extra),
                        **kwargs)


def assert_unavailable(gw, user, password):
    """A device's and a stock client's login both get NO [UNAVAILABLE]."""
    with gw.raw() as c:
        _, t = c.cmd("L1", "LOGIN %s %s" % (quote(user + "#dev"), quote(password)))
        assert t.startswith(b"L1 NO [UNAVAILABLE]"), t
    with gw.raw() as c:
        _, t = c.cmd("L2", "LOGIN %s %s" % (quote(user), quote(password)))
        assert t.startswith(b"L2 NO [UNAVAILABLE]"), t


def pimap_and_relay_work(gw, store, user):
    """A P-IMAP device and a relayed stock client work through gw; every login the
    store saw for user meanwhile was over TLS."""
    since = len(store.log())
    with gw.raw() as c:
        pimap_login(c, user + "#tls-dev")
        select_view(c)
        _, t = c.cmd("N1", "NOOP")
        assert t.startswith(b"N1 OK"), t
    m = gw.imap(user)
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    typ, _ = m.fetch("1:*", "(UID)") if int(data[0]) > 0 else ("OK", None)
    assert typ == "OK"
    m.logout()
    wait_until(lambda: len(login_lines(store, user, since)) >= 2, 10,
               what="the store's login lines")
    lines = login_lines(store, user, since)
    clear = [line for line in lines if ", TLS," not in line]
    assert not clear, "logins in clear text: %r" % clear


# --------------------------------------------------------------------------- TLS


def test_implicit_tls(start_pimapd, store_log_on_failure, tls_cert):
    store = store_log_on_failure
    # The name to verify given explicitly (a DNS name of the certificate).
    gw = tls_gateway(start_pimapd, store, "implicit", tls_cert[0],
                     ["--store-tls-name", "localhost"])
    pimap_and_relay_work(gw, store, "alice")


def test_starttls(start_pimapd, store_log_on_failure, tls_cert):
    store = store_log_on_failure
    # No --store-tls-name: the store host, 127.0.0.1, checked as an IP address.
    gw = tls_gateway(start_pimapd, store, "starttls", tls_cert[0])
    pimap_and_relay_work(gw, store, "bob")


def wait_logged(gw, *needles, timeout=10):
    """pimapd's log has every needle (case-insensitive). Log lines are written by a
    background thread (core/base/log.h), so they may land a moment after the answer
    the client already has."""
    wait_until(lambda: all(n.lower() in gw.log().lower() for n in needles), timeout,
               what="pimapd to log %r" % (needles,))


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_wrong_ca_fails_closed(start_pimapd, store_log_on_failure, other_ca, mode):
    store = store_log_on_failure
    since = len(store.log())
    gw = tls_gateway(start_pimapd, store, mode, other_ca)
    assert_unavailable(gw, "carol", harness.USERS["carol"])
    wait_logged(gw, "TLS handshake failed", "certificate verification")
    assert not login_lines(store, "carol", since)


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_wrong_name_fails_closed(start_pimapd, store_log_on_failure, tls_cert, mode):
    store = store_log_on_failure
    since = len(store.log())
    gw = tls_gateway(start_pimapd, store, mode, tls_cert[0],
                     ["--store-tls-name", "mail.example.org"])
    assert_unavailable(gw, "carol", harness.USERS["carol"])
    wait_logged(gw, "TLS handshake failed", "mismatch")
    assert not login_lines(store, "carol", since)


def test_store_without_starttls_is_refused(start_pimapd, dovecot, tls_cert):
    """The shared store has no TLS at all: no login in clear text instead."""
    since = len(dovecot.log())
    gw = start_pimapd(extra=["--store-tls", "starttls", "--store-tls-ca-file", tls_cert[0]])
    assert_unavailable(gw, "carol", harness.USERS["carol"])
    wait_logged(gw, "does not offer STARTTLS")
    assert not login_lines(dovecot, "carol", since)


class FakeStore:
    """A scripted IMAP store on a free port: greets with `greeting`, answers each
    command line through answer(line) (None: close), and records the lines."""

    def __init__(self, greeting, answer):
        self.greeting, self.answer = greeting, answer
        self.lines = []
        self.sock = socket.socket()
        self.sock.bind((harness.HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        with conn:
            conn.sendall(self.greeting)
            buf = b""
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b"\r\n" in buf:
                    line, buf = buf.split(b"\r\n", 1)
                    self.lines.append(line)
                    out = self.answer(line)
                    if out is None:
                        return
                    conn.sendall(out)

    def close(self):
        self.sock.close()


def test_starttls_refused_by_store_is_not_a_downgrade(start_pimapd, tls_cert):
    """A store that offers STARTTLS and then answers NO gets no credentials in clear."""
    def answer(line):
        tag = line.split(b" ")[0]
        if b"STARTTLS" in line.upper():
            return tag + b" NO [UNAVAILABLE] not today\r\n"
        return tag + b" OK done\r\n"

    store = FakeStore(b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN ID] fake\r\n", answer)
    try:
        gw = start_pimapd(store="%s:%d" % (harness.HOST, store.port),
                          extra=["--store-tls", "starttls", "--store-tls-ca-file", tls_cert[0]])
        assert_unavailable(gw, "alice", "secret-pw")
        wait_logged(gw, "refused STARTTLS")
        assert any(b"STARTTLS" in line for line in store.lines), store.lines
        sent = b"\n".join(store.lines)
        assert b"secret-pw" not in sent and b"LOGIN" not in sent.upper() \
            and b"AUTHENTICATE" not in sent.upper(), store.lines
    finally:
        store.close()


# --------------------------------------------------------------------------- master user


def test_master_user_over_tls(start_pimapd, store_log_on_failure, tls_cert,
                              master_password_file):
    """Links, watch and parked clients log in as the master user acting for the
    user; `doveadm who` shows the user's connections (the watch's)."""
    store = store_log_on_failure
    gw = tls_gateway(start_pimapd, store, "implicit", tls_cert[0],
                     ["--store-master-user", harness.MASTER_USER,
                      "--store-master-password-file", master_password_file,
                      "--store-link-idle", "1s"])
    since = len(store.log())
    with gw.raw() as c:
        pimap_login(c, "carol#master-dev")
        select_view(c)
        # The watch (master user for carol) is up while the device is.
        wait_until(lambda: store.who("carol") >= 1, 15, interval=0.2,
                   what="carol's watch in doveadm who")
        lines = login_lines(store, "carol", since)
        assert lines and all(", TLS," in line for line in lines), lines


def test_parked_client_over_tls(start_pimapd, store_log_on_failure, tls_cert,
                                master_password_file):
    """A stock client parked in IDLE (its store connection given back) and woken at
    DONE: the link the gateway borrows for it, and the watch, log in over TLS as the
    master user."""
    store = store_log_on_failure
    gw = tls_gateway(start_pimapd, store, "starttls", tls_cert[0],
                     ["--park-after", "1s", "--store-link-idle", "1s",
                      "--store-master-user", harness.MASTER_USER,
                      "--store-master-password-file", master_password_file],
                     admin=True)
    since = len(store.log())
    with gw.raw() as c:
        c.login("carol", harness.USERS["carol"], tag="L")
        _, t = c.cmd("s", "SELECT INBOX")
        assert t.startswith(b"s OK"), t
        harness.start_idle(c)
        # Parked: the gateway logged its store connection out after the idle
        # time, and the watch (master user, over TLS) holds the user's events.
        wait_until(lambda: int(gw.metrics()["pimap_relay_parked"][None]) == 1, 15,
                   what="the client parked")
        harness.end_idle(c)  # asserts the tagged OK
        _, t = c.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t
    lines = login_lines(store, "carol", since)
    assert len(lines) >= 2, lines  # the client's login, the watch, the unpark link
    assert all(", TLS," in line for line in lines), lines


def test_master_user_login_with_separator(start_pimapd, master_password_file):
    """A store without AUTH=PLAIN: the master user logs in as user<sep>master."""
    def answer(line):
        tag = line.split(b" ")[0]
        if b"LOGOUT" in line.upper():
            return None
        return tag + b" OK done\r\n"

    store = FakeStore(b"* OK [CAPABILITY IMAP4rev1 ID ENABLE IDLE QRESYNC] fake\r\n", answer)
    try:
        gw = start_pimapd(store="%s:%d" % (harness.HOST, store.port),
                          extra=["--store-master-user", harness.MASTER_USER,
                                 "--store-master-password-file", master_password_file,
                                 "--store-master-separator", "+"])
        c = gw.raw()
        try:
            c.send('L1 LOGIN "alice#sep-dev" "alicepw"\r\n')
            wait_until(lambda: any(b"LOGIN" in line and b"alice+gateway" in line
                                   and b"gatewaypw" in line for line in store.lines), 15,
                       what="the watch's master-user LOGIN")
        finally:
            c.close()
    finally:
        store.close()


# --------------------------------------------------------------------------- rejected password


def store_auth_failures(store, user):
    return sum(1 for line in store.log().splitlines()
               if "(auth failed" in line and "user=<%s>" % user in line)


def test_rejected_password_is_not_retried(start_pimapd, dedicated_dovecot):
    """Without a master user the watch logs in with the user's password. After the
    password changes at the store, the watch's next login is refused once and not
    tried again (a retry every few seconds would get the account locked), pooled
    links do not try it either, the auth cache no longer admits it, and the user's
    next accepted login brings the watch back."""
    store = dedicated_dovecot
    store.append("alice", "INBOX", harness.make_message("kept password"))
    gw = start_pimapd(store=store.store, extra=["--store-link-idle", "1s"])
    c = gw.raw()
    pimap_login(c, "alice#pw-phone")
    select_view(c)
    wait_until(lambda: store.who("alice") >= 1, 15, interval=0.2, what="alice's watch")
    # The password changes at the store (passwd-file is re-read on change) and
    # every store connection of alice is dropped: the watch reconnects.
    with open(os.path.join(store.dir, "users"), "w") as f:
        f.write("alice:{PLAIN}alicepw2\nbob:{PLAIN}bobpw\ncarol:{PLAIN}carolpw\n")
    time.sleep(1.1)  # Dovecot looks at the file at most once a second
    r = subprocess.run(["doveadm", "-c", store.conf_path, "kick", "alice"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: store_auth_failures(store, "alice") >= 1, 15,
               what="the watch's refused login")
    time.sleep(8)  # unfixed, the watch retries at 0.25, 0.5, 1, 2, 4 s...
    assert store_auth_failures(store, "alice") == 1, store.log()[-4000:]
    wait_logged(gw, "not retrying until the user logs in again")
    # A command that needs a new store link: answered without a login.
    _, t = c.cmd("f", "FETCH 1 (BODY.PEEK[])")
    assert t.startswith(b"f NO [UNAVAILABLE]"), t
    assert store_auth_failures(store, "alice") == 1
    # The old password is not admitted from the auth cache any more.
    with gw.raw() as old:
        _, t = old.cmd("L2", 'LOGIN "alice#pw-tablet" "alicepw"')
        assert t.startswith(b"L2 NO [AUTHENTICATIONFAILED]"), t
    # The new one is, and the watch comes back with it.
    since = len(store.log())
    with gw.raw() as new:
        pimap_login(new, "alice#pw-tablet", password="alicepw2", tag="L3")
        wait_until(lambda: len(login_lines(store, "alice", since)) >= 2, 15,
                   what="the watch's login with the new password")
        _, t = c.cmd("g", "FETCH 1 (BODY.PEEK[])")
        assert t.startswith(b"g OK"), t
    c.close()
