"""COMPRESS=DEFLATE (RFC 4978) between a client and the gateway: a Python client with its
own zlib (raw deflate both ways) through SELECT, a large literal, IDLE push, a parked
IDLE and LOGOUT; a P-IMAP device; compression refused twice; a decompression bomb that
ends only its own connection. The store link stays uncompressed (per hop)."""

import time
import zlib

import pytest

import harness
from harness import (EXISTS_RE, USERS, ensure_messages, make_message, ok, pimap_login,
                     read_lines, wait_until)

pytestmark = pytest.mark.timeout(120)


class ZRawImap(harness.RawImap):
    """RawImap that compresses once start_compression() is called."""

    def start_compression(self):
        self.zout = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.zin = zlib.decompressobj(-15)
        # Bytes already buffered after the OK would be compressed ones.
        raw, self.buf = self.buf, b""
        self.buf = self.zin.decompress(raw) if raw else b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if getattr(self, "zout", None) is not None:
            data = self.zout.compress(data) + self.zout.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self, deadline):
        if getattr(self, "zin", None) is None:
            return super()._fill(deadline)
        before = len(self.buf)
        raw_buf, self.buf = self.buf, b""
        super()._fill(deadline)   # appends raw (compressed) bytes to self.buf
        wire, self.buf = self.buf, raw_buf
        self.wire_bytes = getattr(self, "wire_bytes", 0) + len(wire)
        self.buf += self.zin.decompress(wire)
        assert len(self.buf) >= before


def compressed(gw, user):
    c = ZRawImap(harness.HOST, gw.imap_port)
    t = c.login(user, USERS[user.split("#")[0]])
    assert b"COMPRESS=DEFLATE" in t, t
    _, t = c.cmd("z", "COMPRESS DEFLATE")
    ok(t, "z")
    c.start_compression()
    return c


def metric(gw, name):
    return gw.metrics()[name][None]


def test_stock_client_works_compressed(dedicated_dovecot, start_pimapd):
    store, user = dedicated_dovecot, "bob"
    big = make_message("big", body_bytes=b"0123456789abcdef" * 65536 + b"\r\n")  # 1 MiB
    store.append(user, "INBOX", big)
    ensure_messages(store, user, 3)
    gw = start_pimapd(store=store.store, admin=True,
                      extra=["--park-after", "1s", "--deflate-keep", "500ms"])
    c = compressed(gw, user)
    try:
        untagged, t = c.cmd("s", "SELECT INBOX")
        ok(t, "s")
        n = [int(EXISTS_RE.match(x).group(1)) for x in untagged if EXISTS_RE.match(x)][-1]
        untagged, t = c.cmd("f", "FETCH 1 BODY.PEEK[]")
        ok(t, "f")
        body = b"".join(untagged)
        assert b"0123456789abcdef" * 1000 in body
        assert c.wire_bytes < 200000, c.wire_bytes  # 1 MiB of a repeated pattern
        _, t = c.cmd("d", "COMPRESS DEFLATE")
        assert t.startswith(b"d NO [COMPRESSIONACTIVE]"), t
        assert metric(gw, "pimap_compress_connections") == 1
        # IDLE, parked, then a delivery: the push arrives compressed.
        c.send("i IDLE\r\n")
        assert c.readline().startswith(b"+")
        wait_until(lambda: metric(gw, "pimap_relay_parked") == 1, 10, what="parked")
        store.deliver(user, make_message("pushed", to=user + "@example.org"))
        lines, got = read_lines(c, 10, until=lambda x: EXISTS_RE.match(x))
        assert got, lines
        assert lines[-1].strip() == b"* %d EXISTS" % (n + 1)
        c.send("DONE\r\n")
        _, t = c.read_tagged("i")
        ok(t, "i")
        # Idle and compressed: once --deflate-keep has passed the connection
        # holds its inflater only (~40 KiB; zlib's defaults: ~300 KiB).
        wait_until(lambda: metric(gw, "pimap_compress_state_bytes") <= 48 * 1024, 5,
                   what="the compressor freed")
        untagged, t = c.cmd("l", "LOGOUT")
        ok(t, "l")
        assert any(x.startswith(b"* BYE") for x in untagged)
    finally:
        c.close()
    wait_until(lambda: metric(gw, "pimap_compress_connections") == 0, 10,
               what="compressed connection gone")
    assert metric(gw, "pimap_compress_out_wire_bytes_total") < \
        metric(gw, "pimap_compress_out_raw_bytes_total")


