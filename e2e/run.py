#!/usr/bin/env python3
"""Real-node end-to-end suite: for each CometBFT release line, one-validator
chains whose only signer is ours: tmkms-softsign, the SGX provider in host
simulation, or the Nitro provider with a mock NSM and an emulated KMS
(e2e/signers.py).

Per run (see e2e/lines.toml): install the node with `go install` (cached),
`<node> init`, give the validator key to the signer (softsign imports the
node's key; the TEE providers generate theirs and the genesis validator is
rewritten to it), point `priv_validator_laddr` at it, remove the node's key
file, run the chain to the target height (with signer kills and node restarts
where configured), then check through the node's RPC that every commit carries
a valid signature by our validator, that the signer's state followed the chain
and that the node's log shows no consensus failure or conflicting votes.

Usage: e2e/run.py            (normally through scripts/e2e.sh)
Environment:
  E2E_LINES           space/comma separated line names (default: all in lines.toml)
  E2E_PROVIDERS       space/comma separated providers (default: softsign sgx-sim nitro-sim)
  E2E_KMS_ENDPOINT    KMS emulator for nitro-sim (default http://127.0.0.1:4566)
  E2E_SGX_SIGSTRUCT   the enclave's SIGSTRUCT for sgx-sim (default target/sgx/enclave/tmkms-light-sgx-app.sig)
  E2E_EXTRA_DISRUPTIONS  disruptions appended to every run, e.g. "node-outage"
  E2E_CACHE           cache root for node binaries (default ~/.cache/tmkms-e2e)
  E2E_TARGET_HEIGHT   height every run must reach (default 30)
  E2E_LINE_TIMEOUT    seconds allowed for the runs of one line, installs excluded (default 300)
  E2E_INSTALL_TIMEOUT seconds allowed for building one node (default 1800)
  E2E_WORK            work directory (default: a new /tmp/tmkms-e2e.* directory)
  E2E_KEEP            1 = keep the work directory even when everything passed
  TMKMS_BIN_DIR       where the signer binaries are (default <repo>/target/release)
  E2E_NODE_SIM        tmkms-node-sim for the softsign-ha etcd cluster (default $TMKMS_BIN_DIR/tmkms-node-sim,
                      else <repo>/target/debug/tmkms-node-sim)
  E2E_HA_TIMEOUT_SECS, E2E_HA_BACKOFF_SECS  timeout_secs / reconnect_max_backoff_secs of the softsign-ha
                      signers (default 15 / 1)
  E2E_HA_STANDBY_WAIT_S  length of standby-wait (default 2 x (timeout + backoff) + 2)
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import Proc, read_log, tail  # noqa: E402
from signers import HA_RECONNECT_MAX_BACKOFF_SECS, HA_TIMEOUT_SECS, PROVIDERS, Signer, SignerError, Unavailable, make_signer, validator_address  # noqa: E402
from verify import (  # noqa: E402
    canonical_precommit_sign_bytes,
    ed25519_verify,
    parse_rfc3339_utc,
)

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parent

COMMIT_FLAG = 2  # BlockIDFlagCommit
# A node's log must never contain these (case-insensitive).
FORBIDDEN_NODE_LOG = [
    "CONSENSUS FAILURE",
    "conflicting",
    "DuplicateVoteEvidence",
    "duplicate vote",
    "panic:",
]
# How long the node may take, once restarted, to commit a block signed by us.
RESUME_LIMIT_S = 10.0
# CometBFT's privval listener waits this long for the signer when the node
# starts (defaultTimeoutAcceptSeconds in privval/socket_listeners.go).
NODE_ACCEPT_WINDOW_S = 3.0
# A node outage long enough for the signer's reconnect backoff to reach its cap.
OUTAGE_MIN_S = 9.0
DISRUPTIONS = ("kill-signer", "restart-node", "node-outage", "kill-active-signer", "pause-active-signer",
               "standby-wait")
# Disruptions of one signer of a softsign-ha pair (the one the node talks to).
HA_DISRUPTIONS = ("kill-active-signer", "pause-active-signer", "standby-wait")
# How long `pause-active-signer` keeps the active signer stopped: past the
# node's read timeout (defaultTimeoutReadWriteSeconds = 5 in CometBFT's
# privval/signer_endpoint.go), after which the node drops the connection and
# accepts the standby.
HA_PAUSE_S = 8.0
# A failover (kill or pause -> the standby's first signature and the next
# block) must finish within this.
HA_FAILOVER_LIMIT_S = 30.0
# tracing's text format: "<time>  INFO [target: ]<message> key=value ...".
LOG_EVENT = re.compile(r"\b(?:INFO|WARN|ERROR)\s+(?:[\w:]+:\s+)?(?P<msg>[^=]*?)\s+(?P<fields>\w+=.*)$")
LOG_FIELD = re.compile(r"(\w+)=(\S+)")
# The Nitro helper re-logs each enclave line as "<time>  INFO enclave: <line>".
FORWARDED = re.compile(r"^.*?\b(?:TRACE|DEBUG|INFO|WARN|ERROR)\s+enclave:\s+")


class LineTimeout(Exception):
    pass


class CheckFailed(Exception):
    pass


def set_genesis_validator(path: Path, pubkey: bytes) -> None:
    """Make the genesis validator set our key alone (for signers that
    generate their key inside an enclave, after `<node> init` wrote its own)."""
    genesis = json.loads(path.read_text())
    vals = genesis.get("validators") or []
    if len(vals) != 1:
        raise CheckFailed(f"{path}: expected the one validator `init` writes, found {len(vals)}")
    vals[0]["address"] = validator_address(pubkey)
    vals[0]["pub_key"]["value"] = base64.b64encode(pubkey).decode()
    path.write_text(json.dumps(genesis, indent=2) + "\n")


def log(msg: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass
class Deadline:
    at: float
    what: str

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise LineTimeout(f"time limit for {self.what} exceeded")


# --- lines ------------------------------------------------------------------


@dataclass
class RunSpec:
    transport: str
    disruptions: list[str]
    app: str = "kvstore"
    provider: str = "softsign"


@dataclass
class Line:
    name: str
    package: str
    module: str
    version: str
    binary: str
    dialect: str
    vote_extensions: str
    runs: list[RunSpec]
    go_env: dict[str, str] = field(default_factory=dict)


def load_lines() -> list[Line]:
    with open(E2E_DIR / "lines.toml", "rb") as f:
        data = tomllib.load(f)
    lines = []
    for t in data["line"]:
        runs = [RunSpec(**r) for r in t.pop("runs")]
        for r in runs:
            if r.transport not in ("tcp", "unix"):
                raise SystemExit(f"lines.toml: line {t['name']}: unknown transport {r.transport!r}")
            if r.provider not in PROVIDERS:
                raise SystemExit(f"lines.toml: line {t['name']}: unknown provider {r.provider!r}")
            for d in r.disruptions:
                if d not in DISRUPTIONS:
                    raise SystemExit(f"lines.toml: line {t['name']}: unknown disruption {d!r}")
                if d in HA_DISRUPTIONS and r.provider != "softsign-ha":
                    raise SystemExit(f"lines.toml: line {t['name']}: {d} needs provider softsign-ha")
        if t["vote_extensions"] not in ("", "abci", "feature"):
            raise SystemExit(f"lines.toml: line {t['name']}: vote_extensions must be '', 'abci' or 'feature'")
        lines.append(Line(runs=runs, **t))
    return lines


# --- installing nodes ---------------------------------------------------------


def install_node(line: Line, cache_root: Path, timeout_s: float) -> tuple[Path, str]:
    """Return the node binary, building it into the cache when absent."""
    bindir = cache_root / line.version / "bin"
    exe = bindir / line.binary
    if exe.is_file() and os.access(exe, os.X_OK):
        return exe, "cached"
    bindir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOBIN=str(bindir), **line.go_env)
    started = time.monotonic()
    log(f"{line.name}: go install {line.package}@{line.version} (first run only)")
    first = subprocess.run(
        ["go", "install", f"{line.package}@{line.version}"],
        env=env, capture_output=True, text=True, timeout=timeout_s, cwd=tempfile.gettempdir(),
    )
    if first.returncode == 0 and exe.is_file():
        return exe, f"go install ({time.monotonic() - started:.0f}s)"
    # `go install pkg@version` also asks the proxy for the module's version list
    # (to look for a deprecation notice) and gives up when that list is not
    # served, even though the version itself is. Build the same version from
    # its module source instead, as its own main module.
    reason = " | ".join(l.strip() for l in first.stderr.splitlines() if not l.startswith("go: downloading"))
    log(f"{line.name}: go install failed ({reason[:300]}); "
        f"building {line.module}@{line.version} from its module source")
    dl = subprocess.run(
        ["go", "mod", "download", "-json", f"{line.module}@{line.version}"],
        env=env, capture_output=True, text=True, timeout=timeout_s, cwd=tempfile.gettempdir(),
    )
    if dl.returncode != 0:
        raise CheckFailed(f"go install failed:\n{first.stderr}\ngo mod download failed:\n{dl.stdout}{dl.stderr}")
    moddir = Path(json.loads(dl.stdout)["Dir"])
    rel = line.package[len(line.module):].lstrip("/") or "."
    build = subprocess.run(
        ["go", "build", "-o", str(exe), f"./{rel}"],
        env=env, capture_output=True, text=True, cwd=moddir,
        timeout=max(60.0, timeout_s - (time.monotonic() - started)),
    )
    if build.returncode != 0:
        raise CheckFailed(f"go install failed:\n{first.stderr}\ngo build in {moddir} failed:\n{build.stderr}")
    return exe, f"go build from module source ({time.monotonic() - started:.0f}s)"


# --- helpers ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_toml_keys(path: Path, settings: dict[tuple[str, str], str]) -> None:
    """Replace `key = value` lines in the given [section]s ("" = top level).
    Every key must already exist in the file (the node wrote it)."""
    out, section, seen = [], "", set()
    for raw in path.read_text().splitlines():
        line = raw.strip()
        m = re.match(r"^\[([^\]]+)\]$", line)
        if m:
            section = m.group(1)
        else:
            k = re.match(r"^([A-Za-z0-9_\-]+)\s*=", line)
            if k and (section, k.group(1)) in settings:
                key = (section, k.group(1))
                raw = f"{k.group(1)} = {settings[key]}"
                seen.add(key)
        out.append(raw)
    missing = set(settings) - seen
    if missing:
        raise CheckFailed(f"{path}: keys not found: {sorted(missing)}")
    path.write_text("\n".join(out) + "\n")


def rpc(port: int, method: str, timeout: float = 2.0, **params) -> dict:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    url = f"http://127.0.0.1:{port}/{method}" + (f"?{query}" if query else "")
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = json.load(r)
    if "error" in body and body["error"]:
        raise CheckFailed(f"RPC {method} {params}: {body['error']}")
    return body["result"]


def latest_height(port: int) -> int | None:
    try:
        return int(rpc(port, "status", timeout=1.0)["sync_info"]["latest_block_height"])
    except (OSError, urllib.error.URLError, ValueError, KeyError, json.JSONDecodeError):
        return None


def percentile(values: list[int], q: float) -> int | None:
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]  # nearest rank


# --- one chain ----------------------------------------------------------------


@dataclass
class RunResult:
    line: str
    version: str
    transport: str
    app: str
    provider: str = "softsign"
    ok: bool = False
    skipped: str = ""
    error: str = ""
    height: int = 0
    signed_by_us: int = 0
    verified: int = 0
    restarts: int = 0
    resume_s: list[float] = field(default_factory=list)
    signer_state_height: int = 0
    p50_us: int | None = None
    p99_us: int | None = None
    signatures: int = 0
    replays: int = 0
    refusals: int = 0
    ext_sigs: int = 0
    # softsign-ha: seconds from the kill/pause of the active signer to the
    # standby's first signature, and to the first block committed after it.
    failover_sig_s: list[float] = field(default_factory=list)
    failover_block_s: list[float] = field(default_factory=list)
    failover_kind: list[str] = field(default_factory=list)  # "kill" or "pause", per entry
    evidence: int = 0
    ha_kills: int = 0
    ha_pauses: int = 0
    seconds: float = 0.0
    workdir: str = ""
    notes: list[str] = field(default_factory=list)


class ChainRun:
    def __init__(self, line: Line, spec: RunSpec, node_bin: Path, signer: Signer,
                 work: Path, target: int, deadline: Deadline, result: RunResult):
        self.line, self.spec, self.node_bin, self.signer = line, spec, node_bin, signer
        self.work, self.target, self.deadline, self.r = work, target, deadline, result
        self.home = work / "node"
        self.node_log = work / "node.log"
        self.signer_log = signer.log
        self.node: Proc | None = None
        self.short_dir: Path | None = None
        self.rpc_port = free_port()
        self.p2p_port = free_port()

    # setup

    def setup(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        init = subprocess.run([str(self.node_bin), "init", "--home", str(self.home)],
                              capture_output=True, text=True, timeout=60)
        if init.returncode != 0:
            raise CheckFailed(f"{self.node_bin.name} init failed: {init.stdout}{init.stderr}")
        cfg = self.home / "config"
        genesis_path = cfg / "genesis.json"
        genesis = json.loads(genesis_path.read_text())
        self.chain_id = genesis["chain_id"]
        if self.line.vote_extensions:
            genesis["consensus_params"].setdefault(self.line.vote_extensions, {})[
                "vote_extensions_enable_height"] = "1"
            genesis_path.write_text(json.dumps(genesis, indent=2) + "\n")

        if self.spec.transport == "tcp":
            self.laddr = f"tcp://127.0.0.1:{free_port()}"
        else:
            sock = self.work / "privval.sock"
            limit = self.signer.max_unix_path
            if limit is not None and len(str(sock)) > limit:
                self.short_dir = Path(tempfile.mkdtemp(prefix="tmkms-e2e-"))
                sock = self.short_dir / "privval.sock"
                self.r.notes.append(
                    f"node socket moved to {sock}: {self.signer.provider} handles paths of at most {limit} bytes "
                    "(known bug, see e2e/signers.py)")
            self.laddr = f"unix://{sock}"
        set_toml_keys(cfg / "config.toml", {
            ("", "proxy_app"): f'"{self.spec.app}"',
            ("", "priv_validator_laddr"): f'"{self.laddr}"',
            ("rpc", "laddr"): f'"tcp://127.0.0.1:{self.rpc_port}"',
            ("p2p", "laddr"): f'"tcp://127.0.0.1:{self.p2p_port}"',
            ("p2p", "seeds"): '""',
            ("p2p", "persistent_peers"): '""',
            ("consensus", "timeout_commit"): '"200ms"',
        })

        key_file = cfg / "priv_validator_key.json"
        self.pubkey = self.signer.init(self.chain_id, self.laddr, self.line.dialect, self.home)
        self.address = validator_address(self.pubkey)
        if not self.signer.imports_node_key:
            set_genesis_validator(genesis_path, self.pubkey)
        # Only our signer may hold the key from here on.
        key_file.unlink()

    # processes

    def start_signer(self) -> None:
        self.signer.start()

    def start_node(self) -> None:
        self.node = Proc(self.node_bin.name, [str(self.node_bin), "start", "--home", str(self.home)], self.node_log)

    def stop_all(self) -> None:
        if self.node is not None and self.node.alive():
            self.node.stop()
        self.signer.stop()

    def height(self) -> int | None:
        return latest_height(self.rpc_port)

    def wait_height(self, at_least: int, what: str) -> tuple[int, float]:
        """Wait until the chain is at `at_least`; return (height, when)."""
        while True:
            self.deadline.check()
            if self.node is not None and not self.node.alive():
                raise CheckFailed(f"node exited (code {self.node.p.returncode}) while waiting for {what}:\n"
                                  f"{tail(self.node_log)}")
            dead = self.signer.dead()
            if dead:
                raise CheckFailed(f"signer: {dead} while waiting for {what}:\n"
                                  + "\n".join(tail(f) for f in self.signer.log_files()))
            h = self.height()
            if h is not None and h >= at_least:
                return h, time.monotonic()
            time.sleep(0.1)

    # disruptions

    def kill_signer(self) -> None:
        h, _ = self.wait_height((self.height() or 0) + 1, "a new block before the signer kill")
        time.sleep(random.uniform(0.0, 0.3))  # land anywhere in the round
        killed = self.signer.crash()
        log(f"  SIGKILLed signer ({', '.join(killed)}) at height ~{h}")
        time.sleep(1.5)
        stalled = self.height() or h
        self.start_signer()
        restarted = time.monotonic()
        h2, when = self.wait_height(stalled + 3, "the chain to resume after the signer restart")
        self.r.restarts += 1
        log(f"  signer restarted; chain at {h2} ({when - restarted:.1f}s after the restart)")

    def restart_node(self) -> None:
        assert self.node is not None
        h, _ = self.wait_height((self.height() or 0) + 1, "a new block before the node restart")
        log(f"  stopping node at height ~{h}")
        code = self.node.stop(grace=30)
        if code not in (0, -signal.SIGTERM, 143):
            log(f"  note: node exited with code {code} on SIGTERM")
        self._clear_stale_socket()
        time.sleep(1.0)
        self.start_node()
        started = self.node.started
        h2, when = self.wait_height(h + 1, "a new block after the node restart")
        resume = when - started
        self.r.resume_s.append(round(resume, 1))
        if resume > RESUME_LIMIT_S:
            raise CheckFailed(f"after the node restart the first new block took {resume:.1f}s "
                              f"(limit {RESUME_LIMIT_S}s)")
        self.r.restarts += 1
        log(f"  node restarted; block {h2} committed {resume:.1f}s after the node process started")

    def node_outage(self) -> None:
        """Stop the node long enough for the signer's reconnect backoff to reach
        its cap, then start it just after a failed dial: the node waits
        only 3 s (CometBFT privval accept timeout) for the signer's first
        connection and exits if it does not come."""
        assert self.node is not None
        h, _ = self.wait_height((self.height() or 0) + 1, "a new block before the node outage")
        log(f"  stopping node at height ~{h} for a long outage")
        self.node.stop(grace=30)
        self._clear_stale_socket()
        down_since = time.monotonic()
        dials = read_log(self.signer_log).count("cannot reach node")
        while True:
            self.deadline.check()
            now = read_log(self.signer_log).count("cannot reach node")
            if now > dials and time.monotonic() - down_since >= OUTAGE_MIN_S:
                break
            dials = now
            time.sleep(0.02)
        time.sleep(0.3)
        self.start_node()
        started = self.node.started
        try:
            h2, when = self.wait_height(h + 1, "a new block after the node outage")
        except CheckFailed as e:
            if self.node.alive():
                raise
            raise CheckFailed(
                f"the node did not come back after an outage of {time.monotonic() - down_since:.0f}s: it "
                f"waits {NODE_ACCEPT_WINDOW_S:.0f}s for the signer at start, and the signer did not dial "
                f"within that window.\n{e}") from None
        self.r.resume_s.append(round(when - started, 1))
        self.r.restarts += 1
        log(f"  node back after the outage; block {h2} committed {when - started:.1f}s after its start")

    # high availability (softsign-ha)

    def _active_signer(self) -> int:
        """The member the node is served by (see HaSoftSigner.active)."""
        h, _ = self.wait_height((self.height() or 0) + 1, "a new block before the HA disruption")
        until = time.monotonic() + 10
        while (active := self.signer.active()) is None:
            if time.monotonic() > until:
                raise CheckFailed(f"no single active signer at height {h}: "
                                  f"{[self.signer.signed(i) for i in range(2)]}")
            time.sleep(0.05)
        return active

    def _measure_failover(self, standby: int, since: float, what: str, kind: str) -> tuple[float, float]:
        """Wait for the standby's first signature and the first block
        committed after it; return both delays from `since`."""
        count0, _ = self.signer.signed(standby)
        sig_at = block_at = None
        height_at_sig = 0
        while block_at is None:
            self.deadline.check()
            now = time.monotonic()
            if now - since > HA_FAILOVER_LIMIT_S:
                raise CheckFailed(f"no failover within {HA_FAILOVER_LIMIT_S:.0f}s after {what} "
                                  f"(standby signed: {sig_at is not None}):\n{tail(self.node_log)}")
            if self.node is not None and not self.node.alive():
                raise CheckFailed(f"node exited (code {self.node.p.returncode}) after {what}:\n"
                                  f"{tail(self.node_log)}")
            if sig_at is None:
                if self.signer.signed(standby)[0] > count0:
                    sig_at = now
                    height_at_sig = self.height() or 0
            else:
                h = self.height()
                if h is not None and h > height_at_sig:
                    block_at = time.monotonic()
            time.sleep(0.02)
        assert sig_at is not None
        sig_s, block_s = round(sig_at - since, 2), round(block_at - since, 2)
        self.r.failover_sig_s.append(sig_s)
        self.r.failover_block_s.append(block_s)
        self.r.failover_kind.append(kind)
        return sig_s, block_s

    def accept_queue(self) -> int | None:
        """Connections waiting in the node's privval listen queue (tcp; the
        Recv-Q of a listening socket in `ss -ltn`)."""
        if not self.laddr.startswith("tcp://"):
            return None
        port = self.laddr.rsplit(":", 1)[1]
        try:
            out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return None
        fields = out.stdout.split()
        return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None

    def standby_wait(self) -> None:
        """Let the standby wait in the node's listen queue for longer than its
        handshake timeout (timeout_secs) twice: it gives up and dials again,
        leaving its closed connection queued; the next failover must get
        past it."""
        active = self._active_signer()
        standby = 1 - active
        log_file = self.signer.logs[standby]
        before = read_log(log_file).count("cannot reach node")
        wait = float(os.environ.get("E2E_HA_STANDBY_WAIT_S")
                     or 2 * (HA_TIMEOUT_SECS + HA_RECONNECT_MAX_BACKOFF_SECS) + 2)
        log(f"  standby {self.signer.NAMES[standby]} waits {wait:.0f}s in the node's listen queue "
            f"(timeout_secs {HA_TIMEOUT_SECS})")
        until = time.monotonic() + wait
        while time.monotonic() < until:
            self.wait_height((self.height() or 0) + 1, "blocks while the standby waits")
            time.sleep(0.5)
        redials = read_log(log_file).count("cannot reach node") - before
        queued = self.accept_queue()
        log(f"  standby gave up its handshake {redials}x meanwhile; node listen queue: {queued}")
        self.r.notes.append(f"standby wait {wait:.0f}s: {redials} handshake timeouts of the standby, "
                            f"{queued} connections in the node's listen queue")

    def kill_active_signer(self) -> None:
        active = self._active_signer()
        time.sleep(random.uniform(0.0, 0.3))  # land anywhere in the round
        h = self.height()
        name = self.signer.NAMES[active]
        proc = self.signer.procs[active]
        assert proc is not None
        proc.kill9()
        killed = time.monotonic()
        sig_s, block_s = self._measure_failover(1 - active, killed, f"SIGKILL of signer {name}", "kill")
        self.r.ha_kills += 1
        self.r.restarts += 1
        log(f"  SIGKILLed active signer {name} at height ~{h}: standby signed after {sig_s:.2f}s, "
            f"block after {block_s:.2f}s")
        self.signer.start_member(active)  # it becomes the standby
        self.wait_height((self.height() or 0) + 2, "blocks after the killed signer restarted")

    def pause_active_signer(self) -> None:
        active = self._active_signer()
        h = self.height()
        name = self.signer.NAMES[active]
        proc = self.signer.procs[active]
        assert proc is not None
        proc.signal(signal.SIGSTOP)
        paused = time.monotonic()
        try:
            sig_s, block_s = self._measure_failover(1 - active, paused, f"SIGSTOP of signer {name}", "pause")
            time.sleep(max(0.0, HA_PAUSE_S - (time.monotonic() - paused)))
        finally:
            mark = len(read_log(self.signer.logs[active]))
            proc.signal(signal.SIGCONT)
        resumed_after = time.monotonic() - paused
        self.r.ha_pauses += 1
        self.r.restarts += 1
        log(f"  SIGSTOPped active signer {name} at height ~{h}: standby signed after {sig_s:.2f}s, "
            f"block after {block_s:.2f}s; SIGCONT after {resumed_after:.1f}s")
        self.wait_height((self.height() or 0) + 3, "blocks after the paused signer resumed")
        woke = read_log(self.signer.logs[active])[mark:]
        summary = {k: woke.count(v) for k, v in (("signed", "INFO signed at="),
                                                 ("replayed", "replayed the stored signature"),
                                                 ("refused", "refusing to sign"),
                                                 ("connection ended", "connection ended"),
                                                 ("node closed", "node closed the connection"))}
        log(f"  signer {name} after SIGCONT: {summary}")
        self.r.notes.append(f"paused signer {name} after SIGCONT logged {summary}")

    def _clear_stale_socket(self) -> None:
        sock = Path(self.laddr[len("unix://"):]) if self.laddr.startswith("unix://") else None
        if sock is not None and sock.exists():
            # The node does not close its privval listener when it shuts down
            # (node.OnStop only stops a privValidator that is a service, and
            # RetrySignerClient is not), so the socket file outlives it and the
            # next start fails with "bind: address already in use". Clear it
            # as a service manager would (ExecStartPre=rm -f ...).
            sock.unlink()
            self.r.notes.append("node left its unix socket behind on exit; removed before restart")

    # the run

    def run(self) -> None:
        self.setup()
        # As an operator would: signer first (it keeps dialing), then the node.
        self.start_signer()
        self.start_node()
        self.wait_height(2, "the first blocks")
        n = len(self.spec.disruptions)
        for i, d in enumerate(self.spec.disruptions):
            # Spread the disruptions over the run.
            self.wait_height(max(3, self.target * (i + 1) // (n + 2)), f"the height for {d}")
            if d == "kill-signer":
                self.kill_signer()
            elif d == "kill-active-signer":
                self.kill_active_signer()
            elif d == "pause-active-signer":
                self.pause_active_signer()
            elif d == "standby-wait":
                self.standby_wait()
            elif d == "restart-node":
                self.restart_node()
            else:
                self.node_outage()
        final, _ = self.wait_height(self.target, f"height {self.target}")
        self.check(final)

    def check(self, final: int) -> None:
        r = self.r
        r.height = final
        port = self.rpc_port
        # The genesis validator set is ours alone, with our key.
        vals = rpc(port, "validators", height=final)["validators"]
        if len(vals) != 1 or vals[0]["address"].upper() != self.address \
                or base64.b64decode(vals[0]["pub_key"]["value"]) != self.pubkey:
            raise CheckFailed(f"unexpected validator set at {final}: {vals}")
        if self.line.vote_extensions:
            params = rpc(port, "consensus_params", height=final)["consensus_params"]
            enabled = params.get(self.line.vote_extensions, {}).get("vote_extensions_enable_height")
            if str(enabled) != "1":
                raise CheckFailed(f"vote extensions not enabled from height 1: consensus_params={params}")

        problems = []
        for h in range(1, final + 1):
            commit = rpc(port, "commit", height=h)["signed_header"]["commit"]
            ours = [s for s in commit["signatures"]
                    if (s.get("validator_address") or "").upper() == self.address]
            if len(ours) != 1 or int(ours[0]["block_id_flag"]) != COMMIT_FLAG or not ours[0]["signature"]:
                problems.append(f"height {h}: no commit signature from {self.address}: {commit['signatures']}")
                continue
            r.signed_by_us += 1
            sig = ours[0]
            bid = commit["block_id"]
            sign_bytes = canonical_precommit_sign_bytes(
                self.chain_id, int(commit["height"]), int(commit["round"]),
                (bytes.fromhex(bid["hash"]), int(bid["parts"]["total"]), bytes.fromhex(bid["parts"]["hash"])),
                parse_rfc3339_utc(sig["timestamp"]),
            )
            if ed25519_verify(self.pubkey, sign_bytes, base64.b64decode(sig["signature"])):
                r.verified += 1
            else:
                problems.append(f"height {h}: commit signature does not verify")
            block = rpc(port, "block", height=h)["block"]
            evidence = (block.get("evidence") or {}).get("evidence") or []
            r.evidence += len(evidence)
            if evidence:
                problems.append(f"height {h}: block carries evidence: {evidence}")
        if problems:
            raise CheckFailed("commit checks failed:\n  " + "\n  ".join(problems[:10]))

        r.signer_state_height = self.signer.state_height()
        if r.signer_state_height < final:
            raise CheckFailed(f"signer state at height {r.signer_state_height}, chain at {final}")

    def check_signer_log(self, text: str) -> None:
        """Counts, latency and per-position rules from the signer's info log."""
        r = self.r
        signed: dict[str, int] = {}
        replayed: dict[str, int] = {}
        latencies: list[int] = []
        ext_heights: set[int] = set()
        ext_on_prevote: list[str] = []
        ext_field_seen = False
        for line in text.splitlines():
            m = LOG_EVENT.search(FORWARDED.sub("", line, count=1))
            if not m:
                continue
            msg, fields = m.group("msg"), dict(LOG_FIELD.findall(m.group("fields")))
            at = fields.get("at", "")
            if msg == "signed":
                signed[at] = signed.get(at, 0) + 1
                if "latency_us" in fields:
                    latencies.append(int(fields["latency_us"]))
                if "extension_signed" in fields:
                    ext_field_seen = True
                    if fields["extension_signed"] == "true":
                        if at.endswith("/precommit"):
                            ext_heights.add(int(at.split("/")[0]))
                        else:
                            ext_on_prevote.append(at)
            elif msg.startswith("replayed"):
                replayed[at] = replayed.get(at, 0) + 1
                r.replays += 1
            elif msg.startswith("refusing"):
                r.refusals += 1
        r.signatures = sum(signed.values())
        r.ext_sigs = len(ext_heights)
        r.p50_us, r.p99_us = percentile(latencies, 0.50), percentile(latencies, 0.99)

        def fail(why: str) -> None:
            if r.ok:
                r.ok, r.error = False, why

        # A vote is never signed afresh twice at one height/round/step, across
        # all signer restarts (a proposal may be: a new timestamp is re-signed).
        twice = sorted(at for at, n in signed.items()
                       if n - replayed.get(at, 0) > 1 and not at.endswith("/proposal"))
        if twice:
            fail(f"signer signed a vote afresh twice at: {', '.join(twice[:10])}")
        if ext_on_prevote:
            fail(f"signer returned an extension signature on a non-precommit: {ext_on_prevote[:5]}")
        if not ext_field_seen:
            r.notes.append("signer log has no extension_signed field; extension checks skipped")
        elif self.line.vote_extensions:
            missing = [h for h in range(1, r.height + 1) if h not in ext_heights]
            if missing:
                fail(f"no extension-signed precommit from the signer at heights {missing[:10]}")
        elif ext_heights:
            fail(f"extension signatures on a line without vote extensions, heights {sorted(ext_heights)[:10]}")

    def finish(self) -> None:
        """Stop everything and check the logs (also after a failed run)."""
        self.stop_all()
        if self.short_dir is not None:
            shutil.rmtree(self.short_dir, ignore_errors=True)
        r = self.r
        node_log = read_log(self.node_log)
        signer_log = self.signer.log_text()
        self.check_signer_log(signer_log)
        bad = [l for l in node_log.splitlines()
               if any(p.lower() in l.lower() for p in FORBIDDEN_NODE_LOG)]
        if bad and r.ok:
            r.ok = False
            r.error = "node log:\n    " + "\n    ".join(bad[:10])
        if "panicked" in signer_log and r.ok:
            r.ok = False
            r.error = "signer panicked:\n" + "\n".join(tail(f) for f in self.signer.log_files())
        # The node must not have signed with our key: any key file it made for
        # itself holds another key.
        key_file = self.home / "config" / "priv_validator_key.json"
        if key_file.exists():
            other = json.loads(key_file.read_text())
            if other["address"].upper() == self.address and r.ok:
                r.ok = False
                r.error = "the node holds our validator key again"


