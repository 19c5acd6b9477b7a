"""Issue 16: a pimapd cluster coordinated by a real etcd (Debian's etcd-server).

Three pimapd nodes share one Dovecot and one etcd. Each registers under a lease
(/pimap/members/<id>), a user is served by the node rendezvous hashing picks
among the live members, which claims it in etcd (/pimap/owners/<user>, under its
lease) before serving it; any node accepts any device and splices it to that
node (the client's address carried along). A node killed outright loses its
users when its lease expires, and the survivors take them; a node stopped past
its lease (SIGSTOP) wakes fenced: it says goodbye to its devices before it
touches anything of theirs, and serves again only under a new lease."""

import os
import re
import signal
import socket
import time

import pytest

import harness
from etcd_harness import Etcd, etcd_available
from harness import (EXISTS_RE, HOST, make_message, ok, pimap_login, read_lines,
                     select_view, start_idle, wait_until)

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(not etcd_available(),
                                 reason="etcd not installed (tools/setup installs it)")]

TTL = 2  # --cluster-lease-ttl: short, so that expiry tests stay short
PUSH_WAIT = 10.0
VIEW_WAIT = 15.0
USERS = ("alice", "bob", "carol")


@pytest.fixture
def etcd():
    e = Etcd()
    e.start()
    yield e
    e.stop()


@pytest.fixture
def cluster(etcd, start_pimap_gateway, workdir):
    """factory(n=3) -> [node, ...]: pimapd nodes in one cluster, each with .node_id and
    .forward_port; returns once every node sees all of them."""
    secret = os.path.join(workdir, "cluster.secret")
    with open(secret, "w") as f:
        f.write("a cluster secret of forty bytes or so....\n")
    os.chmod(secret, 0o600)

    def start_node(i, nodes, extra=(), **kwargs):
        port = harness.free_ports(1)[0]
        node = start_pimap_gateway(extra=[
            "--cluster-etcd", etcd.client_url, "--cluster-node-id", "node-%d" % i,
            "--cluster-listen", "%s:%d" % (HOST, port), "--cluster-secret-file", secret,
            "--cluster-lease-ttl", "%ds" % TTL] + list(extra), **kwargs)
        node.node_id = "node-%d" % i
        node.forward_port = port
        nodes.append(node)
        return node

    def factory(n=3, extra=lambda i: [], **kwargs):
        """extra(i): more flags for node i; kwargs go to start_pimap_gateway."""
        nodes = []
        for i in range(1, n + 1):
            start_node(i, nodes, extra(i), **kwargs)
        wait_until(lambda: all(views(node) >= n for node in nodes), VIEW_WAIT,
                   what="every node sees %d members" % n)
        return nodes

    factory.start_node = start_node
    return factory


def views(node):
    """The member count of the node's newest cluster view (0: none yet)."""
    found = re.findall(r"event=cluster\.view members=(\d+)", node.log())
    return int(found[-1]) if found else 0


def owner_of(etcd, user):
    return etcd.get("/pimap/owners/" + user)


def metric(node, name):
    return node.metrics().get(name, {}).get(None, 0)


def by_id(nodes, node_id):
    return next(n for n in nodes if n.node_id == node_id)


def probe(node, user):
    """A device of user logs in through node and out: the user is placed (and
    claimed by the node that serves it)."""
    with node.raw() as c:
        pimap_login(c, user + "#probe")
        c.cmd("z", "LOGOUT")


def expect_push(c, store, user, subject):
    """c: a device of user logged in; its INBOX selected, then IDLE; a message
    delivered to the store must be pushed as the next EXISTS."""
    _, t = c.cmd("x", "XFILTER INBOX N ALL")
    ok(t, "x")
    view = select_view(c)
    start_idle(c)
    store.deliver(user, make_message(subject))
    lines, got = read_lines(c, PUSH_WAIT, until=lambda x: EXISTS_RE.match(x))
    assert got, "no push within %.0fs: %r" % (PUSH_WAIT, lines)
    assert int(EXISTS_RE.match(lines[-1]).group(1)) == len(view.uids) + 1, lines