def test_pimap_device_works_compressed(pimap_gateway, dovecot):
    c = ZRawImap(harness.HOST, pimap_gateway.imap_port)
    try:
        pimap_login(c, "carol#zdev")
        _, t = c.cmd("z", "COMPRESS DEFLATE")
        ok(t, "z")
        c.start_compression()
        untagged, t = c.cmd("s", "SELECT INBOX")
        ok(t, "s")
        _, t = c.cmd("x", "XFILTER INBOX N ALL")
        assert t.startswith(b"x "), t
        _, t = c.cmd("n", "NOOP")
        ok(t, "n")
    finally:
        c.close()


def test_bomb_ends_only_its_own_connection(dedicated_dovecot, start_pimapd):
    store, user = dedicated_dovecot, "bob"
    gw = start_pimapd(store=store.store, admin=True)
    c = compressed(gw, user)
    # One 64 MiB line, about 64 KiB on the wire: streamed through the framer
    # piece by piece, never held whole.
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = z.compress(b"a1 NOOP " + b"A" * (64 << 20) + b"\r\n") + \
        z.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 256 * 1024
    c.sock.sendall(bomb)
    try:
        c.zin = zlib.decompressobj(-15)
        lines, _ = read_lines(c, 10, until=lambda x: x.startswith(b"* BYE")
                              or b" BAD " in x)
    except (EOFError, ConnectionResetError):
        lines = [b"<closed>"]
    c.close()
    # A line that long is refused (BAD, or BYE when the framer cannot recover).
    assert lines and (lines[-1] == b"<closed>" or lines[-1].startswith(b"* BYE")
                      or b" BAD " in lines[-1]), lines[:3]
    # The gateway is fine and serves others; its memory did not take the bomb.
    with gw.raw() as d:
        d.login(user, USERS[user])
        _, t = d.cmd("n", "NOOP")
        ok(t, "n")
    assert metric(gw, "pimap_heap_in_use_bytes") < 64 << 20


def test_compress_ok_crossing_the_output_bound_does_not_kill_the_gateway(start_pimapd):
    """The tagged OK itself may push the connection over --max-output-bytes: that
    connection ends, the gateway lives."""
    gw = start_pimapd(shards=1, extra=["--max-output-bytes", "4K"])
    c = harness.RawImap(harness.HOST, gw.imap_port)
    c.login("alice", USERS["alice"])
    _, t = c.cmd("n", "CAPABILITY")
    ok(t, "n")
    time.sleep(0.3)
    burst = b"".join(b"t%03d COMPRESS X\r\n" % i for i in range(102))  # 102 BAD lines
    c.send(burst + b"z COMPRESS DEFLATE\r\n")  # the OK crosses 4 KiB
    time.sleep(1)
    c.close()
    assert gw.proc.poll() is None, gw.log()[-3000:]
    with gw.raw() as d:
        d.login("alice", USERS["alice"])
        _, t = d.cmd("n", "NOOP")
        ok(t, "n")


def test_command_in_the_same_packet_as_compress_is_inflated(start_pimapd, tls_cert,
                                                          tls_client_ctx):
    """Over TLS, the client's first compressed command arrives right behind COMPRESS
    (a client that does not wait for the OK): it is inflated, not read as clear text;
    the shutdown BYE is readable compressed."""
    gw = start_pimapd(tls=tls_cert)
    c = ZRawImap(harness.HOST, gw.imaps_port, tls_ctx=tls_client_ctx)
    try:
        c.login("alice", USERS["alice"])
        zout = zlib.compressobj(6, zlib.DEFLATED, -15)
        first = zout.compress(b"n NOOP\r\n") + zout.flush(zlib.Z_SYNC_FLUSH)
        c.sock.sendall(b"z COMPRESS DEFLATE\r\n" + first)
        _, t = c.read_tagged("z")
        ok(t, "z")
        c.start_compression()
        c.zout = zout
        _, t = c.read_tagged("n")
        ok(t, "n")
        gw.terminate()
        lines, got = read_lines(c, 10, until=lambda x: x.startswith(b"* BYE"))
        assert got, lines
    finally:
        c.close()
