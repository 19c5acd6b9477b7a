"""Fixtures for the pimapd integration tests.

Each test file runs as its own pytest process (one ctest test per file), so the
session-scoped Dovecot is private to that file. Tests still never depend on each
other's mail: they use unique mailboxes, or count relative to what they saw first.
"""

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402


def pytest_configure(config):
    if not os.access(harness.PIMAPD, os.X_OK):
        # Fail loudly instead of skipping: a missing binary must never look green.
        raise pytest.UsageError("pimapd not found or not executable: %s" % harness.PIMAPD)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    node = request.node
    return any(getattr(node, "rep_" + w, None) is not None and getattr(node, "rep_" + w).failed
               for w in ("setup", "call"))


def _dump(title, text, limit=20000):
    if len(text) > limit:
        text = "...[%d bytes cut]...\n" % (len(text) - limit) + text[-limit:]
    sys.stderr.write("\n----- %s -----\n%s\n----- end of %s -----\n" % (title, text, title))


@pytest.fixture(scope="session")
def workdir():
    d = harness.make_state_dir("pimap-it-")
    yield d
    if not os.environ.get("PIMAP_KEEP_TEST_DIRS"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def tls_cert(workdir):
    """(cert.pem, key.pem) of a self-signed cert for localhost / 127.0.0.1."""
    return harness.generate_cert(workdir)


@pytest.fixture(scope="session")
def tls_client_ctx(tls_cert):
    return harness.client_tls_context(tls_cert[0])


@pytest.fixture(scope="module")
def intake_port():
    """A port for pimapd's store-events intake (--store-events-listen)."""
    return harness.free_ports(1)[0]


@pytest.fixture(scope="session")
def intake_secret(workdir):
    """(secret, path of the file holding it) for pimapd's --store-events-secret-file;
    the push Dovecot sends the secret as X-Pimap-Secret."""
    return harness.make_secret_file(os.path.join(workdir, "push.secret"))


@pytest.fixture(scope="module")
def intake_args(intake_port, intake_secret):
    """pimapd flags for an intake on intake_port that requires the secret."""
    return ["--store-events-listen", "127.0.0.1:%d" % intake_port,
            "--store-events-secret-file", intake_secret[1]]


@pytest.fixture(scope="module")
def push_dovecot(workdir, intake_port, intake_secret):
    """A Dovecot whose push_notification Lua driver posts to intake_port (with the
    intake's secret)."""
    d = harness.started_dovecot(os.path.join(workdir, "dovecot-push"),
                                push_url="http://127.0.0.1:%d/dovecot" % intake_port,
                                push_secret=intake_secret[0])
    yield d
    d.stop()


@pytest.fixture(scope="session")
def dovecot(workdir):
    """The shared private Dovecot store of this test file."""
    d = harness.started_dovecot(os.path.join(workdir, "dovecot"))
    yield d
    d.stop()


@pytest.fixture
def dedicated_dovecot(workdir, request):
    """A Dovecot only this test uses (e.g. to kill it under a client)."""
    d = harness.Dovecot(harness.make_state_dir("pimap-dovecot-own-"))
    d.start()
    yield d
    if _failed(request):
        _dump("dedicated dovecot log", d.log())
    d.stop()
    if not os.environ.get("PIMAP_KEEP_TEST_DIRS"):
        shutil.rmtree(d.dir, ignore_errors=True)


@pytest.fixture
def start_pimapd(workdir, dovecot, request):
    """Factory: start_pimapd(**kwargs) -> running harness.Pimapd against the shared store.

    Keyword arguments go to harness.Pimapd (tls=, plaintext=, shards=, admin=, extra=, ...);
    store= defaults to the shared Dovecot. Every instance is stopped at the end of the
    test; on failure its log (and Dovecot's) is printed.
    """
    started = []

    def factory(start=True, **kwargs):
        kwargs.setdefault("log_dir", workdir)
        store = kwargs.pop("store", dovecot.store)
        p = harness.Pimapd(store, **kwargs)
        started.append(p)
        if start:
            p.start()
        return p

    yield factory
    for p in started:
        p.stop()
    if _failed(request):
        for i, p in enumerate(started):
            _dump("pimapd[%d] log (%s)" % (i, p.log_path), p.log())
        _dump("dovecot log", dovecot.log())


@pytest.fixture
def gateway(start_pimapd, tls_cert):
    """pimapd with TLS on both ports, plaintext auth allowed, 2 shards, admin endpoint."""
    return start_pimapd(tls=tls_cert, plaintext=True, shards=2, admin=True)


@pytest.fixture(scope="session")
def master_password_file(workdir):
    """The store master user's password, for --store-master-password-file."""
    path = os.path.join(workdir, "store-master.pw")
    with open(path, "w") as f:
        f.write(harness.MASTER_PASSWORD + "\n")
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def start_pimap_gateway(start_pimapd, master_password_file):
    """Factory: a pimapd for P-IMAP tests (plaintext, 2 shards, admin endpoint) whose
    per-user watch logs in as the store master user.

    start_pimap_gateway(notification_filter="NONE", extra=(), **kwargs); kwargs go to
    start_pimapd (store=, shards=, start=, ...)."""

    def factory(notification_filter="NONE", extra=(), **kwargs):
        kwargs.setdefault("plaintext", True)
        kwargs.setdefault("shards", 2)
        kwargs.setdefault("admin", True)
        # Pooled store links close after --store-link-idle (30s by default): the
        # tests that count the store's connections wait one second, not thirty.
        args = ["--store-master-user", harness.MASTER_USER,
                "--store-master-password-file", master_password_file,
                "--store-link-idle", "1s"]
        if notification_filter is not None:
            args += ["--default-notification-filter", notification_filter]
        return start_pimapd(extra=args + list(extra), **kwargs)

    return factory


@pytest.fixture
def pimap_gateway(start_pimap_gateway, request):
    """pimapd for P-IMAP against the shared store; parametrize indirectly with a dict of
    start_pimap_gateway arguments, e.g. {"notification_filter": "ALL"}."""
    return start_pimap_gateway(**getattr(request, "param", {}))
