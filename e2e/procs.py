"""Child processes and their logs, shared by the chain driver and the signers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def read_log(path: Path) -> str:
    try:
        return ANSI.sub("", path.read_text(errors="replace"))
    except FileNotFoundError:
        return ""


def tail(path: Path, n: int = 25) -> str:
    return "\n".join("    " + l for l in read_log(path).splitlines()[-n:])


class Proc:
    """A child process in its own process group, logging to a file. Signals go
    to the whole group, so children it spawned (an SGX runner's enclave
    process) share its fate."""

    def __init__(self, name: str, argv: list[str], logfile: Path, env: dict | None = None):
        self.name = name
        self.logfile = logfile
        with open(logfile, "a") as f:
            f.write(f"\n===== e2e: starting {name}: {' '.join(argv)} =====\n")
            f.flush()
            self.p = subprocess.Popen(
                argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=env,
            )
        self.started = time.monotonic()

    def alive(self) -> bool:
        return self.p.poll() is None

    def signal(self, sig: int) -> None:
        # Also after the leader exited: members of its group may remain (a
        # group id is not reused while the group has members).
        try:
            os.killpg(self.p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, grace: float = 15.0) -> int | None:
        self.signal(signal.SIGTERM)
        try:
            code = self.p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            code = self.p.wait(timeout=10)
        self.signal(signal.SIGKILL)  # stragglers of the group
        return code

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        self.p.wait(timeout=10)
