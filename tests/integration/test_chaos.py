"""Chaos test of P-IMAP sessions at scale (issue 14): many devices connect, resume, IDLE,
poll and drop their connections at random while the store changes (new mail, flag
changes, expunges through direct store connections); in the middle the store is
restarted, and later pimapd is killed (SIGKILL) and restarted on the same --state-dir.
Afterwards every device polls until it has as many messages as the store, and its whole
view (every MSN, UID and flag set) must equal the store's: first the view it built from
what it was pushed and sent at resume, then again after a FETCH 1:* (UID FLAGS).

Every device applies every line it receives as it arrives (harness.DeviceView raises on
what cannot be right for it: an EXPUNGE delivered twice shows as an MSN past the end or
a FETCH naming another UID at that MSN), so a non-idempotent event delivered twice fails
the test. The devices are non-blocking sockets in one selectors loop (chaos_devices.py),
so one Python process drives thousands of them.

Scale through the environment (defaults keep the suite fast):
  PIMAP_CHAOS_DEVICES (300), PIMAP_CHAOS_EVENTS (1500), PIMAP_CHAOS_SEED (20261207),
  PIMAP_CHAOS_RATE (store events per second, 150), PIMAP_CHAOS_MODES ("notify,push": the
  per-user watch, and pimapd's --store-events push, the store's pushes to the intake only),
  PIMAP_CHAOS_STRICT=0 (xfail, rather than fail, on the signatures of the defects the test
  found, all fixed now: stale flags, or a view that never equals the store's;
  docs/chaos-test.md).
The seed fixes the devices' choices and the store's events; thread timing is not
replayable, so a failure may need a few runs of its seed. Full scale (the issue's):

  cd tests/integration && PIMAP_CHAOS_DEVICES=2000 PIMAP_CHAOS_EVENTS=10000 \\
    PIMAPD=.../pimapd python3 -m pytest -q -s -rxXfE test_chaos.py

Documented long runs (2,000 devices, 10,000 events): docs/chaos-test.md. The first ones
found seven pimapd defects (stale pushed flags, mail lost after a restart, a ghost
message in push mode); after their fixes the full-scale runs pass strictly in both modes.
"""

import math
import os
import random
import shutil
import sys
import time

import pytest

import harness
from chaos_devices import (CONNECTING, DOWN, IDLING, READY, SETTLED, ChaosFailure, Device,
                           DeviceNet, StoreChaos, extra_users, write_users_file)
from harness import DeviceView, RawImap, fetch_list, ok

DEVICES = int(os.environ.get("PIMAP_CHAOS_DEVICES", "300"))
EVENTS = int(os.environ.get("PIMAP_CHAOS_EVENTS", "1500"))
SEED = int(os.environ.get("PIMAP_CHAOS_SEED", "20261207"))
RATE = float(os.environ.get("PIMAP_CHAOS_RATE", "150"))
MODES = os.environ.get("PIMAP_CHAOS_MODES", "notify,push").split(",")
DEVICES_PER_USER = 24  # under pimapd's --max-devices-per-user (32)
MAX_CONNECTING = 150  # logins in flight at once
ACT_PERIOD = 3.0  # each device acts about this often (seconds)
FLAG_GRACE = 5.0  # right UIDs, stale flags for this long: recorded as stale
STRICT = os.environ.get("PIMAP_CHAOS_STRICT", "1") != "0"

