"""An IMAP conformance suite nobody here wrote, run through pimapd (issue 10: "conformance
does not drop").

The suite is the live-server tests of the Perl module Mail::IMAPClient 3.43 (t/basic.t:
111 tests of LIST/LSUB, CREATE/DELETE/RENAME, APPEND with dates and literals, FETCH,
SEARCH, STORE, COPY, UID EXPUNGE, IDLE, two clients migrating mail, reconnect; t/quota.t).
The module comes from Debian (libmail-imapclient-perl); its tests are not packaged, so
tools/fetch-conformance-suite (called by tools/setup) keeps the upstream tarball, checked
against a pinned SHA-256, in a cache outside the repository. No copy is committed here.

It runs three times, each as a fresh user (the suite creates and deletes folders of its
own, but INBOX state such as "no message 42" matters): directly against this file's
Dovecot, through pimapd with --park-after 0 (a plain relay), and through pimapd with
--park-after 50ms, so that the suite's IDLE (idle, sleep 1, DONE) is parked and unparked.
The tests that fail through pimapd must be a subset of those that fail directly.

If the suite cannot be fetched the test FAILS, offline or not: a conformance run that did
not happen must never look green (docs/conformance.md). PIMAP_CONFORMANCE_TARBALL=path
runs a copy already at hand instead (not checked against the pin: the caller vouches).
"""

import os
import re
import subprocess
import tarfile

import pytest

import harness
from harness import HOST, USERS

pytestmark = pytest.mark.timeout(180)

FETCH = os.path.join(harness.SOURCE_DIR, "tools", "fetch-conformance-suite")
# The suite's files that talk to a live server (the others are offline parser tests).
LIVE_FILES = ("t/basic.t", "t/quota.t")
RUN_TIMEOUT = 120  # one run takes ~5 s directly; the harness' Dovecot auth penalty is 15 s

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


def normalize(name):
    """A test's name without what changes from run to run: the suite's pid in folder
    names, UIDs, sizes, temp file names and the STARTTLS error text."""
    name = re.sub(r"/tmp/\S+", "TMPFILE", name or "")
    name = re.sub(r"\d+", "N", name)
    return name.split(": (error)")[0]


class Run:
    """One pass of the suite: per file, the plan and the failing tests."""

    def __init__(self, label):
        self.label = label
        self.failed = set()   # "basic.t #30 delete parent folder"
        self.passed = 0
        self.output = []      # (file, stdout + stderr)
        self.workdir = None

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
            key = "%s #%d %s" % (base, n, normalize(m.group(3)))
            if m.group(1).lower() == "ok" or (m.group(4) or "").upper() == "TODO":
                self.passed += 1
            else:
                self.failed.add(key)
        assert plan is not None, "%s printed no TAP plan:\n%s" % (fname, out[-4000:])
        # A suite that died half-way (e.g. "couldn't migrate") fails every test it skipped.
        for n in range(1, plan + 1):
            if n not in seen:
                self.failed.add("%s #%d (not run)" % (base, n))

    def transcripts(self):
        text = []
        for name in ("imap1.debug", "imap2.debug"):
            path = os.path.join(self.workdir, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text.append("--- %s %s ---\n%s" % (self.label, name, f.read()[-20000:]))
        return "\n".join(text)


def run_suite(tarball, workdir, label, port, user):
    """Unpack the suite into its own directory, point its test.txt at HOST:port as user,
    and run the live files with debugging on (imap1.debug, imap2.debug: the client's
    transcripts, printed when a comparison fails)."""
    d = os.path.join(workdir, "conformance-" + re.sub(r"\W+", "-", label))
    os.makedirs(d, exist_ok=True)
    with tarfile.open(tarball) as t:
        root = t.getnames()[0].split("/")[0]
        t.extractall(d)
    d = os.path.join(d, root)
    with open(os.path.join(d, "test.txt"), "w") as f:
        f.write("server=%s\nport=%d\nuser=%s\npassed=%s\nauthmechanism=LOGIN\n"
                % (HOST, port, user, USERS[user]))
    run = Run(label)
    run.workdir = d
    for fname in LIVE_FILES:
        # Debian's installed module (the same 3.43), the suite's own t/lib for MyTest.
        r = subprocess.run(["perl", fname, "1"], cwd=d, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=RUN_TIMEOUT)
        run.output.append((fname, r.stdout + r.stderr))
        run.parse(fname, r.stdout)
    return run


@pytest.fixture(scope="module")
def direct(tarball, workdir, dovecot):
    run = run_suite(tarball, workdir, "direct", dovecot.imap_port, "alice")
    print("direct: %d passed, failing: %s" % (run.passed, sorted(run.failed)))
    return run


def compare(direct, run):
    print("direct: %d passed, failing: %s" % (direct.passed, sorted(direct.failed)))
    print("%s: %d passed, failing: %s" % (run.label, run.passed, sorted(run.failed)))
    extra = run.failed - direct.failed - set(KNOWN_DIFFERENCES)
    if extra:
        out = "\n".join("=== %s %s\n%s" % (run.label, f, o[-6000:]) for f, o in run.output)
        pytest.fail("fail through pimapd (%s), not directly: %s\n%s\n%s"
                    % (run.label, sorted(extra), out, run.transcripts()), pytrace=False)


def test_suite_runs_directly(direct):
    """The baseline itself ran: the suite logged in and did most of its work."""
    assert direct.passed >= 100, [o for _, o in direct.output]


@pytest.mark.parametrize("park_after", ["0", "50ms"])
def test_no_more_failures_through_pimapd(tarball, workdir, direct, start_pimapd, park_after):
    user = "bob" if park_after == "0" else "carol"
    gw = start_pimapd(admin=True, shards=2,
                      extra=["--park-after", park_after, "--store-link-idle", "1s"])
    run = run_suite(tarball, workdir, "pimapd --park-after " + park_after, gw.imap_port, user)
    compare(direct, run)
    m = gw.metrics()
    parks = int(m["pimap_relay_parks_total"][None])
    unparks = int(m["pimap_relay_unparks_total"][None])
    if park_after == "0":
        assert parks == 0, m["pimap_relay_parks_total"]
    else:
        # The suite's IDLE (1 s) must really have been parked and resumed.
        assert parks >= 1 and unparks >= 1, (parks, unparks)