def test_members_register_under_leases(cluster, etcd):
    nodes = cluster(3)
    members = etcd.get_prefix("/pimap/members/")
    assert sorted(members) == ["/pimap/members/node-%d" % i for i in (1, 2, 3)]
    for node in nodes:
        value = members["/pimap/members/" + node.node_id]
        assert value == "forward=%s:%d" % (HOST, node.forward_port), value


def test_any_node_serves_any_user_and_one_node_owns_it(cluster, etcd):
    nodes = cluster(3)
    owners = {}
    for user in USERS:
        for node in nodes:  # every node accepts every user's device
            with node.raw() as c:
                pimap_login(c, "%s#d-%s" % (user, node.node_id))
                _, t = c.cmd("n", "NOOP")
                ok(t, "n")
                c.cmd("z", "LOGOUT")
        owners[user] = owner_of(etcd, user)
        assert owners[user] in {n.node_id for n in nodes}, owners
    # One owner per user, whichever node the devices came through; the others
    # forwarded, the owner claimed.
    for user, owner in owners.items():
        others = [n for n in nodes if n.node_id != owner]
        assert all(metric(n, "pimap_cluster_forwards_total") > 0 for n in others), user
    claims = sum(metric(n, "pimap_cluster_claims_total") for n in nodes)
    assert claims == len(USERS), claims
    # A user's sessions live on its owner alone, whichever node its devices
    # came through.
    conns = []
    try:
        for node in nodes:
            c = node.raw()
            conns.append(c)
            pimap_login(c, "alice#live-" + node.node_id)
        for node in nodes:
            expected = 3 if node.node_id == owners["alice"] else 0
            assert metric(node, "pimap_sessions") == expected, node.node_id
    finally:
        for c in conns:
            c.close()


def test_push_through_a_forwarding_node(cluster, etcd, dovecot):
    nodes = cluster(3)
    user = "bob"
    harness.ensure_messages(dovecot, user, 1)
    # Find the owner, then connect through another node.
    probe(nodes[0], user)
    owner = owner_of(etcd, user)
    via = next(n for n in nodes if n.node_id != owner)
    with via.raw(source="127.0.0.7") as c:
        pimap_login(c, user + "#phone")
        expect_push(c, dovecot, user, "through the cluster")
    # The owner logged the device's own address, not the forwarding node's.
    owner_log = by_id(nodes, owner).log()
    assert re.search(r"user=%s device=phone client=127\.0\.0\.7:\d+" % user, owner_log), \
        "the owner does not know the client's address"


def test_takeover_after_sigkill(cluster, etcd):
    nodes = cluster(3)
    user = "carol"
    with nodes[0].raw() as c:
        pimap_login(c, user + "#phone")
        c.cmd("z", "LOGOUT")
    owner = owner_of(etcd, user)
    dead = by_id(nodes, owner)
    survivors = [n for n in nodes if n is not dead]
    dead.proc.kill()
    dead.proc.wait(10)
    # The dead node's lease runs out (TTL), its member key and its claims go...
    wait_until(lambda: "/pimap/members/" + owner not in etcd.get_prefix("/pimap/members/"),
               TTL + 5, what="the dead node's member key expires")
    wait_until(lambda: owner_of(etcd, user) is None, TTL + 5,
               what="the dead node's claim expires")
    wait_until(lambda: all(views(n) == 2 for n in survivors), VIEW_WAIT,
               what="the survivors see two members")
    # ...and the device comes back through any survivor.
    for node in survivors:
        with node.raw() as c:
            pimap_login(c, user + "#phone")
            _, t = c.cmd("n", "NOOP")
            ok(t, "n")
    new_owner = owner_of(etcd, user)
    assert new_owner in {n.node_id for n in survivors}, new_owner


