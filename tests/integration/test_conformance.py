"""An IMAP conformance suite nobody here wrote, run through pimapd (issue 10: "conformance
does not drop").

The suite is the live-server tests of the Perl module Mail::IMAPClient 3.43 (t/basic.t:
111 tests of LIST/LSUB, CREATE/DELETE/RENAME, APPEND with dates and literals, FETCH,
SEARCH, STORE, COPY, UID EXPUNGE, IDLE, two clients migrating mail, reconnect; t/quota.t).
The module comes from Debian (libmail-imapclient-perl); its tests are not packaged, so
tools/fetch-conformance-suite (called by tools/setup) keeps the upstream tarball, checked
against a pinned SHA-256, in a cache outside the repository. No copy is committed here.

Each variant (the suite as shipped; with Uid=1 in its test.txt, so that every message
command goes by UID; with Starttls=1, so that the whole session runs over TLS) runs three
times, each as a fresh user of a Dovecot of this file's
own (the suite creates and deletes folders of its own, but INBOX state such as "no
message 42" matters): directly against Dovecot, through pimapd with --park-after 0 (a
plain relay), and through pimapd with --park-after 50ms, so that the suite's IDLE (idle,
sleep 1, DONE) is parked and unparked. The tests that fail through pimapd must be a
subset of those that fail directly (both lists are printed).

If the suite cannot be fetched the test FAILS, offline or not: a conformance run that did
not happen must never look green (docs/conformance.md). PIMAP_CONFORMANCE_TARBALL=path
runs a copy already at hand instead (not checked against the pin: the caller vouches).
"""

import os
import re
import shutil
import subprocess
import tarfile

import pytest

import harness
from harness import HOST

pytestmark = pytest.mark.timeout(180)

FETCH = os.path.join(harness.SOURCE_DIR, "tools", "fetch-conformance-suite")
# The suite's files that talk to a live server (the others are offline parser tests).
LIVE_FILES = ("t/basic.t", "t/quota.t")
RUN_TIMEOUT = 120  # one run takes ~4 s; Dovecot's auth failure penalty alone is 15 s

# Extra test.txt lines (the suite passes them to Mail::IMAPClient->new) per variant.
# (Ssl=1, implicit TLS, is not run: the suite's last test then sends a plaintext
# STARTTLS to the TLS port and waits for the server's handshake timeout, 60 s or more.)
VARIANTS = {"plain": "", "uid": "Uid=1\n", "starttls": "Starttls=1\n"}
# The pimapd runs of each variant: --park-after.
PARK_AFTER = ("0", "50ms")
# One fresh store user per run: (variant, mode) -> user.
RUNS = [(v, m) for v in VARIANTS for m in ("direct",) + PARK_AFTER]
USERS = {run: ("conf%d" % i, "confpw%d" % i) for i, run in enumerate(RUNS)}

# Tests that fail through pimapd and not directly, each with why. Empty: none known.
KNOWN_DIFFERENCES = {}

_TAP = re.compile(r"^(not ok|ok) (\d+)(?: - (.*?))?(?: # (skip|TODO)\b.*)?$", re.I)
_PLAN = re.compile(r"^1\.\.(\d+)")


