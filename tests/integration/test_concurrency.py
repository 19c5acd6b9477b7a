"""Many concurrent clients against a 2-shard pimapd."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness

pytestmark = pytest.mark.timeout(240)

N = 200
USERS = ["alice", "bob", "carol"]


def test_200_concurrent_clients(start_pimapd):
    # All 200 come from one address and connect at once (above the default
    # --max-preauth-per-ip), and each user has ~34 devices (above the default
    # --max-devices-per-user): both bounds have their own tests (test_limits).
    gw = start_pimapd(shards=2, admin=True, extra=["--max-preauth-per-ip", str(N),
                                                   "--max-devices-per-user", str(N)])
    barrier = threading.Barrier(N, timeout=60)

    def one(i):
        user = USERS[i % len(USERS)]
        with gw.raw() as c:
            assert c.greeting.startswith(b"* OK"), c.greeting
            login = "%s#dev%d" % (user, i) if i % 2 else user
            c.login(login, harness.USERS[user], tag="l%d" % i)
            untagged, t = c.cmd("s%d" % i, "SELECT INBOX")
            assert t.startswith(b"s%d OK" % i), t
            assert any(re.match(rb"\* \d+ EXISTS", x) for x in untagged), untagged
            try:
                barrier.wait()  # all N are logged in and selected at the same time
            except threading.BrokenBarrierError:
                raise AssertionError("client %d: another client failed" % i)
            _, t = c.cmd("n%d" % i, "NOOP")
            assert t.startswith(b"n%d OK" % i), t
            untagged, t = c.cmd("o%d" % i, "LOGOUT")
            assert t.startswith(b"o%d OK" % i), t
            assert any(x.startswith(b"* BYE") for x in untagged), untagged
        return i

    errors = []
    with ThreadPoolExecutor(max_workers=N) as ex:
        futs = [ex.submit(one, i) for i in range(N)]
        for f in futs:
            try:
                f.result(timeout=180)
            except Exception as e:  # noqa: BLE001
                barrier.abort()
                errors.append(repr(e))
    assert not errors, "%d of %d clients failed, first: %s" % (len(errors), N, errors[:3])

    m = gw.metrics()
    assert m["pimap_shards"][None] == 2
    assert m["pimap_connections_accepted_total"][None] >= N + 1  # + the readiness probe
    assert m["pimap_logins_total"][None] >= N
    assert m["pimap_auth_failures_total"][None] == 0
    # Connections spread over both shards (SO_REUSEPORT); 2^-199 chance otherwise.
    assert m["pimap_connections_accepted_total"]["0"] > 0
    assert m["pimap_connections_accepted_total"]["1"] > 0
    harness.wait_until(lambda: gw.metrics()["pimap_device_connections"][None] == 0, 10,
                       what="device connections to drop to 0")
    assert gw.running()
