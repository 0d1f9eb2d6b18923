"""The etcd test cluster for the high-availability runs.

`tmkms-node-sim etcd-cluster` (tools/node-sim/src/etcd_serve.rs) starts three
members on loopback with mutual TLS (certificates from its own test CA),
writes their endpoints and the CA/client certificate paths to a JSON file,
prints `ready <file>` and then takes one command per stdin line (`kill <i>`,
`restart <i>`, `pause <i>`, `resume <i>`, `leader`, `pids`). Closing its stdin
stops the members; it runs in its own process group, so signalling the group
ends the members too.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

ETCD_VERSION = "v3.6.16"


class EtcdUnavailable(Exception):
    pass


class EtcdFailed(Exception):
    pass


def etcd_bin_dir() -> Path | None:
    """Where node-sim will find etcd (same order as its `EtcdBinaries::locate`)."""
    env = os.environ.get("TMKMS_ETCD_BIN_DIR")
    if env:
        return Path(env) if (Path(env) / "etcd").is_file() else None
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    d = Path(cache) / "tmkms-light" / f"etcd-{ETCD_VERSION}" / "bin"
    if (d / "etcd").is_file() and (d / "etcdctl").is_file():
        return d
    for p in os.environ.get("PATH", "").split(os.pathsep):
        if p and (Path(p) / "etcd").is_file() and (Path(p) / "etcdctl").is_file():
            return Path(p)
    return None


class EtcdCluster:
    def __init__(self, node_sim: Path, dir: Path, members: int = 3, timeout: float = 60.0):
        self.dir = dir
        dir.mkdir(parents=True, exist_ok=True)
        self.log = dir / "node-sim-etcd.log"
        self._log = open(self.log, "a")
        self.p = subprocess.Popen(
            [str(node_sim), "etcd-cluster", "--dir", str(dir), "--members", str(members),
             "--info", str(dir / "cluster.json")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            start_new_session=True, bufsize=1,
        )
        line = self._read_line(timeout)
        if not line.startswith("ready "):
            self.stop()
            raise EtcdFailed(f"etcd cluster did not start (said {line!r}):\n{self._log_tail()}")
        self.info = json.loads(Path(line.split(" ", 1)[1].strip()).read_text())

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def _read_line(self, timeout: float) -> str:
        assert self.p.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.p.stdout], [], [], 0.2)
            if ready:
                return self.p.stdout.readline().strip()
            if self.p.poll() is not None:
                return f"(exited with code {self.p.returncode})"
        return "(no answer in time)"

    def command(self, cmd: str, timeout: float = 60.0) -> str:
        """Send one command; return what follows `ok`, raise on `error`."""
        assert self.p.stdin is not None
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        answer = self._read_line(timeout)
        if answer == "ok" or answer.startswith("ok "):
            return answer[3:]
        raise EtcdFailed(f"etcd-cluster {cmd!r}: {answer}")

    @property
    def endpoints(self) -> list[str]:
        return list(self.info["endpoints"])

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self) -> None:
        if self.p.poll() is None:
            try:
                if self.p.stdin is not None:
                    self.p.stdin.close()
                self.p.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.p.pid, signal.SIGKILL)  # members left behind, if any
        except ProcessLookupError:
            pass
        if self.p.poll() is None:
            self.p.wait(timeout=10)
        self._log.close()