def test_split_brain_stopped_node_is_fenced(cluster, etcd, dovecot):
    nodes = cluster(3)
    user = "alice"
    probe(nodes[0], user)
    owner = owner_of(etcd, user)
    paused = by_id(nodes, owner)
    others = [n for n in nodes if n is not paused]
    with paused.raw() as old:
        pimap_login(old, user + "#phone")
        _, t = old.cmd("x", "XFILTER INBOX N ALL")
        ok(t, "x")
        select_view(old)
        start_idle(old)
        paused.proc.send_signal(signal.SIGSTOP)
        try:
            # Past its lease: the claim goes, another node serves the user.
            wait_until(lambda: owner_of(etcd, user) is None, TTL + 5,
                       what="the stopped node's claim expires")
            wait_until(lambda: all(views(n) == 2 for n in others), VIEW_WAIT,
                       what="the others see two members")
            with others[0].raw() as c:
                pimap_login(c, user + "#tablet")
                _, t = c.cmd("n", "NOOP")
                ok(t, "n")
            taker = owner_of(etcd, user)
            assert taker in {n.node_id for n in others}, taker
        finally:
            paused.proc.send_signal(signal.SIGCONT)
        # Awake, the old owner says goodbye before anything else: no push, no
        # answer from a session it may no longer own.
        dovecot.deliver(user, make_message("after the split"))
        lines, _ = read_lines(old, PUSH_WAIT, until=lambda x: x.startswith(b"* BYE"))
        assert lines and lines[-1].startswith(b"* BYE [UNAVAILABLE]"), lines
        assert not [x for x in lines if EXISTS_RE.match(x)], \
            "the fenced node pushed after its lease ended: %r" % lines
    assert "event=cluster.fenced" in paused.log()
    # The claim stays with the node that took it.
    assert owner_of(etcd, user) == taker
    # The old owner rejoins under a new lease and forwards the user's devices
    # to the node that holds it now.
    wait_until(lambda: views(paused) == 3, VIEW_WAIT, what="the old owner rejoins")
    with paused.raw() as c:
        pimap_login(c, user + "#phone")
        _, t = c.cmd("n", "NOOP")
        ok(t, "n")
    assert owner_of(etcd, user) == taker


def test_store_pushes_reach_the_users_node_through_any_intake(
        cluster, etcd, push_dovecot, intake_port, intake_secret):
    """--store-events push: the store posts every notification to node-1's intake;
    a user another node serves gets its push all the same (node-1 passes the
    notification on to that node's intake, as the store sent it)."""
    ports = [intake_port] + harness.free_ports(2)

    def intake(i):
        return ["--store-events", "push",
                "--store-events-listen", "%s:%d" % (HOST, ports[i - 1]),
                "--store-events-secret-file", intake_secret[1]]

    nodes = cluster(3, extra=intake, store=push_dovecot.store)
    members = etcd.get_prefix("/pimap/members/")
    assert members["/pimap/members/node-2"].endswith("intake=%s:%d" % (HOST, ports[1]))
    # A user node-1 does not serve.
    for user in USERS:
        probe(nodes[0], user)
    # The hashing is fixed (preferred()): bob and carol are not node-1's.
    user = next(u for u in USERS if owner_of(etcd, u) != "node-1")
    harness.ensure_messages(push_dovecot, user, 1)
    with nodes[0].raw() as c:
        pimap_login(c, user + "#phone")
        expect_push(c, push_dovecot, user, "pushed to the wrong node")
    assert metric(nodes[0], "pimap_cluster_intake_forwards_total") >= 1
    assert metric(nodes[0], "pimap_cluster_intake_dropped_total") == 0


def test_forged_forward_line_is_refused(cluster):
    nodes = cluster(1)
    with socket.create_connection((HOST, nodes[0].forward_port), timeout=5) as s:
        s.sendall(b"XFORWARD1 AAAA " + b"0" * 64 + b"\r\na1 NOOP\r\n")
        s.settimeout(5)
        assert s.recv(100) == b"", "a forged forward line got an answer"
    wait_until(lambda: "event=cluster.forward.refused" in nodes[0].log(), 5,
               what="the refusal is logged")
    assert "MAC does not match" in nodes[0].log()


# --------------------------------------------------------------------- moves

_M64 = (1 << 64) - 1


def _fnv1a64(text):
    h = 0xcbf29ce484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001b3) & _M64
    return h


def _mix64(x):
    x ^= x >> 30
    x = (x * 0xbf58476d1ce4e5b9) & _M64
    x ^= x >> 27
    x = (x * 0x94d049bb133111eb) & _M64
    return x ^ (x >> 31)


