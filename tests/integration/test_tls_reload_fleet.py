"""Issue 17: a certificate swapped and reloaded (SIGHUP) while 1,000 P-IMAP devices idle
over TLS (pimap-bench's idle scenario, implicit TLS, BoringSSL client): none of them is
dropped (the bench counts every connection that closes during the hold), and handshakes
made after the reload get the new certificate. PIMAP_TLS_RELOAD_DEVICES overrides N."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import threading

import pytest

import harness
import test_tls_sni as sni
from chaos_devices import write_users_file
from harness import wait_until

pytestmark = pytest.mark.timeout(300)

DEVICES = int(os.environ.get("PIMAP_TLS_RELOAD_DEVICES", "1000"))
BENCH = os.path.join(os.path.dirname(os.path.abspath(harness.PIMAPD)), "pimap-bench")


def find(tree, key):
    """Every value of `key` anywhere in a JSON tree."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key:
                yield v
            yield from find(v, key)
    elif isinstance(tree, list):
        for v in tree:
            yield from find(v, key)


def test_certificate_reload_under_a_thousand_idle_tls_devices(start_pimapd, monkeypatch):
    if not os.access(BENCH, os.X_OK):
        pytest.skip("pimap-bench is not built here (the sanitizer build has pimapd only)")
    # A directory the store's own users (dovecot) can read, unlike pytest's tmp_path.
    base = harness.make_state_dir("pimap-tls-fleet-")
    tmp_path = pathlib.Path(base)
    users = [("bench%d" % i, "benchpw") for i in range(max(1, DEVICES // 4))]
    monkeypatch.setenv("PIMAP_EXTRA_USERS", write_users_file(str(tmp_path / "users"), users))
    dovecot = harness.Dovecot(str(tmp_path / "dovecot"))
    os.makedirs(dovecot.dir)
    os.chmod(dovecot.dir, 0o755)
    dovecot.start()
    try:
        cert = sni.make_cert(str(tmp_path), "old", "old.test", ["DNS:old.test"])
        gw = start_pimapd(store=dovecot.store, tls=cert, shards=2, admin=True,
                          extra=["--store-events", "notify", "--max-preauth-per-ip", "4096"])
        old = sni.der(cert[0])
        assert sni.peer(gw.imaps_port, None)[0] == old
        out = str(tmp_path / "bench.json")
        bench = subprocess.Popen(
            [BENCH, "--scenario", "idle", "--binding", "tls", "--devices", str(DEVICES),
             "--users", str(len(users)), "--target", "%s:%d" % (harness.HOST, gw.imaps_port),
             "--metrics", "%s:%d" % (harness.HOST, gw.admin_port),
             "--pimapd-pid", str(gw.proc.pid), "--duration", "12", "--settle", "0",
             "--setup-timeout", "120", "--inflight", "50", "--json", out],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = []
        holding = threading.Event()

        def read():
            for raw in bench.stdout:
                line = raw.decode(errors="replace")
                output.append(line)
                if "devices holding" in line:
                    holding.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert holding.wait(180), "the fleet never reached its hold:\n" + "".join(output)

        # Swap the files whole (as the README says), then reload, mid-hold.
        new_cert = sni.make_cert(str(tmp_path), "new", "new.test", ["DNS:new.test"])
        os.replace(new_cert[0], cert[0])
        os.replace(new_cert[1], cert[1])
        new = sni.der(cert[0])
        assert new != old
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: sni.reloads(gw, "ok") == 1, 10, what="the reload")
        for _ in range(4):  # both shards' listeners
            assert sni.peer(gw.imaps_port, None)[0] == new

        assert bench.wait(timeout=120) == 0, "".join(output)
        reader.join(5)
        with open(out) as f:
            result = json.load(f)
        ready = list(find(result, "ready"))
        lost = list(find(result, "lost_during_hold"))
        assert ready and ready[0] == DEVICES, (ready, "".join(output[-20:]))
        assert lost == [0], (lost, "".join(output[-20:]))
        assert gw.running()
    finally:
        dovecot.stop()
        shutil.rmtree(base, ignore_errors=True)
