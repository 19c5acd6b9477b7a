#!/usr/bin/python3
"""Run pytest (ctest entry point); a run that collected or ran no test is a failure.

pytest exits 5 when nothing was collected; this also fails a run where every test was
skipped or deselected, so an integration test can never pass by not running.
"""
import sys

import pytest


class _Count:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and report.passed:
            self.passed += 1
        elif report.failed:
            self.failed += 1
        elif report.skipped:
            self.skipped += 1


def main():
    counter = _Count()
    rc = int(pytest.main(sys.argv[1:], plugins=[counter]))
    if rc == 5 or (rc == 0 and counter.passed == 0):
        sys.stderr.write("run_pytest: no test ran (pytest exit %d, %d skipped) -- failing\n"
                         % (rc, counter.skipped))
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
