"""Issue 14, item 4: what one user, one device or one client IP may make the
gateway keep. The 33rd device of a user is refused (--max-devices-per-user,
default 32) while its known devices still resume; a device's folder filters
and the size of one filter are bounded (NO [LIMIT]).
"""

import pytest

import harness

pytestmark = pytest.mark.timeout(240)


def login(c, user, password, tag="L1"):
    _, t = c.cmd(tag, "LOGIN %s %s" % (harness.quote(user), harness.quote(password)))
    return t


# ----------------------------------------------------------------------------- devices

def test_the_33rd_device_of_a_user_is_refused(start_pimapd):
    gw = start_pimapd()
    # 32 devices, each logged in and gone: detached sessions count too.
    for i in range(32):
        with gw.raw() as c:
            t = login(c, "carol#dev%d" % i, "carolpw")
            assert t.startswith(b"L1 OK"), (i, t)
    with gw.raw() as c:
        t = login(c, "carol#dev32", "carolpw")
        assert t == b"L1 NO [LIMIT] Too many devices for this user\r\n", t
        # Still not authenticated: the connection may try again.
        _, t = c.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t
    # A known device resumes; another user is not concerned.
    with gw.raw() as c:
        assert login(c, "carol#dev7", "carolpw").startswith(b"L1 OK")
        # Its LOGOUT ends its session and frees its slot.
        c.cmd("z", "LOGOUT")
    with gw.raw() as c:
        assert login(c, "bob#dev32", "bobpw").startswith(b"L1 OK")
    with gw.raw() as c:
        assert login(c, "carol#dev32", "carolpw").startswith(b"L1 OK")


def test_filters_per_device_and_filter_size_are_bounded(start_pimapd):
    gw = start_pimapd(extra=["--max-filters-per-device", "2", "--max-filter-bytes", "64"])
    with gw.raw() as c:
        assert login(c, "bob#filters", "bobpw").startswith(b"L1 OK")
        for tag, folder in (("a", "INBOX"), ("b", "Work")):
            _, t = c.cmd(tag, "XFILTER %s N SEEN" % folder)
            assert t.startswith(tag.encode() + b" OK"), t
        _, t = c.cmd("c", "XFILTER Other N SEEN")
        assert t.startswith(b"c NO [LIMIT]"), t
        _, t = c.cmd("d", 'XFILTER INBOX N SUBJECT "%s"' % ("x" * 100))
        assert t.startswith(b"d NO [LIMIT]"), t
        # Both refused: nothing changed.
        untagged, t = c.cmd("e", "XFILTER INBOX N GET")
        assert untagged == [b"* XFILTER INBOX N SEEN\r\n"], untagged