def preferred(user, node_ids):
    """core/cluster/rendezvous.cc's choice (ties: the smaller id)."""
    def score(node):
        return _mix64(_fnv1a64(user) ^ _mix64((_fnv1a64(node) + 0x9e3779b97f4a7c15) & _M64))
    return max(sorted(node_ids), key=score)


def test_a_joining_node_takes_the_users_it_is_preferred_for(cluster, etcd):
    nodes = cluster(3)
    ids = [n.node_id for n in nodes]
    for user in USERS:  # the hashing places each demo user
        probe(nodes[0], user)
        assert owner_of(etcd, user) == preferred(user, ids), user
    # A fourth node that the hashing prefers for alice (and maybe others).
    new_id = next("node-%d" % i for i in range(4, 200)
                  if preferred("alice", ids + ["node-%d" % i]) == "node-%d" % i)
    movers = [u for u in USERS if preferred(u, ids + [new_id]) == new_id]
    stayers = {u: owner_of(etcd, u) for u in USERS if u not in movers}
    old_owner = by_id(nodes, owner_of(etcd, "alice"))
    with old_owner.raw() as c:
        pimap_login(c, "alice#phone")
        select_view(c)
        start_idle(c)
        nodes.append(cluster.start_node(int(new_id.split("-")[1]), []))
        nodes[-1].node_id = new_id
        # The old owner lets alice go: her device is told to reconnect...
        lines, _ = read_lines(c, VIEW_WAIT, until=lambda x: x.startswith(b"* BYE"))
        assert lines and lines[-1].startswith(b"* BYE [UNAVAILABLE]"), lines
    wait_until(lambda: owner_of(etcd, "alice") is None, 5,
               what="the old owner deletes alice's key")
    # ...and wherever it reconnects, the new node serves her.
    with nodes[0].raw() as c:
        pimap_login(c, "alice#phone")
        _, t = c.cmd("n", "NOOP")
        ok(t, "n")
    assert owner_of(etcd, "alice") == new_id
    for user in movers:
        assert owner_of(etcd, user) in (None, new_id), user
    for user, owner in stayers.items():
        assert owner_of(etcd, user) == owner, "%s moved without reason" % user


def test_drain_hands_the_users_over_at_once(cluster, etcd, workdir):
    token = os.path.join(workdir, "admin.token")
    with open(token, "w") as f:
        f.write("a-cluster-admin-token-of-some-length\n")

    def admin(i):
        # A long lease: its users must be free at once, not when it expires.
        return ["--admin-socket", os.path.join(workdir, "admin-%d.sock" % i),
                "--admin-token-file", token, "--cluster-lease-ttl", "20s"]

    nodes = cluster(3, extra=admin)
    probe(nodes[0], "bob")
    owner = owner_of(etcd, "bob")
    drained = by_id(nodes, owner)
    index = int(owner.split("-")[1])
    with drained.raw() as c:
        pimap_login(c, "bob#phone")
        pimapctl = os.path.join(os.path.dirname(os.path.abspath(harness.PIMAPD)), "pimapctl")
        import subprocess
        out = subprocess.run([pimapctl, "--socket",
                              os.path.join(workdir, "admin-%d.sock" % index), "drain"],
                             capture_output=True, timeout=30)
        assert out.returncode == 0, out
        lines, _ = read_lines(c, 10, until=lambda x: x.startswith(b"* BYE"))
        assert lines and lines[-1].startswith(b"* BYE [UNAVAILABLE]"), lines
    # Revoked, not expired: gone long before the 20 s lease could run out.
    wait_until(lambda: owner_of(etcd, "bob") is None, 8, what="bob's key goes")
    wait_until(lambda: "/pimap/members/" + owner not in etcd.get_prefix("/pimap/members/"),
               8, what="the drained node leaves")
    others = [n for n in nodes if n is not drained]
    wait_until(lambda: all(views(n) == 2 for n in others), VIEW_WAIT,
               what="the others see two members")
    with others[0].raw() as c:
        pimap_login(c, "bob#phone")
        _, t = c.cmd("n", "NOOP")
        ok(t, "n")
    assert owner_of(etcd, "bob") in {n.node_id for n in others}
