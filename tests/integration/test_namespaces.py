"""Folders outside the user's own namespace: a public namespace "Public." that every user
shares (tools/dovecot/up with PIMAP_PUBLIC_NAMESPACE=1). Changes there are other users'
transactions, so neither the watch's NOTIFY `personal` nor the user's own pushes report them.
pimapd learns the store's namespaces (NAMESPACE, once per shard). The user's watch names the
folders devices have selected in its NOTIFY (`mailboxes` filter, which Dovecot reports other
users' changes of) and, once it has looked at one, the device idles there in the gateway
without a link of its own. With pushes alone that watch runs only while such a folder is
selected (a cover watch: one store connection for the user, not one per device there). The
user's own folders idle in the gateway without a link in both modes. The store records what
each session asked (rawlog): a cover watch asks for the covered folders alone."""

import os
import time

import pytest

import harness
from harness import (EXISTS_RE, EXPUNGE_RE, append, device_fetch_all, end_idle, make_message,
                     ok, pimap_login, quote, read_lines, select_view, start_idle, unique_name,
                     wait_who)

pytestmark = pytest.mark.timeout(180)

PUSH_WAIT = 10.0


@pytest.fixture(scope="module")
def dovecot(workdir, intake_port, intake_secret):
    """This file's store: the public namespace, and pushes to the intake."""
    d = harness.Dovecot(os.path.join(workdir, "dovecot-public"),
                        push_url="http://127.0.0.1:%d/dovecot" % intake_port,
                        push_secret=intake_secret[0], public_namespace=True,
                        rawlog=True)
    os.makedirs(d.dir, exist_ok=True)
    os.chmod(d.dir, 0o755)
    d.start()
    yield d
    d.stop()


def create_public(store, messages=0):
    """CREATE a fresh Public.<name> as bob and APPEND messages; returns (name, UIDs)."""
    name = "Public." + unique_name("News")
    with store.raw("bob") as s:
        ok(s.cmd("c", "CREATE " + quote(name))[1], "c")
        return name, [append(s, name, make_message("%s #%d" % (name, k)))
                      for k in range(messages)]


def read_until(c, pred, what):
    lines, got = read_lines(c, PUSH_WAIT, until=pred)
    assert got, "%s: not pushed to the idling device within %.0fs: %r" % (what, PUSH_WAIT, lines)
    assert not [x for x in lines if x.startswith(b"* LIST")], (
        "a namespace's root was told as a folder event", lines)
    return lines


@pytest.mark.parametrize("mode", ["notify", "push"])
def test_device_idling_in_a_public_folder_is_told_of_other_users_changes(
        start_pimap_gateway, dovecot, intake_args, mode):
    """alice's device idles in a public folder; bob (another user) adds a message, flags it
    and expunges one there: every change reaches the device. The watch covers the folder
    once the device has selected it (after its NOTIFY again and first look), so alice holds
    one store connection, the watch's; with pushes alone that is a cover watch, started by
    the SELECT and closed once the device is back in INBOX (after the linger time)."""
    name, uids = create_public(dovecot, messages=2)
    user = "alice"
    gw = start_pimap_gateway(notification_filter="ALL",
                             extra=["--store-events", mode] + intake_args)
    with gw.raw() as c:
        pimap_login(c, "%s#pub-%s" % (user, mode))
        time.sleep(1.0)  # the watch's first listing (notify mode)
        view = select_view(c, name)
        assert view.uids == uids, view.uids
        time.sleep(1.5)  # the watch's NOTIFY naming the folder, and its first look
        start_idle(c)
        # A second device of alice idles there too.
        c2 = gw.raw()
        pimap_login(c2, "%s#pub2-%s" % (user, mode))
        select_view(c2, name)
        start_idle(c2)
        # The watch's NOTIFY reports bob's changes, and neither device holds a link.
        wait_who(dovecot, user, 1, what="the watch alone for %s (%s)" % (name, mode))

        new_uid = dovecot.append("bob", name, make_message("from bob"))
        view.apply_all(read_until(c, lambda x: bool(EXISTS_RE.match(x)), "bob's new mail"))
        harness.store_flag(dovecot, "bob", new_uid, "\\Flagged", box=name)
        view.apply_all(read_until(c, lambda x: b"\\Flagged" in x and b"FETCH" in x,
                                  "bob's \\Flagged"))
        harness.store_expunge(dovecot, "bob", uids[0], box=name)
        view.apply_all(read_until(c, lambda x: bool(EXPUNGE_RE.match(x)), "bob's expunge"))
        # All of it through the watch: no link was taken meanwhile.
        assert dovecot.who(user) == 1, dovecot.who(user)
        if mode == "push":
            # With pushes for the user's own folders, the cover watch asks the store for
            # the covered folder alone: no INBOX kept selected, no NOTIFY `personal`.
            watch = [v for v in dovecot.rawlog_in().values()
                     if b"NOTIFY SET" in v and quote(name).encode() in v]
            assert watch, "no session of the store named %s in a NOTIFY" % name
            for sent in watch:
                assert b"INBOX" not in sent and b"personal" not in sent, sent
        lines2 = end_idle(c2)
        assert [x for x in lines2 if EXPUNGE_RE.match(x)], lines2
        ok(c2.cmd("z2", "LOGOUT")[1], "z2")
        c2.close()
        view.apply_all(end_idle(c))
        store = dovecot.uid_flags(user, name)
        assert [u for u, _ in store] == [uids[1], new_uid], store
        view.assert_consistent_with(store)
        assert device_fetch_all(c) == store

        # Back in INBOX (the user's own), the device idles without a link of its own.
        select_view(c, "INBOX", tag="s2")
        start_idle(c, tag="i2")
        wait_who(dovecot, user, 1 if mode == "notify" else 0,
                 what="no link of the device, and no cover watch, once it idles in "
                 "INBOX (%s)" % mode)
        dovecot.deliver(user, make_message("to alice", to="alice@example.org"))
        read_until(c, lambda x: bool(EXISTS_RE.match(x)), "new mail in INBOX")
        end_idle(c, tag="i2")
        ok(c.cmd("z", "LOGOUT")[1], "z")


