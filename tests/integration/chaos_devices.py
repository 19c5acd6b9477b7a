"""Many P-IMAP devices driven by one selectors loop, and the store's own events from a
thread, for the chaos test (test_chaos.py, issue 14).

A device never blocks: its socket is non-blocking, every line it receives goes through
harness.DeviceView as it arrives (which raises on what cannot be right for the device),
and every command it sends has a deadline. A device drops its connection only with no
command outstanding (in IDLE or between commands): a command acknowledges what the
gateway wrote before it arrived, so a device that dropped while waiting for a tagged
answer could lose what its command acknowledged, by its own fault.
"""

import random
import re
import selectors
import socket
import threading
import time

import harness
from harness import DeviceView, RawImap, make_message, ok, quote

CMD_TIMEOUT = 60.0  # pimapd's --store-timeout is 15 s; a store restart may take a few

DOWN, CONNECTING, BUSY, READY, IDLING, SETTLED = (
    "down", "connecting", "busy", "ready", "idling", "settled")


class ChaosFailure(AssertionError):
    pass


class Device:
    """One P-IMAP device of user#name; `view` is what it knows of its INBOX."""

    def __init__(self, net, user, password, name, source="127.0.0.1"):
        self.net = net
        self.source = source
        self.user, self.password = user, password
        self.login = "%s#%s" % (user, name)
        self.sock = None
        self.state = DOWN
        self.inbuf = b""
        self.outbuf = b""
        self.view = None
        self.selected = False  # the first SELECT completed: every later login resumes
        self.pending = None  # (tag, what, deadline)
        self.need_fetch = False  # a RESYNC emptied the view: FETCH 1:* once ready
        self.login_lines = []
        self.stats = dict(logins=0, resumes=0, resyncs=0, lost=0, drops=0, refused=0,
                          no=0, pushed=0, commands=0)
        self.tagn = 0
        self.trace = []  # (time, line or action), for a failure's message
        # The end of the chaos test (test_chaos.settle_step).
        self.final_fetch = False
        self.poll_before_fetch = False  # settle: a FETCH left an MSN without UID
        self.stale_flags = None
        self.next_poll = 0.0
        self._match_since = None

    def uids_match_since(self, now):
        """When the device's UIDs first matched the store (the caller checked they do)."""
        if self._match_since is None:
            self._match_since = now
        return self._match_since

    # -- failure
    def fail(self, why):
        raise ChaosFailure("%s: %s (seed %s)\nstate %s, view %r\nflags %r\nlast: %r" % (
            self.login, why, self.net.seed, self.state,
            self.view.uids if self.view else None,
            sorted(self.view.flags.items()) if self.view else None, self.trace[-40:]))

    def _note(self, x):
        self.trace.append((round(time.monotonic() - self.net.t0, 3), x))

    # -- connection
    def connect(self):
        assert self.state == DOWN
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((self.source, 0))  # devices come from many addresses (any 127/8 is local)
        s.connect_ex((harness.HOST, self.net.port))
        self.sock = s
        self.inbuf = self.outbuf = b""
        self.state = CONNECTING
        self.pending = ("*", "greeting", time.monotonic() + CMD_TIMEOUT)
        self.net.sel.register(s, selectors.EVENT_READ, self)
        self._note("connect")

    def close(self, why):
        if self.sock is not None:
            try:
                self.net.sel.unregister(self.sock)
            except (KeyError, ValueError):
                pass
            self.sock.close()
        self.sock = None
        self.state = DOWN
        self.pending = None
        self._note("closed: " + why)

    def drop(self):
        """The device goes away without a word (only with no command outstanding)."""
        assert self.state in (READY, IDLING), self.state
        self.stats["drops"] += 1
        self.close("dropped")

    def _send(self, data):
        self.outbuf += data
        self._flush()

    def _flush(self):
        try:
            n = self.sock.send(self.outbuf)
        except BlockingIOError:
            n = 0
        except OSError as e:
            self.stats["lost"] += 1
            self.close("send: %r" % e)
            return
        self.outbuf = self.outbuf[n:]
        self.net.sel.modify(self.sock, selectors.EVENT_READ | (
            selectors.EVENT_WRITE if self.outbuf else 0), self)

    def command(self, what, text):
        assert self.state == READY, self.state
        self.tagn += 1
        tag = "%s%d" % (what[:1], self.tagn)
        self.pending = (tag, what, time.monotonic() + CMD_TIMEOUT)
        self.state = BUSY
        self.stats["commands"] += 1
        self._note(">%s %s" % (tag, text))
        self._send(("%s %s\r\n" % (tag, text)).encode())

    def noop(self):
        self.command("noop", "NOOP")

    def fetch_all(self):
        self.need_fetch = False
        if self.view.uids:
            self.command("fetch", "FETCH 1:* (UID FLAGS)")

    def idle(self):
        self.command("idle", "IDLE")

    def done(self):
        assert self.state == IDLING, self.state
        self.state = BUSY
        self.pending = (self.pending[0], "done", time.monotonic() + CMD_TIMEOUT)
        self._note(">DONE")
        self._send(b"DONE\r\n")

    # -- input
    def on_event(self, mask):
        if mask & selectors.EVENT_WRITE and self.sock is not None:
            self._flush()
        if not mask & selectors.EVENT_READ or self.sock is None:
            return
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError as e:  # refused (pimapd down), reset
            data = None
            err = repr(e)
        if not data:
            self.stats["lost"] += 1
            self.close("eof" if data == b"" else err)
            return
        self.inbuf += data
        while self.sock is not None and b"\n" in self.inbuf:
            i = self.inbuf.index(b"\n") + 1
            line, self.inbuf = self.inbuf[:i], self.inbuf[i:]
            if re.search(rb"\{\d+\+?\}\r\n$", line):
                self.fail("unexpected literal in %r" % line)
            self.on_line(line)

    def on_line(self, line):
        self._note(line)
        if line.startswith(b"+"):
            if self.pending and self.pending[1] == "idle":
                self.state = IDLING
                return
            self.fail("unexpected continuation")
        if line.startswith(b"* "):
            return self.on_untagged(line)
        tag, _, rest = line.partition(b" ")
        if not self.pending or tag.decode(errors="replace") != self.pending[0]:
            self.fail("unexpected tagged line %r (pending %r)" % (line, self.pending))
        what = self.pending[1]
        self.pending = None
        self.state = READY
        if not rest.upper().startswith(b"OK"):
            return self.on_refused(what, line)
        if what == "login":
            return self.on_logged_in()
        if what == "select":
            self.selected = True
            return self.fetch_all()
        if self.need_fetch:
            self.fetch_all()

    def on_untagged(self, line):
        if self.state == CONNECTING:
            if line.startswith(b"* BYE [UNAVAILABLE]"):  # too many at once: later
                self.stats["refused"] += 1
                return self.close("greeting %r" % line)
            if not line.startswith(b"* OK"):
                self.fail("greeting %r" % line)
            self.state = BUSY
            self.stats["logins"] += 1
            self.login_lines = []
            self.tagn += 1
            tag = "L%d" % self.tagn
            self.pending = (tag, "login", time.monotonic() + CMD_TIMEOUT)
            self._send(("%s LOGIN %s %s\r\n" % (tag, quote(self.login),
                                               quote(self.password))).encode())
            return
        if self.pending and self.pending[1] == "login":
            self.login_lines.append(line)
        if line.upper().startswith(b"* VANISHED"):
            self.fail("VANISHED sent to a device that did not enable QRESYNC")
        if self.view is None:
            if re.match(rb"\* \d+ (EXISTS|EXPUNGE|FETCH)", line, re.I):
                self.fail("a message event before the first SELECT")
            return
        try:
            kind = self.view.apply(line)
        except AssertionError as e:
            self.fail("impossible for the device: %s" % str(e).split(": [")[0])
        if len(self.view.log) > 400:
            del self.view.log[:200]
        if kind == "resync":
            self.stats["resyncs"] += 1
            self.need_fetch = True
        elif kind and self.state == IDLING:
            self.stats["pushed"] += 1

    def on_logged_in(self):
        state = folder = None
        for x in self.login_lines:
            u = x.rstrip(b"\r\n").upper()
            if u.startswith(b"* SESSION "):
                state = u[10:].decode()
            elif u.startswith(b"* FOLDER "):
                folder = u[9:].decode()
        if not self.selected:
            if self.view is None:
                self.view = DeviceView()
            self.view.uids, self.view.flags = [], {}
            self.command("select", "SELECT INBOX")
            return
        if state != "SELECTED" or folder != "INBOX":
            self.fail("resume without the selected INBOX: %r" % self.login_lines)
        self.stats["resumes"] += 1
        if self.need_fetch:
            self.fetch_all()

    def on_refused(self, what, line):
        self.stats["no"] += 1
        if what == "login":
            if b"[LIMIT]" in line.upper():
                self.fail("login refused for the device limit: %r" % line)
            self.stats["refused"] += 1
            self.close("login refused: %r" % line)
        elif what == "idle":
            pass  # e.g. the store is away; the device tries again later
        elif what in ("fetch", "select"):
            self.need_fetch = what == "fetch"
            if what == "select":
                self.close("SELECT refused")

    def check_deadline(self, now):
        if self.pending and self.state in (CONNECTING, BUSY) and now > self.pending[2]:
            self.fail("no answer to %s within %.0fs" % (self.pending[1], CMD_TIMEOUT))


