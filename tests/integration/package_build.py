"""The Debian package of this build (CPack), for test_package.py and
test_package_install.py."""

import glob
import os
import subprocess

import harness

BUILD_DIR = os.path.dirname(os.path.dirname(os.path.abspath(harness.PIMAPD)))


def run(*args, timeout=240, **kwargs):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kwargs)
    assert r.returncode == 0, "%s failed (%d):\n%s%s" % (args, r.returncode, r.stdout, r.stderr)
    return r.stdout


def sanitizer_build():
    """tools/test-asan builds pimapd alone; the regular run packages the release build."""
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            return "-fsanitize" in f.read()
    except OSError:
        return False


def build_deb(out):
    """cpack's .deb of this build, made in `out`: its path."""
    assert os.path.exists(os.path.join(BUILD_DIR, "CPackConfig.cmake")), (
        "no CPackConfig.cmake in %s (cmake/Packaging.cmake)" % BUILD_DIR)
    os.makedirs(out, exist_ok=True)
    run("cpack", "-G", "DEB", "-B", out, cwd=BUILD_DIR)
    debs = glob.glob(os.path.join(out, "pimapd_*.deb"))
    assert len(debs) == 1, debs
    return debs[0]