pytestmark = pytest.mark.timeout(max(300, 60 + DEVICES // 4 + EVENTS // 20))


def store_view(dovecot, user, password):
    """The store's [(uid, flags)] of user's INBOX in MSN order (flags without \\Recent)."""
    c = RawImap(harness.HOST, dovecot.imap_port)
    try:
        c.login(user, password)
        untagged, t = c.cmd("x", "EXAMINE INBOX")
        ok(t, "x")
        if not any(harness.EXISTS_RE.match(x) and not x.startswith(b"* 0 ") for x in untagged):
            return []
        untagged, t = c.cmd("f", "FETCH 1:* (UID FLAGS)")
        ok(t, "f")
        return fetch_list(untagged)
    finally:
        c.close()


def act(d, rng, net):
    """One random step of a device (never while it waits for an answer)."""
    r = rng.random()
    if d.state == DOWN:
        if r < 0.5 and net.count(CONNECTING) < MAX_CONNECTING:
            d.connect()
    elif d.state == IDLING:
        if r < 0.4:
            d.done()
        elif r < 0.55:
            d.drop()
    elif d.state == READY:
        if d.need_fetch:
            d.fetch_all()
        elif r < 0.3:
            d.noop()
        elif r < 0.45:
            d.drop()
        elif r < 0.55:
            d.fetch_all()
        else:
            d.idle()


def settle_step(d, want, now, net):
    """The end: the device leaves IDLE or resumes, polls until its view (from what it
    was pushed and sent) equals the store's, then FETCHes everything and must still
    equal it. A view whose UIDs are right but whose flags stay stale for FLAG_GRACE
    seconds is recorded (d.stale_flags) and then fetched. Returns True once settled."""
    if d.state == DOWN:
        if net.count(CONNECTING) < MAX_CONNECTING:
            d.connect()
    elif d.state == IDLING:
        d.done()
    elif d.state == READY:
        if d.need_fetch:
            d.fetch_all()
        elif d.final_fetch:
            if None not in d.view.uids and view_equals(d.view, want):
                d.close("settled")
                d.state = SETTLED
                return True
            d.final_fetch = False  # e.g. the FETCH left an MSN without UID: poll on
            d.poll_before_fetch = None in d.view.uids
            d.next_poll = now + 0.3
        elif now < d.next_poll:
            pass
        elif d.poll_before_fetch:
            # The last FETCH left an MSN without its UID (its message is gone
            # from the store): a FETCH by MSN cannot carry the EXPUNGE owed
            # ahead of it (RFC 3501 7.4.1), and new mail's EXISTS queues
            # behind that, so the device polls with NOOP, as a client would.
            d.poll_before_fetch = False
            d.next_poll = now + 0.3
            d.noop()
        elif view_equals(d.view, want):
            d.final_fetch = True
            d.fetch_all()
        elif uids_match(d.view, want) and now - d.uids_match_since(now) > FLAG_GRACE:
            d.stale_flags = diff(d.view, want)
            d.final_fetch = True
            d.fetch_all()
        else:
            d.next_poll = now + 0.3
            d.noop()
    return d.state == SETTLED


def uids_match(view, want):
    return len(view.uids) == len(want) and all(
        u is None or u == su for u, (su, _) in zip(view.uids, want))


def view_equals(view, want):
    try:
        view.assert_consistent_with(want)
        return True
    except AssertionError:
        return False


def diff(view, want):
    try:
        view.assert_consistent_with(want)
        return "equal"
    except AssertionError as e:
        return str(e)[:600]


def dump(base, devices, store, want):
    """Writes the traces of the devices and the store's events to a file kept after
    the test (for a failure); returns a line naming it."""
    path = os.path.join(os.path.dirname(base), os.path.basename(base) + "-failure.txt")
    with open(path, "w") as f:
        for d in devices:
            f.write("=== %s %s\nview %r\nflags %r\nstore %r\n" % (
                d.login, d.state, d.view.uids if d.view else None,
                sorted(d.view.flags.items()) if d.view else None,
                want.get(d.user) if want else None))
            for t, x in d.trace:
                f.write("%9.3f %r\n" % (t, x))
        f.write("=== store events\n")
        for t, u, x in store.history:
            f.write("%9.3f %s %s\n" % (t, u, x))
    return "device traces and store events: %s" % path


def gateway_args(mode, state_dir, intake):
    args = ["--state-dir", state_dir, "--store-events", mode,
            # A store restart fails logins meanwhile: never throttle the test's users.
            "--login-fail-delay", "0", "--login-fail-max", "0"]
    if mode != "notify":
        args += intake
    return args


def run_chaos(mode, start_pimap_gateway, intake_port, intake_secret, intake_args,
              monkeypatch, devices=DEVICES, events=EVENTS, seed=SEED):
    t_start = time.monotonic()
    rng = random.Random(seed)
    users = extra_users(math.ceil(devices / DEVICES_PER_USER))
    base = harness.make_state_dir("pimap-chaos-")
    monkeypatch.setenv("PIMAP_EXTRA_USERS", write_users_file(os.path.join(base, "users"),
                                                             users))
    push = mode != "notify"
    dovecot = harness.Dovecot(
        os.path.join(base, "dovecot"),
        push_url="http://127.0.0.1:%d/dovecot" % intake_port if push else None,
        push_secret=intake_secret[0] if push else None)
    os.makedirs(dovecot.dir)
    os.chmod(dovecot.dir, 0o755)
    state_dir = os.path.join(base, "state")
    os.makedirs(state_dir)
    args = gateway_args(mode, state_dir, intake_args)
    store = StoreChaos(dovecot, users, events, RATE, seed, restart_at=events // 3)
    net = None
    failed = True
    try:
        dovecot.start()
        gw = start_pimap_gateway(notification_filter="ALL", extra=args, store=dovecot.store)
        store.open()
        store.fill(6)
        net = DeviceNet(seed, gw.imap_port)
        net.t0 = store.t0
        for i in range(devices):
            u, p = users[i % len(users)]
            net.add(u, p, "d%04d" % i)

        # Everyone logs in and selects INBOX.
        deadline = time.monotonic() + 60 + devices / 10
        while net.count(READY) < devices:
            assert time.monotonic() < deadline, "seed %d: only %d of %d devices ready" % (
                seed, net.count(READY), devices)
            for d in net.devices:
                if d.state == DOWN and net.count(CONNECTING) < MAX_CONNECTING:
                    d.connect()
            net.pump(0.05)
        t_ready = time.monotonic()

        # Chaos: the store's events in their thread, the devices here.
        kill_at = events * 2 // 3
        killed_at = None
        store.start()
        last = time.monotonic()
        while store.is_alive():
            net.pump(0.02)
            assert gw.running(), "seed %d: pimapd exited: %s" % (seed, gw.log()[-3000:])
            now = time.monotonic()
            for d in rng.sample(net.devices, min(devices, max(1, round(
                    devices * (now - last) / ACT_PERIOD)))):
                act(d, rng, net)
            last = now
            if killed_at is None and store.done >= kill_at:
                killed_at = store.done
                store.history.append((round(time.monotonic() - store.t0, 3), "*",
                                      "pimapd SIGKILL"))
                gw.proc.kill()
                gw.proc.wait(10)
                gw.stop()
                net.pump(0.2)  # the devices see their connections end
                gw = start_pimap_gateway(notification_filter="ALL", extra=args,
                                         store=dovecot.store)
                net.port = gw.imap_port
        store.join(10)
        if store.error is not None:
            raise AssertionError("seed %d: store events failed: %r" % (
                seed, store.error)) from store.error
        assert store.done == events and killed_at is not None, (store.done, killed_at)
        t_chaos = time.monotonic()

        def summarize(t_end):
            stale = sum(1 for d in net.devices if d.stale_flags)
            return (
                "chaos[%s] seed %d: %d devices of %d users, %d store events %r; store "
                "restart at event %d (%.1fs), pimapd SIGKILL at event %d; ready %.1fs, "
                "chaos %.1fs, settle %.1fs, total %.1fs; device totals %r; after the "
                "restart pimapd counted resumes %s, resyncs %s, rebuilds %s; devices with "
                "stale pushed flags at the end: %d" % (
                    mode, seed, devices, len(users), store.done, store.kinds,
                    store.restart_at, store.restarted or -1, killed_at, t_ready - t_start,
                    t_chaos - t_ready, t_end - t_chaos, t_end - t_start, net.totals(),
                    metric(gw.metrics(), "pimap_session_resumes_total"),
                    metric(gw.metrics(), "pimap_resyncs_total"),
                    metric(gw.metrics(), "pimap_rebuilds_total"), stale))

        # The end: every device's view equals the store's.
        want = {u: store_view(dovecot, u, p) for u, p in users}
        settled = 0
        deadline = time.monotonic() + 30 + devices / 20
        while settled < devices:
            now = time.monotonic()
            if now > deadline:
                assert gw.running(), "seed %d: pimapd exited: %s" % (seed, gw.log()[-3000:])
                late = [d for d in net.devices if d.state != SETTLED]
                d = late[0]
                report = (
                    "seed %d: %d device(s) never matched the store within the deadline; "
                    "first: %s state %s, stale flags %s: %s; MSNs whose UID FETCH 1:* never "
                    "told (MSN, the store's UID there): %r\nlast lines: %r\n%s" % (
                        seed, len(late), d.login, d.state, d.stale_flags,
                        diff(d.view, want[d.user]),
                        [(i + 1, want[d.user][i][0]) for i, u in enumerate(d.view.uids)
                         if u is None and i < len(want[d.user])][:10],
                        d.trace[-30:], dump(base, late, store, want)))
                if STRICT:
                    raise AssertionError(report)
                # Known pimapd defects 4 and 5 (docs/chaos-test.md): an expunge or new
                # mail lost for good. Every other check stays strict (impossible
                # lines, deadlines, pimapd alive).
                print("\n" + summarize(now))
                sys.stderr.write("\n" + report + "\n")
                failed = False
                pytest.xfail("known defect, view never equal to the store's: " + report)
            for d in net.devices:
                if d.state != SETTLED and settle_step(d, want[d.user], now, net):
                    settled += 1
            net.pump(0.02)
        assert gw.running(), "pimapd exited: %s" % gw.log()[-3000:]
        summary = summarize(time.monotonic())
        print("\n" + summary)
        tot = net.totals()
        assert tot["resumes"] > 0 and tot["drops"] > 0 and tot["lost"] > 0, summary
        failed = False
        stale = [d for d in net.devices if d.stale_flags]
        if stale:
            report = "%d device(s) kept stale flags (their UIDs were right; a FETCH fixed " \
                "them), seed %d; first: %s: %s\n%s" % (
                    len(stale), seed, stale[0].login, stale[0].stale_flags,
                    dump(base, stale[:5], store, want))
            if STRICT:
                raise AssertionError(report)
            # Known pimapd defects (docs/chaos-test.md): flags a resume replayed are not
            # recorded as told; a kNew's flags are lost for a UID the device has; push
            # mode takes Dovecot's partial flags_old/keywords_old for the whole list.
            pytest.xfail("known defect, stale pushed flags: " + report)
    finally:
        store.stop.set()
        if store.is_alive():
            store.join(30)
        store.close()
        if net is not None:
            for d in net.devices:
                if d.sock is not None:
                    d.close("end")
        if failed and net is not None:
            sys.stderr.write(dump(base, [d for d in net.devices if d.state != SETTLED][:5],
                                  store, None) + "\n")
        if failed:
            sys.stderr.write("\n----- chaos dovecot log (tail) -----\n%s\n" % dovecot.log()[-8000:])
        dovecot.stop()
        if not os.environ.get("PIMAP_KEEP_TEST_DIRS"):
            shutil.rmtree(base, ignore_errors=True)


def metric(metrics, name):
    vals = metrics.get(name, {})
    return int(sum(vals.values())) if vals else "?"


@pytest.mark.parametrize("mode", MODES)
def test_chaos(mode, start_pimap_gateway, intake_port, intake_secret, intake_args,
               monkeypatch):
    run_chaos(mode, start_pimap_gateway, intake_port, intake_secret, intake_args,
              monkeypatch)


# --------------------------------------------------------------------------- self-checks
# The chaos test can fail: the view code it relies on catches what a duplicated EXPUNGE
# or a wrong view would show, fed through a Device as bytes from the network.

class _FakeNet:
    seed = 0
    t0 = 0.0


def _device_with(entries):
    d = Device(_FakeNet(), "u", "p", "selfcheck")
    d.view = DeviceView(entries)
    d.selected = True
    d.state = IDLING
    d.pending = ("i1", "idle", time.monotonic() + 60)
    return d


STORE = [(1, frozenset()), (2, frozenset({"\\Seen"})), (3, frozenset()), (4, frozenset())]


def test_selfcheck_duplicated_expunge_is_caught():
    d = _device_with(STORE)
    d.on_line(b"* 2 EXPUNGE\r\n")  # UID 2 goes
    assert d.view.uids == [1, 3, 4]
    d.on_line(b"* 2 EXPUNGE\r\n")  # ...and again: UID 3 goes by mistake
    with pytest.raises(ChaosFailure, match="names UID 3 but MSN 2 is UID 4"):
        d.on_line(b"* 2 FETCH (UID 3 FLAGS ())\r\n")
    d = _device_with(STORE[:2])
    d.on_line(b"* 2 EXPUNGE\r\n")
    with pytest.raises(ChaosFailure, match="EXPUNGE 2 with 1 messages"):
        d.on_line(b"* 2 EXPUNGE\r\n")


def test_selfcheck_wrong_view_is_caught():
    d = _device_with(STORE)
    assert view_equals(d.view, STORE)
    d.on_line(b"* 3 FETCH (FLAGS (\\Flagged))\r\n")  # a flag change the store never made
    assert not view_equals(d.view, STORE)
    assert "UID 3: device flags" in diff(d.view, STORE)
    d = _device_with(STORE)
    d.on_line(b"* 5 EXISTS\r\n")  # a message the store does not have
    assert not view_equals(d.view, STORE)
    d = _device_with(STORE)
    with pytest.raises(ChaosFailure, match="VANISHED"):
        d.on_line(b"* VANISHED 2\r\n")
    with pytest.raises(ChaosFailure, match="unexpected tagged"):
        d.on_line(b"x9 OK done\r\n")