class DeviceNet:
    """The devices, their selector, and the port of the current pimapd."""

    def __init__(self, seed, port):
        self.seed = seed
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.devices = []
        self.t0 = time.monotonic()

    def add(self, user, password, name):
        i = len(self.devices)
        d = Device(self, user, password, name, "127.1.%d.%d" % (i // 200, 1 + i % 200))
        self.devices.append(d)
        return d

    def pump(self, timeout):
        """Handles the input that arrives within timeout (at least one select)."""
        end = time.monotonic() + timeout
        while True:
            for key, mask in self.sel.select(max(0.0, end - time.monotonic())):
                key.data.on_event(mask)
            now = time.monotonic()
            if now >= end:
                break
        for d in self.devices:
            d.check_deadline(now)

    def count(self, *states):
        return sum(1 for d in self.devices if d.state in states)

    def totals(self):
        out = {}
        for d in self.devices:
            for k, v in d.stats.items():
                out[k] = out.get(k, 0) + v
        return out


def extra_users(n):
    """[(user, password)] of the chaos users (added to the store by PIMAP_EXTRA_USERS)."""
    return [("chaos%03d" % i, "chaospw%03d" % i) for i in range(n)]


def write_users_file(path, users):
    with open(path, "w") as f:
        for u, p in users:
            f.write("%s:{PLAIN}%s\n" % (u, p))
    return path


class StoreChaos(threading.Thread):
    """The store's own events over direct store connections, one per user: new mail
    (APPEND), flag changes (a keyword, \\Seen, \\Flagged) and expunges, `total` of them
    at about `rate` per second; at event `restart_at` the store is restarted (mail and
    UIDs kept) and its connections opened again. `done` counts the events made."""

    KEYWORDS = ("$Chaos", "\\Seen", "\\Flagged")

    def __init__(self, dovecot, users, total, rate, seed, restart_at=None):
        super().__init__(daemon=True)
        self.dovecot, self.users = dovecot, dict(users)
        self.total, self.rate, self.restart_at = total, rate, restart_at
        self.rng = random.Random(seed + 1)
        self.done = 0
        self.t0 = time.monotonic()
        self.history = []  # (time, user, what) of every event, for a failure's dump
        self.kinds = {"new": 0, "flag": 0, "expunge": 0}
        self.restarted = None  # seconds the store restart took
        self.error = None
        self.stop = threading.Event()
        self.conns, self.uids = {}, {}

    def open(self):
        for u, p in self.users.items():
            c = RawImap(harness.HOST, self.dovecot.imap_port)
            c.login(u, p)
            ok(c.cmd("s", "SELECT INBOX")[1], "s")
            self.conns[u] = c
            untagged, t = c.cmd("u", "UID SEARCH ALL")
            ok(t, "u")
            self.uids[u] = [int(x) for line in untagged if line.startswith(b"* SEARCH")
                            for x in line.split()[2:]]

    def reopen(self, attempts=40):
        """open() right after a store restart: the store may still refuse logins
        for a moment (its auth process starting), so try again for up to ~10 s."""
        for i in range(attempts):
            try:
                self.close()
                self.open()
                return
            except (OSError, AssertionError, EOFError):
                if i == attempts - 1:
                    raise
                time.sleep(0.25)

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns = {}

    def fill(self, n):
        """Every user's INBOX gets at least n messages."""
        for u in self.users:
            while len(self.uids[u]) < n:
                self.new(u)

    def new(self, u):
        uid = harness.append(self.conns[u], "INBOX", make_message("chaos", to=u + "@x.test"))
        assert uid, "no APPENDUID"
        self.history.append((round(time.monotonic() - self.t0, 3), u, "new %d" % uid))
        self.uids[u].append(uid)

    def event(self):
        u = self.rng.choice(sorted(self.users))
        uids = self.uids[u]
        r = self.rng.random()
        c = self.conns[u]
        if r < 0.4 or len(uids) <= 3:
            self.new(u)
            return "new"
        uid = self.rng.choice(uids)
        if r < 0.7:
            op = self.rng.choice("+-")
            kw = self.rng.choice(self.KEYWORDS)
            ok(c.cmd("f", "UID STORE %d %sFLAGS.SILENT (%s)" % (uid, op, kw))[1], "f")
            self.history.append((round(time.monotonic() - self.t0, 3), u,
                                 "uid %d %sFLAGS %s" % (uid, op, kw)))
            return "flag"
        ok(c.cmd("d", "UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)[1], "d")
        ok(c.cmd("e", "UID EXPUNGE %d" % uid)[1], "e")
        uids.remove(uid)
        self.history.append((round(time.monotonic() - self.t0, 3), u, "expunge %d" % uid))
        return "expunge"

    def run(self):
        try:
            start = time.monotonic()
            while self.done < self.total and not self.stop.is_set():
                if self.done == self.restart_at:
                    t0 = time.monotonic()
                    self.close()
                    self.dovecot.restart()
                    self.reopen()
                    self.restarted = time.monotonic() - t0
                    self.history.append((round(t0 - self.t0, 3), "*", "store restart"))
                self.kinds[self.event()] += 1
                self.done += 1
                ahead = start + self.done / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        except BaseException as e:  # reported by the test's loop
            self.error = e
