"""Issue 16: the etcd harness the cluster tests build on (etcd_harness.Etcd). A private
etcd starts on free ports and answers; keys round-trip through the JSON gateway (bytes,
empty values, prefixes); a key under a lease goes when the lease is revoked or expires;
a killed member comes back with its data on start(). Skipped without /usr/bin/etcd."""

import socket

import pytest

import harness
from etcd_harness import Etcd, etcd_available

pytestmark = pytest.mark.skipif(
    not etcd_available(), reason="etcd not installed (Debian's etcd-server; tools/setup)")


@pytest.fixture(scope="module")
def etcd():
    with Etcd() as e:
        yield e


def test_keys_round_trip(etcd):
    assert etcd.client_url.startswith("http://127.0.0.1:")
    assert etcd.get("harness/missing") is None
    r1 = etcd.put("harness/a", "1")
    r2 = etcd.put("harness/b", "")
    assert r2 > r1
    etcd.put("harness0", "just past the prefix")
    etcd.put(b"harness/\xff", b"\x00\xff")
    assert etcd.get("harness/a") == "1"
    assert etcd.get("harness/b") == ""  # empty: the gateway omits "value"
    assert etcd.get(b"harness/\xff") == b"\x00\xff"
    assert etcd.get_prefix("harness/a") == {"harness/a": "1"}
    assert etcd.get_prefix(b"harness/") == {
        b"harness/a": b"1", b"harness/b": b"", b"harness/\xff": b"\x00\xff"}
    assert etcd.delete_prefix("harness/") == 3
    assert etcd.get_prefix("harness/") == {}
    assert etcd.get("harness0") == "just past the prefix"


def test_key_under_lease_goes_with_it(etcd):
    lease = etcd.grant(30)
    etcd.put("lease/revoked", "x", lease=lease)
    assert etcd.get("lease/revoked") == "x"
    etcd.revoke(lease)
    assert etcd.get("lease/revoked") is None
    etcd.revoke(lease)  # already gone: fine

    lease = etcd.grant(1)
    etcd.put("lease/expiring", "x", lease=lease)
    harness.wait_until(lambda: etcd.get("lease/expiring") is None, 10,
                       interval=0.1, what="the key under an expired lease to go")


def test_kill_and_restart_keeps_the_data():
    with Etcd() as e:
        e.put("kept", "yes")
        e.kill()
        assert not e.running()
        with pytest.raises(OSError):
            socket.create_connection((harness.HOST, e.client_port), timeout=1).close()
        e.start()
        assert e.get("kept") == "yes"
        code = e.stop()
        assert code == 0, e.log()
        assert not harness.port_is_open(e.client_port)