@pytest.fixture(scope="module")
def tarball():
    path = os.environ.get("PIMAP_CONFORMANCE_TARBALL")
    if path:
        assert os.path.isfile(path), "PIMAP_CONFORMANCE_TARBALL=%s: no such file" % path
        return path
    r = subprocess.run([FETCH], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        pytest.fail("the conformance suite (Mail::IMAPClient 3.43's tests) is not available: "
                    "%s\nrun tools/setup (or tools/fetch-conformance-suite) with network "
                    "access" % r.stderr.strip(), pytrace=False)
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def store(tls_cert):
    """A Dovecot of this file's own, with one user per run (PIMAP_EXTRA_USERS) and
    STARTTLS (the certificate pimapd presents too)."""
    base = harness.make_state_dir("pimap-conformance-")
    users = os.path.join(base, "users")
    with open(users, "w") as f:
        for user, password in USERS.values():
            f.write("%s:{PLAIN}%s\n" % (user, password))
    old = os.environ.get("PIMAP_EXTRA_USERS")
    os.environ["PIMAP_EXTRA_USERS"] = users
    try:
        d = harness.Dovecot(os.path.join(base, "dovecot"), tls=tls_cert)
        os.makedirs(d.dir)
        os.chmod(d.dir, 0o755)
        d.start()
    finally:
        if old is None:
            del os.environ["PIMAP_EXTRA_USERS"]
        else:
            os.environ["PIMAP_EXTRA_USERS"] = old
    yield d
    d.stop()
    if not os.environ.get("PIMAP_KEEP_TEST_DIRS"):
        shutil.rmtree(base, ignore_errors=True)


def normalize(name):
    """A test's name without what changes from run to run: the suite's pid in folder
    names, UIDs, sizes, temp file names and the STARTTLS error text."""
    name = re.sub(r"/tmp/\S+", "TMPFILE", name or "")
    name = re.sub(r"\d+", "N", name)
    return name.split(": (error)")[0]


class Run:
    """One pass of the suite: the passed count and the failing tests' keys."""

    def __init__(self, label, workdir):
        self.label = label
        self.workdir = workdir
        self.failed = set()   # "basic.t #30 delete parent folder"
        self.passed = 0
        self.output = []      # (file, stdout + stderr)

    def parse(self, fname, out):
        base = os.path.basename(fname)
        plan, seen = None, set()
        for line in out.splitlines():
            m = _PLAN.match(line)
            if m and plan is None:
                plan = int(m.group(1))
                continue
            m = _TAP.match(line)
            if not m:
                continue
            n = int(m.group(2))
            seen.add(n)
            if m.group(1).lower() == "ok" or (m.group(4) or "").upper() == "TODO":
                self.passed += 1
            else:
                self.failed.add("%s #%d %s" % (base, n, normalize(m.group(3))))
        assert plan is not None, "%s printed no TAP plan:\n%s" % (fname, out[-4000:])
        # A suite that died half-way (e.g. "couldn't migrate") fails every test it skipped.
        for n in range(1, plan + 1):
            if n not in seen:
                self.failed.add("%s #%d (not run)" % (base, n))

    def report(self):
        return "%s: %d passed, failing: %s" % (self.label, self.passed, sorted(self.failed))

    def transcript(self, name="imap1.debug"):
        try:
            with open(os.path.join(self.workdir, name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def details(self):
        """The suite's output and the client's transcripts (imap1.debug: the main
        client, imap2.debug: the second one of the migrate test)."""
        text = ["=== %s %s\n%s" % (self.label, f, o[-6000:]) for f, o in self.output]
        for name in ("imap1.debug", "imap2.debug"):
            text.append("=== %s %s\n%s" % (self.label, name, self.transcript(name)[-20000:]))
        return "\n".join(text)


def run_suite(tarball, label, port, run_key, cafile):
    """Unpack the suite into a directory of its own, point its test.txt at HOST:port
    as the run's user, and run the live files with debugging on."""
    d = harness.make_state_dir("pimap-conformance-run-")
    with tarfile.open(tarball) as t:
        root = t.getnames()[0].split("/")[0]
        t.extractall(d)
    suite = os.path.join(d, root)
    user, password = USERS[run_key]
    with open(os.path.join(suite, "test.txt"), "w") as f:
        f.write("server=%s\nport=%d\nuser=%s\npassed=%s\nauthmechanism=LOGIN\n%s"
                % (HOST, port, user, password, VARIANTS[run_key[0]]))
    run = Run(label, suite)
    # IO::Socket::SSL verifies the server's certificate against this CA file.
    env = dict(os.environ, SSL_CERT_FILE=cafile)
    for fname in LIVE_FILES:
        # Debian's installed module (the same 3.43), the suite's own t/lib for MyTest;
        # "1" turns on its debugging (transcripts in imap1.debug, imap2.debug).
        r = subprocess.run(["perl", fname, "1"], cwd=suite, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace",
                           timeout=RUN_TIMEOUT)
        run.output.append((fname, r.stdout + r.stderr))
        run.parse(fname, r.stdout)
    return run, d


_direct_runs = {}


def direct_run(tarball, store, variant, cafile):
    """The variant's baseline, run once for the module."""
    if variant not in _direct_runs:
        run, d = run_suite(tarball, "direct " + variant, store.imap_port, (variant, "direct"),
                           cafile)
        _direct_runs[variant] = run
        if not os.environ.get("PIMAP_KEEP_TEST_DIRS"):
            shutil.rmtree(d, ignore_errors=True)
    return _direct_runs[variant]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_suite_runs_directly(tarball, store, tls_cert, variant):
    """The baseline itself ran: the suite logged in and did most of its work."""
    run = direct_run(tarball, store, variant, tls_cert[0])
    print(run.report())
    assert run.passed >= 100, run.details()


@pytest.mark.parametrize("park_after", PARK_AFTER)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_more_failures_through_pimapd(tarball, store, tls_cert, start_pimapd, variant,
                                        park_after):
    direct = direct_run(tarball, store, variant, tls_cert[0])
    assert direct.passed >= 100, direct.details()  # a baseline worth comparing with
    gw = start_pimapd(store=store.store, tls=tls_cert, admin=True, shards=2,
                      extra=["--park-after", park_after, "--store-link-idle", "1s"])
    run, d = run_suite(tarball, "pimapd --park-after %s %s" % (park_after, variant),
                       gw.imap_port, (variant, park_after), tls_cert[0])
    print(direct.report())
    print(run.report())
    extra = run.failed - direct.failed - set(KNOWN_DIFFERENCES)
    if extra:
        pytest.fail("fail through pimapd (%s), not directly: %s\n%s\n=== store log\n%s"
                    % (run.label, sorted(extra), run.details(), store.log()[-10000:]),
                    pytrace=False)
    if variant == "starttls":  # the session really ran over TLS through pimapd
        assert re.search(r"Read: \t1 OK Begin TLS", run.transcript()), run.details()
    m = gw.metrics()
    parks = int(m["pimap_relay_parks_total"][None])
    unparks = int(m["pimap_relay_unparks_total"][None])
    if park_after == "0":
        assert parks == 0, parks
    else:
        # The suite's IDLE (1 s) must really have been parked and resumed.
        assert parks >= 1 and unparks >= 1, (parks, unparks)
    if not os.environ.get("PIMAP_KEEP_TEST_DIRS"):
        shutil.rmtree(d, ignore_errors=True)
