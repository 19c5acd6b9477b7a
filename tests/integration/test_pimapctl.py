"""pimapctl against a running pimapd with real devices (issue 17, item 1): who, sessions,
kick (with and without --forget), reload, stats, over the Unix admin socket; and the
admin endpoint's access control on TCP (403 without --admin-token-file, 401 with a
wrong token, 200 with the right one)."""

import http.client
import json
import os
import stat
import subprocess

import pytest

import harness
from harness import ok, pimap_login, select_view, start_idle, wait_until

pytestmark = pytest.mark.timeout(180)

PIMAPCTL = os.path.join(os.path.dirname(harness.PIMAPD), "pimapctl")
TOKEN = "t0ken-for-pimapctl"


@pytest.fixture(scope="module")
def admin_files(workdir):
    token_file = os.path.join(workdir, "admin.token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    return os.path.join(workdir, "admin.sock"), token_file


@pytest.fixture
def gw(start_pimap_gateway, admin_files):
    sock, token_file = admin_files
    if not os.access(PIMAPCTL, os.X_OK):
        raise RuntimeError("pimapctl not found at %s (build it first)" % PIMAPCTL)
    g = start_pimap_gateway(extra=["--admin-socket", sock,
                                   "--admin-token-file", token_file,
                                   "--park-after", "1s"])
    g.admin_socket = sock
    g.token_file = token_file
    return g


def ctl(gw, *args, tcp=None, expect=0):
    """Runs pimapctl over the gateway's Unix socket (or tcp=[flags]); returns stdout."""
    where = ["--socket", gw.admin_socket] if tcp is None else tcp
    p = subprocess.run([PIMAPCTL] + where + list(args), capture_output=True, timeout=30)
    assert p.returncode == expect, (args, p.returncode, p.stdout, p.stderr)
    return p.stdout.decode() + p.stderr.decode()


def ctl_json(gw, *args):
    return json.loads(ctl(gw, "--json", *args))


def device(who, user, dev):
    rows = [d for d in who["devices"] if d["user"] == user and d["device"] == dev]
    assert len(rows) == 1, (user, dev, who)
    return rows[0]


def session_ids(gw, user):
    return {s["device"]: s["session_id"] for s in ctl_json(gw, "sessions", user)["sessions"]}


def test_socket_mode_and_usage(gw):
    st = os.stat(gw.admin_socket)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    ctl(gw, "frobnicate", expect=2)
    ctl(gw, "kick", expect=2)
    ctl(gw, "sessions", expect=2)
    ctl(gw, "who", "--forget", expect=2)
    p = subprocess.run([PIMAPCTL, "--socket", gw.admin_socket + ".none", "who"],
                       capture_output=True, timeout=30)
    assert p.returncode == 1 and b"cannot connect" in p.stderr, p


def test_who_lists_devices_and_stock_clients(gw, dovecot):
    harness.ensure_messages(dovecot, "alice", 1)
    with gw.raw() as d1, gw.raw() as d2, gw.raw() as stock:
        pimap_login(d1, "alice#dev1")
        pimap_login(d2, "alice#dev2")
        with gw.raw() as away:
            pimap_login(away, "bob#away1")
        # A stock client (no #device) idling: parked after --park-after.
        stock.login("alice", harness.USERS["alice"])
        ok(stock.cmd("s", "SELECT INBOX")[1], "s")
        start_idle(stock)

        def who_now():
            return ctl_json(gw, "who")

        wait_until(lambda: not device(who_now(), "bob", "away1")["connected"], 10,
                   what="bob#away1 away")
        wait_until(lambda: any(u["user"] == "alice" and u["parked"] == 1
                               for u in who_now()["users"]), 15, what="stock client parked")
        who = who_now()
        assert who["missing_shards"] == [] and who["truncated"] is False, who
        for dev in ("dev1", "dev2"):
            row = device(who, "alice", dev)
            assert row["connected"] is True and row["binding"] == "imap", row
            assert row["shard"] in (0, 1), row
        # A user's devices live on its owner shard.
        assert device(who, "alice", "dev1")["shard"] == device(who, "alice", "dev2")["shard"]
        away = device(who, "bob", "away1")
        assert away["connected"] is False and away["binding"] == "", away
        alice = [u for u in who["users"] if u["user"] == "alice"][0]
        assert alice["shard"] == device(who, "alice", "dev1")["shard"], who

        # who USER: that user only.
        only = ctl_json(gw, "who", "bob")
        assert {d["user"] for d in only["devices"]} == {"bob"}, only

        # The human form: aligned columns with the same facts.
        text = ctl(gw, "who")
        lines = text.splitlines()
        assert lines[0].split() == ["USER", "DEVICE", "SHARD", "BINDING", "STATE", "IDLE",
                                    "STORE-LINK", "JOURNAL"], text
        rows = {tuple(line.split()[:2]): line.split() for line in lines[1:] if line}
        assert rows[("alice", "dev1")][3:5] == ["imap", "connected"], text
        assert rows[("bob", "away1")][3:5] == ["-", "away"], text
        # Columns are aligned: DEVICE starts at the same offset on every device row.
        at = lines[0].index("DEVICE")
        for line in lines[1:]:
            if not line:
                break
            assert line[at - 2:at] == "  " and line[at] != " ", (line, text)
        assert "PARKED-STOCK-CLIENTS" in text, text
        stock.send("DONE\r\n")


def test_sessions_show_filters_prefs_and_checkpoint(gw, dovecot):
    harness.ensure_messages(dovecot, "alice", 2)
    with gw.raw() as c:
        pimap_login(c, "alice#filt")
        ok(c.cmd("x", "XFILTER INBOX N ALL")[1], "x")
        ok(c.cmd("p", "XSETPIMAPPREF PIMAP_INBAND_NEW_FORMAT (UID FLAGS)")[1], "p")
        view = select_view(c)
        sessions = ctl_json(gw, "sessions", "alice")
        mine = [s for s in sessions["sessions"] if s["device"] == "filt"]
        assert len(mine) == 1, sessions
        s = mine[0]
        assert "XFILTER INBOX N ALL" in s["filters"], s
        assert "PIMAP_INBAND_NEW_FORMAT" in s["prefs"], s
        assert s["selected"] == "INBOX" and s["connected"] is True, s
        assert s["checkpoint"]["messages"] == len(view.uids), (s, view.uids)
        assert s["checkpoint"]["uidvalidity"] > 0, s
        assert s["journal_limit"] > 0 and s["session_id"] > 0, s
        text = ctl(gw, "sessions", "alice")
        assert "alice#filt" in text and "XFILTER INBOX N ALL" in text, text
        assert "selected:" in text and "INBOX" in text, text
        # Another user's sessions are not shown.
        assert all(x["user"] == "alice" for x in sessions["sessions"]), sessions
        ctl(gw, "sessions", "nobody-here")  # no sessions: still ok
        assert ctl_json(gw, "sessions", "nobody-here")["sessions"] == []


def test_kick_one_device_then_forget(gw):
    with gw.raw() as k1, gw.raw() as k2:
        pimap_login(k1, "alice#kick1")
        pimap_login(k2, "alice#kick2")
        before = session_ids(gw, "alice")
        out = ctl(gw, "kick", "alice#kick1")
        assert "alice#kick1" in out and "connection closed" in out, out
        goodbye = k1.read_eof(timeout=10)
        assert b"* BYE " in goodbye, goodbye
        # The other device is untouched.
        ok(k2.cmd("n", "NOOP")[1], "n")
        who = ctl_json(gw, "who", "alice")
        assert device(who, "alice", "kick1")["connected"] is False, who
        assert device(who, "alice", "kick2")["connected"] is True, who

    # Without --forget the session lives on: the next login resumes it.
    with gw.raw() as k1:
        pimap_login(k1, "alice#kick1")
        assert session_ids(gw, "alice")["kick1"] == before["kick1"]

    with gw.raw() as k2:
        pimap_login(k2, "alice#kick2")
        kicked = ctl_json(gw, "kick", "alice#kick2", "--forget")["kicked"]
        assert kicked == [{"user": "alice", "device": "kick2", "shard": kicked[0]["shard"],
                           "was_connected": True, "closed": True,
                           "forgotten": True}], kicked
        assert b"* BYE " in k2.read_eof(timeout=10)
        assert "kick2" not in session_ids(gw, "alice")
    # --forget: the next login is a fresh session.
    with gw.raw() as k2:
        pimap_login(k2, "alice#kick2")
        assert session_ids(gw, "alice")["kick2"] != before["kick2"]
    # Nobody of that name: an error.
    out = ctl(gw, "kick", "alice#nosuchdevice", expect=1)
    assert "no P-IMAP session" in out, out

    # kick USER: every device of the user, and nobody else's.
    with gw.raw() as a1, gw.raw() as a2, gw.raw() as b1:
        pimap_login(a1, "alice#all1")
        pimap_login(a2, "alice#all2")
        pimap_login(b1, "bob#other")
        kicked = ctl_json(gw, "kick", "alice")["kicked"]
        assert {k["device"] for k in kicked if k["was_connected"]} == {"all1", "all2"}, kicked
        assert all(k["user"] == "alice" and not k["forgotten"] for k in kicked), kicked
        for c in (a1, a2):
            assert b"* BYE " in c.read_eof(timeout=10)
        ok(b1.cmd("n", "NOOP")[1], "n")


def test_reload_stats_and_tcp_access(gw):
    out = ctl(gw, "reload")
    assert out.strip() == "reloaded", out
    wait_until(lambda: "admin: reload requested" in gw.log(), 5, what="reload logged")
    stats = ctl_json(gw, "stats")
    assert stats["pimap_shards"] == 2, stats
    assert "pimap_sessions" in ctl(gw, "stats")

    tcp = ["--admin", "%s:%d" % (harness.HOST, gw.admin_port)]
    out = ctl(gw, "who", tcp=tcp, expect=1)
    assert "401" in out, out
    wrong = os.path.join(os.path.dirname(gw.token_file), "wrong.token")
    with open(wrong, "w") as f:
        f.write("nope\n")
    assert "401" in ctl(gw, "who", tcp=tcp + ["--token-file", wrong], expect=1)
    who = json.loads(ctl(gw, "--json", "who", tcp=tcp + ["--token-file", gw.token_file]))
    assert who["missing_shards"] == [], who
    # The token never reaches the log.
    assert TOKEN not in gw.log()

    c = http.client.HTTPConnection(harness.HOST, gw.admin_port, timeout=10)
    c.request("GET", "/admin/who", headers={"Authorization": "Bearer " + TOKEN})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "application/json"
    json.loads(r.read())
    c.request("GET", "/metrics")  # scrapers need no token
    r = c.getresponse()
    assert r.status == 200
    r.read()
    c.close()


def test_tcp_without_token_file_is_403(start_pimap_gateway):
    g = start_pimap_gateway()
    c = http.client.HTTPConnection(harness.HOST, g.admin_port, timeout=10)
    c.request("POST", "/admin/reload", headers={"Authorization": "Bearer x"})
    r = c.getresponse()
    body = r.read()
    assert r.status == 403 and b"use the Unix socket" in body, (r.status, body)
    c.close()


def test_drain_says_bye_unavailable_and_stops_accepting(gw):
    with gw.raw() as dev, gw.raw() as stock:
        pimap_login(dev, "carol#drain1")
        stock.login("carol", harness.USERS["carol"])
        out = ctl(gw, "drain")
        assert out.startswith("draining:") and "2 connection(s)" in out, out
        for c in (dev, stock):
            goodbye = c.read_eof(timeout=10)
            assert b"* BYE [UNAVAILABLE]" in goodbye, goodbye
    # No more devices: the IMAP port is closed on every shard ...
    wait_until(lambda: not harness.port_is_open(gw.imap_port), 5, what="imap port closed")
    # ... while the admin endpoint still answers, and the session lives on, away.
    who = ctl_json(gw, "who", "carol")
    assert device(who, "carol", "drain1")["connected"] is False, who
    assert gw.running()


def test_who_and_kick_a_hibernated_device(start_pimap_gateway, admin_files, dovecot):
    """A hibernated device (its engine freed, the gateway holding its IDLE) is listed as
    connected ("imap hibernated") and a kick wakes it only to say BYE and close."""
    sock, _ = admin_files
    g = start_pimap_gateway(extra=["--admin-socket", sock, "--hibernate-after", "200ms"])
    g.admin_socket = sock
    harness.ensure_messages(dovecot, "bob", 1)
    with g.raw() as c:
        pimap_login(c, "bob#sleeper")
        select_view(c)
        start_idle(c)
        wait_until(lambda: g.metrics()["pimap_hibernated_devices"][None] == 1, 10,
                   what="the device to hibernate")
        row = device(ctl_json(g, "who", "bob"), "bob", "sleeper")
        assert row["connected"] is True and row["binding"] == "imap hibernated", row
        kicked = ctl_json(g, "kick", "bob#sleeper")["kicked"]
        assert kicked[0]["was_connected"] and kicked[0]["closed"], kicked
        goodbye = c.read_eof(timeout=10)
        assert b"* BYE " in goodbye, goodbye
    assert g.metrics()["pimap_hibernated_devices"][None] == 0
    assert device(ctl_json(g, "who", "bob"), "bob", "sleeper")["connected"] is False