@pytest.mark.parametrize("mode", ["notify", "push"])
def test_stock_client_idling_in_a_public_folder_is_not_parked(
        start_pimapd, dovecot, intake_args, mode):
    """A regular IMAP client's IDLE in a public folder stays relayed on its store link
    (parking would hand its news to event sources that never see other users' changes):
    bob's new mail there reaches alice's client."""
    name, _ = create_public(dovecot)
    gw = start_pimapd(store=dovecot.store, admin=True, shards=2,
                      extra=["--park-after", "200ms", "--store-link-idle", "1s",
                             "--store-events", mode] + intake_args)
    with gw.raw() as c:
        ok(c.cmd("L", "LOGIN alice %s" % harness.USERS["alice"])[1], "L")
        ok(c.cmd("s", "SELECT " + quote(name))[1], "s")
        start_idle(c)
        time.sleep(1.5)  # well past --park-after
        assert gw.metrics()["pimap_relay_parked"][None] == 0
        dovecot.append("bob", name, make_message("from bob"))
        read_until(c, lambda x: bool(EXISTS_RE.match(x)), "bob's new mail (stock client)")
        end_idle(c)
        ok(c.cmd("z", "LOGOUT")[1], "z")


@pytest.mark.parametrize("mode", ["notify", "push"])
def test_change_between_a_select_and_the_watchs_first_look_is_pushed(
        start_pimap_gateway, dovecot, intake_args, mode):
    """alice's device IDLEs in a public folder right after selecting it, and bob appends
    there: both likely before the watch's first look (push: before the cover
    watch, which that SELECT starts, has even logged in). The IDLE starts on the device's
    own link; once the watch has looked (from the device's view, so the early message is not
    lost), the gateway takes the IDLE over and the link goes back: the watch alone remains."""
    name, uids = create_public(dovecot, messages=1)
    user = "alice"
    gw = start_pimap_gateway(notification_filter="ALL",
                             extra=["--store-events", mode] + intake_args)
    with gw.raw() as c:
        pimap_login(c, "%s#pub-gap-%s" % (user, mode))
        time.sleep(1.0)  # the watch's first listing
        view = select_view(c, name)
        assert view.uids == uids, view.uids
        # At once: the IDLE starts on the device's own link (the watch has not looked yet)
        # and becomes the gateway's once the watch has looked.
        start_idle(c)
        new_uid = dovecot.append("bob", name, make_message("from bob, early"))
        view.apply_all(read_until(c, lambda x: bool(EXISTS_RE.match(x)), "bob's early mail"))
        wait_who(dovecot, user, 1, what="the watch alone for %s" % name)
        # Still in that same IDLE: bob's next message comes through the watch.
        newer_uid = dovecot.append("bob", name, make_message("from bob, later"))
        view.apply_all(read_until(c, lambda x: bool(EXISTS_RE.match(x)), "bob's later mail"))
        assert dovecot.who(user) == 1, dovecot.who(user)
        view.apply_all(end_idle(c))
        store = dovecot.uid_flags(user, name)
        assert [u for u, _ in store] == uids + [new_uid, newer_uid], store
        view.assert_consistent_with(store)
        ok(c.cmd("z", "LOGOUT")[1], "z")


@pytest.mark.parametrize("mode", ["notify", "push"])
def test_an_idle_begun_before_the_watchs_look_gives_its_link_back_without_news(
        start_pimap_gateway, dovecot, intake_args, mode):
    """The device IDLEs in a quiet public folder at once after selecting it, so the IDLE
    starts on its own link; nothing happens there, yet once the watch has looked at the
    folder it says so, and the gateway takes the IDLE over: the watch alone remains."""
    name, _ = create_public(dovecot, messages=1)
    user = "alice"
    gw = start_pimap_gateway(notification_filter="ALL",
                             extra=["--store-events", mode] + intake_args)
    with gw.raw() as c:
        pimap_login(c, "%s#pub-quiet-%s" % (user, mode))
        select_view(c, name)
        start_idle(c)
        wait_who(dovecot, user, 1, what="the watch alone for %s (%s)" % (name, mode))
        lines = end_idle(c)
        assert not [x for x in lines if EXISTS_RE.match(x)], lines
        ok(c.cmd("z", "LOGOUT")[1], "z")
