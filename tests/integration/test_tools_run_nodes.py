"""Issue 16 item 6: `tools/run --nodes 3` starts a Dovecot, an etcd, three pimapd nodes and
HAProxy in front of them, and prints how to watch ownership move.

The script runs as a user would run it (PIMAPD= the binary under test, its state in a
temporary PIMAP_STATE_DIR rather than the repository's state/): a demo user logs in
through HAProxy's port as printed; the printed etcdctl commands show three members and
the user's owner; the owner node is killed hard (its printed pid) and the user logs in
again through HAProxy, now served by a survivor; SIGTERM to tools/run then leaves none
of the run's processes behind (the nodes, etcd, HAProxy, Dovecot and its children)."""

import imaplib
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import psutil
import pytest

import harness
from etcd_harness import etcd_available
from harness import HOST, wait_until

pytestmark = [
    pytest.mark.timeout(150),
    pytest.mark.skipif(not etcd_available() or shutil.which("etcdctl") is None,
                       reason="etcd not installed (tools/setup installs it)"),
    pytest.mark.skipif(shutil.which("haproxy") is None,
                       reason="haproxy not installed (tools/setup installs it)")]

TOOLS_RUN = os.path.join(harness.SOURCE_DIR, "tools", "run")
READY_WAIT = 60.0  # tools/setup, Dovecot, etcd, three nodes joining, HAProxy
MOVE_WAIT = 15.0   # the owner's lease (5 s) runs out, a survivor claims the user
STOP_WAIT = 30.0


class ToolsRun:
    """tools/run --nodes N as a child; its output is collected by a thread."""

    def __init__(self, nodes):
        self.state = harness.make_state_dir("pimap-run-nodes-")
        env = dict(os.environ, PIMAPD=harness.PIMAPD, PIMAP_STATE_DIR=self.state)
        env.pop("PIMAP_PORT", None)
        self.proc = subprocess.Popen([TOOLS_RUN, "--nodes", str(nodes)], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self):
        return "\n".join(self.lines)

    def find(self, pattern):
        m = re.search(pattern, self.output(), re.M)
        if m is None and self.proc.poll() is not None:
            raise AssertionError("tools/run exited with %d:\n%s"
                                 % (self.proc.returncode, self.output()))
        return m

    def processes(self):
        """Every process of this run: tools/run's descendants and the Dovecot daemon's."""
        procs = []
        try:
            procs += psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
        pidfile = os.path.join(self.state, "dovecot", "run", "master.pid")
        try:
            with open(pidfile) as f:
                master = psutil.Process(int(f.read().strip()))
            procs += [master] + master.children(recursive=True)
        except (OSError, ValueError, psutil.NoSuchProcess):
            pass
        return procs

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        subprocess.run([harness.DOVECOT_DOWN, os.path.join(self.state, "dovecot")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if not os.environ.get("PIMAP_KEEP_TEST_DIRS"):
            shutil.rmtree(self.state, ignore_errors=True)


def login(port, user, password):
    m = imaplib.IMAP4(HOST, port, timeout=harness.NET_TIMEOUT)
    try:
        m.login(user, password)
        typ, _ = m.select("INBOX")
        assert typ == "OK", typ
    finally:
        try:
            m.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def etcdctl(run, command):
    """Runs the printed etcdctl line whose arguments end with command; its output."""
    line = next(x.strip() for x in run.lines
                if "etcdctl" in x and x.strip().endswith(command))
    words = shlex.split(line)
    env = dict(os.environ)
    while "=" in words[0]:  # the leading VAR=value words
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return subprocess.run(words, env=env, capture_output=True, text=True, timeout=10,
                          check=True).stdout.splitlines()


def owner(run, user):
    out = etcdctl(run, "get --prefix /pimap/owners/")
    # etcdctl prints key and value on two lines.
    return dict(zip(out[0::2], out[1::2])).get("/pimap/owners/" + user)


def alive(proc):
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_three_nodes_behind_haproxy_and_a_user_moves_when_its_node_dies():
    run = ToolsRun(3)
    try:
        front = int(wait_until(lambda: run.find(r"IMAP \(HAProxy\)\s+127\.0\.0\.1:(\d+)"),
                               READY_WAIT, what="tools/run's HAProxy port").group(1))
        # Ready means every node joined (tools/run-cluster waited for it).
        pids = {m.group(1): int(m.group(2))
                for m in re.finditer(r"^\s+(node-\d)\s+pid (\d+)", run.output(), re.M)}
        assert sorted(pids) == ["node-1", "node-2", "node-3"], run.output()

        login(front, "alice", "alicepw")
        login(front, "alice#phone", "alicepw")
        members = etcdctl(run, "get --prefix /pimap/members/")
        assert members[0::2] == ["/pimap/members/node-%d" % i for i in (1, 2, 3)], members
        first = owner(run, "alice")
        assert first in pids, first

        # The owner dies outright: HAProxy takes it out, its lease expires, and the
        # next login through the same front is served by a survivor.
        os.kill(pids[first], signal.SIGKILL)
        killed_at = time.monotonic()

        def logged_in_again():
            try:
                login(front, "alice#phone", "alicepw")
                return True
            except (imaplib.IMAP4.error, OSError):
                return False

        wait_until(logged_in_again, MOVE_WAIT, interval=0.25,
                   what="alice logs in again after her node died")
        moved_after = time.monotonic() - killed_at
        second = owner(run, "alice")
        assert second in pids and second != first, (first, second)
        members = etcdctl(run, "get --prefix /pimap/members/")
        assert "/pimap/members/" + first not in members, members
        wait_until(lambda: run.find(r"%s \(pid %d\) exited" % (first, pids[first])), 5,
                   what="tools/run reports the dead node")
        # The printed metrics URL of the new owner counts its claim.
        url = re.search(r"^\s+%s\s.*metrics (http://\S+/metrics)" % second, run.output(),
                        re.M).group(1)
        with urllib.request.urlopen(url, timeout=10) as r:
            metrics = r.read().decode()
        claims = re.search(r"^pimap_cluster_claims_total (\d+)", metrics, re.M)
        assert claims and int(claims.group(1)) >= 1, metrics
        print("alice moved from %s to %s in %.1f s" % (first, second, moved_after))

        # SIGTERM stops everything this run started.
        procs = run.processes()
        names = {p.name() for p in procs}
        assert {"pimapd", "etcd", "haproxy", "dovecot"} <= names, names
        run.proc.send_signal(signal.SIGTERM)
        run.proc.wait(STOP_WAIT)
        wait_until(lambda: not [p for p in procs if alive(p)], 10,
                   what="every process of the run is gone")
        leftovers = [p.pid for p in psutil.process_iter(["cmdline"])
                     if run.state in " ".join(p.info["cmdline"] or [])]
        assert not leftovers, leftovers
        assert "tools/run: stopped." in run.output()
    except BaseException:
        print(run.output())
        raise
    finally:
        run.close()