def run_line(line: Line, node_bin: Path, bins: Path, kms_endpoint: str, work: Path, target: int,
             line_timeout: float) -> list[RunResult]:
    results = []
    deadline = Deadline(time.monotonic() + line_timeout, f"line {line.name}")
    for i, spec in enumerate(line.runs):
        r = RunResult(line.name, line.version, spec.transport, spec.app, spec.provider)
        r.workdir = str(work / f"{line.name}-{i}-{spec.provider}-{spec.transport}")
        started = time.monotonic()
        log(f"{line.name} ({line.version}, dialect {line.dialect}, {spec.provider}, {spec.transport}, "
            f"app {spec.app}" + (f", {' + '.join(spec.disruptions)}" if spec.disruptions else "") + ")")
        try:
            signer = make_signer(spec.provider, REPO, bins, Path(r.workdir) / "kms",
                                 Path(r.workdir) / "signer.log", kms_endpoint)
        except Unavailable as e:
            r.ok, r.skipped = True, str(e)
            log(f"  *** SKIPPED {spec.provider}: {e} ***")
            results.append(r)
            continue
        chain = ChainRun(line, spec, node_bin, signer, Path(r.workdir), target, deadline, r)
        try:
            chain.run()
            r.ok = True
        except (CheckFailed, SignerError, LineTimeout, subprocess.TimeoutExpired, OSError,
                urllib.error.URLError, KeyError, ValueError) as e:
            r.error = f"{type(e).__name__}: {e}"
        finally:
            try:
                chain.finish()
            except Exception as e:  # noqa: BLE001 - report, never hide the first error
                if r.ok:
                    r.ok, r.error = False, f"while stopping: {type(e).__name__}: {e}"
        r.seconds = time.monotonic() - started
        if r.ok:
            log(f"  OK: height {r.height}, {r.signed_by_us} commits signed by us, "
                f"{r.verified} verified, signer state at {r.signer_state_height} ({r.seconds:.0f}s)")
        else:
            log(f"  FAILED: {r.error}")
            log(f"  node log tail ({chain.node_log}):\n{tail(chain.node_log)}")
            for f in signer.log_files():
                log(f"  signer log tail ({f}):\n{tail(f)}")
        results.append(r)
    return results


