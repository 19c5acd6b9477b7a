"""User ownership across shards, and the /metrics endpoint."""

import pytest

import harness

pytestmark = pytest.mark.timeout(120)

GAUGES = ["pimap_device_connections", "pimap_users_logged_in", "pimap_upstream_connections"]
COUNTERS = ["pimap_connections_accepted_total", "pimap_handovers_out_total",
            "pimap_handovers_in_total", "pimap_commands_relayed_total", "pimap_bytes_in_total",
            "pimap_bytes_out_total", "pimap_parse_errors_total", "pimap_auth_failures_total",
            "pimap_logins_total"]


@pytest.fixture
def gw(start_pimapd):
    return start_pimapd(shards=2, admin=True)


def test_metrics_format(gw):
    text = gw.metrics_text()
    m = harness.parse_metrics(text)
    assert m["pimap_shards"][None] == 2
    for name in GAUGES + COUNTERS:
        assert name in m, "metric %s missing:\n%s" % (name, text)
        samples = m[name]
        assert set(samples) == {"0", "1", None}, (name, samples)
        assert samples[None] == samples["0"] + samples["1"], (name, samples)
        assert all(v >= 0 for v in samples.values()), (name, samples)
    for name in COUNTERS:
        assert "# TYPE %s counter" % name in text, name
    for name in GAUGES:
        assert "# TYPE %s gauge" % name in text, name


def test_twenty_connections_of_one_user_end_on_one_shard(gw):
    clients = []
    try:
        for i in range(20):
            c = gw.raw()
            c.login("alice#d%d" % i if i % 2 else "alice", "alicepw")
            _, t = c.cmd("s", "SELECT INBOX")
            assert t.startswith(b"s OK"), t
            clients.append(c)

        def settled():
            m = gw.metrics()
            dc = m["pimap_device_connections"]
            return m if dc[None] == 20 and sorted([dc["0"], dc["1"]]) == [0, 20] else None

        m = harness.wait_until(settled, 10, what="20 alice connections on one shard")
        dc = m["pimap_device_connections"]
        owner = "0" if dc["0"] == 20 else "1"
        other = "1" if owner == "0" else "0"
        assert m["pimap_users_logged_in"][owner] == 1, m["pimap_users_logged_in"]
        assert m["pimap_users_logged_in"][other] == 0, m["pimap_users_logged_in"]
        assert m["pimap_users_logged_in"][None] == 1
        # SO_REUSEPORT spreads 20 connects over both shards (all on one: 2^-19).
        acc = m["pimap_connections_accepted_total"]
        assert acc["0"] > 0 and acc["1"] > 0, acc
        assert m["pimap_handovers_in_total"][owner] > 0, m["pimap_handovers_in_total"]
        assert m["pimap_handovers_in_total"][None] > 0
        assert m["pimap_handovers_out_total"][other] > 0, m["pimap_handovers_out_total"]
        assert m["pimap_logins_total"][None] >= 20
        assert m["pimap_upstream_connections"][None] >= 1

        # Every handed-over connection still works.
        for i, c in enumerate(clients):
            _, t = c.cmd("n%d" % i, "NOOP")
            assert t.startswith(b"n%d OK" % i), t

        # A second user may be owned by either shard; alice's counts don't move.
        with gw.raw() as b:
            b.login("bob", "bobpw")
            m = gw.metrics()
            assert m["pimap_users_logged_in"][None] == 2
            assert m["pimap_device_connections"][owner] >= 20
    finally:
        for c in clients:
            try:
                _, t = c.cmd("z", "LOGOUT")
            except (OSError, EOFError):
                pass
            c.close()

    m = harness.wait_until(
        lambda: (lambda x: x if x["pimap_device_connections"][None] == 0 else None)(gw.metrics()),
        10, what="device connections back to 0")
    assert m["pimap_users_logged_in"][None] == 0, m["pimap_users_logged_in"]


def test_counters_move(gw):
    before = gw.metrics()
    with gw.raw() as c:
        _, t = c.cmd("a", 'LOGIN carol "bad"')
        assert t.startswith(b"a NO")
        # Malformed pre-auth input (unbalanced paren, binary junk): parse errors.
        c.send(b"b LOGIN (carol carolpw\r\n")
        _, t = c.read_tagged("b")
        assert t.startswith(b"b BAD"), t
        c.send(b"c \0\xff\x01(\r\n")
        _, t = c.read_tagged("c")
        assert t.startswith(b"c BAD"), t
        c.login("carol", "carolpw")
        for i in range(5):
            c.cmd("n%d" % i, "NOOP")
    after = harness.wait_until(
        lambda: (lambda x: x if x["pimap_commands_relayed_total"][None] >=
                 before["pimap_commands_relayed_total"][None] + 5 else None)(gw.metrics()),
        5, what="commands_relayed_total to grow by 5")
    s = lambda m, k: m[k][None]  # noqa: E731
    assert s(after, "pimap_auth_failures_total") >= s(before, "pimap_auth_failures_total") + 1
    assert s(after, "pimap_logins_total") >= s(before, "pimap_logins_total") + 1
    assert s(after, "pimap_parse_errors_total") >= s(before, "pimap_parse_errors_total") + 1
    assert s(after, "pimap_bytes_in_total") > s(before, "pimap_bytes_in_total")
    assert s(after, "pimap_bytes_out_total") > s(before, "pimap_bytes_out_total")