def fmt_failover(values: list[float]) -> str:
    """p50/max of the failover delays, or - without any."""
    if not values:
        return "-"
    return f"{percentile_f(values, 0.5):.1f}/{max(values):.1f}"


def percentile_f(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]  # nearest rank


def fmt_us(v: int | None) -> str:
    return "-" if v is None else str(v)


def print_table(rows: list[RunResult], install: dict[str, str]) -> None:
    head = ["line", "version", "provider", "transport", "app", "heights", "signed by us", "sigs verified",
            "restarts", "resume s", "failover s", "signed", "ext sigs", "replayed", "refused", "p50 us", "p99 us", "result"]
    table = [head]
    for r in rows:
        table.append([
            r.line, r.version, r.provider, r.transport, r.app, str(r.height), str(r.signed_by_us), str(r.verified),
            str(r.restarts), ",".join(str(x) for x in r.resume_s) or "-", fmt_failover(r.failover_block_s),
            str(r.signatures), str(r.ext_sigs), str(r.replays), str(r.refusals), fmt_us(r.p50_us), fmt_us(r.p99_us),
            "SKIPPED" if r.skipped else "ok" if r.ok else "FAILED",
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    print()
    for j, row in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print("  heights: chain height reached; signed by us: commits 1..height with our COMMIT signature;")
    print("  sigs verified: of those, Ed25519-verified here; restarts: signer kills + node restarts survived;")
    print("  resume s: node process start -> first new block; signed/replayed/refused: signer log counts;")
    print("  ext sigs: heights with an extension-signed precommit (signer log);")
    print("  failover s (softsign-ha): p50/max from killing or pausing the active signer to the first")
    print("    block committed after the standby's first signature")
    print("  p50/p99 us: signer latency_us over every released signature (- where the signer has no clock)")
    for name, how in install.items():
        print(f"  node {name}: {how}")
    for r in rows:
        if r.failover_sig_s:
            print(f"  {r.line} {r.provider}: {r.ha_kills} kills, {r.ha_pauses} pauses; evidence in blocks: {r.evidence}")
            for kind in ("kill", "pause", None):
                picked = [i for i, k in enumerate(r.failover_kind) if kind is None or k == kind]
                if not picked:
                    continue
                sig = [r.failover_sig_s[i] for i in picked]
                block = [r.failover_block_s[i] for i in picked]
                print(f"    failover after {kind or 'all'} ({len(picked)}): to the standby's first signature "
                      f"p50 {percentile_f(sig, 0.5):.2f}s max {max(sig):.2f}s; to the next block "
                      f"p50 {percentile_f(block, 0.5):.2f}s max {max(block):.2f}s")
            print(f"    each (signature/block s): "
                  + ", ".join(f"{k} {a}/{b}" for k, a, b in zip(r.failover_kind, r.failover_sig_s, r.failover_block_s)))
    notes = sorted({f"{r.line} {r.provider} {r.transport}: {n}" for r in rows for n in r.notes})
    for n in notes:
        print(f"  note: {n}")


def main() -> int:
    lines = load_lines()
    wanted = [w for w in re.split(r"[\s,]+", os.environ.get("E2E_LINES", "")) if w]
    known = [l.name for l in lines]
    for w in wanted:
        if w not in known:
            print(f"e2e: unknown line {w!r} in E2E_LINES; known: {' '.join(known)}", file=sys.stderr)
            return 2
    if wanted:
        lines = [l for l in lines if l.name in wanted]
    extra = [d for d in re.split(r"[\s,]+", os.environ.get("E2E_EXTRA_DISRUPTIONS", "")) if d]
    for d in extra:
        if d not in DISRUPTIONS:
            print(f"e2e: unknown disruption {d!r} in E2E_EXTRA_DISRUPTIONS; known: {' '.join(DISRUPTIONS)}",
                  file=sys.stderr)
            return 2
    providers = [p for p in re.split(r"[\s,]+", os.environ.get("E2E_PROVIDERS", "")) if p]
    for p in providers:
        if p not in PROVIDERS:
            print(f"e2e: unknown provider {p!r} in E2E_PROVIDERS; known: {' '.join(PROVIDERS)}", file=sys.stderr)
            return 2
    for l in lines:
        if providers:
            l.runs = [spec for spec in l.runs if spec.provider in providers]
        for spec in l.runs:
            spec.disruptions.extend(extra)
    lines = [l for l in lines if l.runs]
    if shutil.which("go") is None:
        print("e2e: `go` not found on PATH: the real-node suite installs CometBFT with `go install`. "
              "Install Go (1.22 or newer) and retry.", file=sys.stderr)
        return 2
    bins = Path(os.environ.get("TMKMS_BIN_DIR", REPO / "target" / "release"))
    if not (bins / "tmkms-softsign").is_file():
        print(f"e2e: {bins / 'tmkms-softsign'} not found: build it with "
              "`cargo build --release -p tmkms-softsign` (scripts/e2e.sh does)", file=sys.stderr)
        return 2
    kms_endpoint = os.environ.get("E2E_KMS_ENDPOINT", "http://127.0.0.1:4566")
    cache = Path(os.environ.get("E2E_CACHE", Path.home() / ".cache" / "tmkms-e2e"))
    target = int(os.environ.get("E2E_TARGET_HEIGHT", "30"))
    line_timeout = float(os.environ.get("E2E_LINE_TIMEOUT", "300"))
    install_timeout = float(os.environ.get("E2E_INSTALL_TIMEOUT", "1800"))
    work = Path(os.environ.get("E2E_WORK") or tempfile.mkdtemp(prefix="tmkms-e2e."))
    work.mkdir(parents=True, exist_ok=True)
    log(f"lines: {' '.join(l.name for l in lines)}; target height {target}; work dir {work}; node cache {cache}")

    started = time.monotonic()
    results: list[RunResult] = []
    install: dict[str, str] = {}
    for line in lines:
        try:
            node_bin, how = install_node(line, cache, install_timeout)
        except (CheckFailed, subprocess.TimeoutExpired, OSError) as e:
            install[line.name] = f"INSTALL FAILED: {e}"
            log(f"{line.name}: install failed: {e}")
            for spec in line.runs:
                results.append(RunResult(line.name, line.version, spec.transport, spec.app, spec.provider,
                                         error=f"install failed: {e}"))
            continue
        install[line.name] = f"{line.version} {how} -> {node_bin}"
        results.extend(run_line(line, node_bin, bins, kms_endpoint, work, target, line_timeout))

    (work / "results.json").write_text(json.dumps([r.__dict__ for r in results], indent=2) + "\n")
    print_table(results, install)
    failed = [r for r in results if not r.ok]
    skipped = [r for r in results if r.skipped]
    for r in failed:
        print(f"  FAILED {r.line} {r.provider} {r.transport}: {r.error.splitlines()[0] if r.error else ''} "
              f"(logs: {r.workdir})")
    for r in skipped:
        print(f"  *** SKIPPED {r.line} {r.provider} {r.transport}: {r.skipped} ***")
    passed = len(results) - len(failed) - len(skipped)
    log(f"total {time.monotonic() - started:.0f}s")
    if not failed and os.environ.get("E2E_KEEP") != "1" and "E2E_WORK" not in os.environ:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"  work dir kept: {work}")
    print(f"e2e: {passed} passed, {len(failed)} failed" + (f", {len(skipped)} SKIPPED" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
