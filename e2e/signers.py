"""The signing providers a chain can run with, behind one interface.

* `softsign`: `tmkms-softsign` with the node's own key imported.
* `sgx-sim`: `tmkms-light-sgx-runner` in SGX host simulation, running the
  host build of `tmkms-light-sgx-app` as its enclave process, with the
  identity of the real signed enclave (its SIGSTRUCT).
* `nitro-sim`: `tmkms-nitro-enclave` as a host process with its mock NSM,
  `tmkms-nitro-helper` (`enclave vsock-proxy` and `start`) over Unix sockets
  standing in for vsock, KMS from the local emulator (LocalStack).
* `softsign-ha`: two `tmkms-softsign` homes with the node's key imported into
  both, each with its own state file and `[ha]` on one 3-member etcd cluster
  with mutual TLS (`e2e/etcd.py`); both dial the node, which serves one of
  them at a time.

The TEE providers generate their consensus key inside the enclave, so the
chain's genesis is built from the public key they print, not the other way
round. A "crash" SIGKILLs every process of the signer at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import kms
from etcd import EtcdCluster, EtcdFailed, etcd_bin_dir
from procs import Proc, read_log

PROVIDERS = ("softsign", "sgx-sim", "nitro-sim", "softsign-ha")


class SignerError(Exception):
    pass


class Unavailable(Exception):
    """The provider cannot run on this machine; the reason says what to do."""


def validator_address(pubkey: bytes) -> str:
    """CometBFT's Ed25519 validator address: the first 20 bytes of SHA-256."""
    return hashlib.sha256(pubkey).digest()[:20].hex().upper()


def _run(argv: list[str], what: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if out.returncode != 0:
        raise SignerError(f"{what} failed (exit {out.returncode}): {out.stdout}{out.stderr}")
    return out


def _log_env() -> dict:
    env = dict(os.environ, NO_COLOR="1")
    env.pop("TMKMS_LOG", None)
    env.pop("RUST_LOG", None)
    return env


def _pubkey_b64(text: str, what: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise SignerError(f"{what} printed {text.strip()!r}, not a base64 Ed25519 public key")
    return key


class Signer:
    """One signer home and the processes that serve it."""

    provider = ""
    # True: the signer imports the node's generated key (genesis untouched).
    imports_node_key = False
    # Longest node socket path (unix://) the provider handles, if below the
    # kernel's 107 bytes.
    max_unix_path: int | None = None

    def __init__(self, bins: Path, home: Path, log: Path, softsign: Path):
        self.bins, self.home, self.log = bins, home, log
        self.softsign = softsign  # reads any provider's host state file
        self.config = home / "tmkms.toml"

    # --- to implement
    def init(self, chain_id: str, laddr: str, dialect: str, node_home: Path) -> bytes:
        """Create the signer home; return the consensus public key."""
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def processes(self) -> list[Proc]:
        raise NotImplementedError

    def state_file(self) -> Path:
        return self.home / "state" / "consensus.state"

    # --- common
    def crash(self) -> list[str]:
        """SIGKILL every process of the signer (a host crash, an OOM kill);
        return their names."""
        for p in self.processes():
            p.kill9()
        return [p.name for p in self.processes()]

    def stop(self) -> None:
        for p in self.processes():
            if p.alive():
                p.stop()

    def dead(self) -> str | None:
        """Which process of the signer exited, if one did."""
        for p in self.processes():
            if not p.alive():
                return f"{p.name} exited (code {p.p.returncode})"
        return None

    def log_files(self) -> list[Path]:
        return [self.log]

    def log_text(self) -> str:
        return "\n".join(read_log(f) for f in self.log_files())

    def state_height(self) -> int:
        """The height in the host's state file, read by tmkms-softsign (the
        record format is the core's, the same for every provider)."""
        return self.read_state_height(self.state_file())

    def read_state_height(self, state_file: Path) -> int:
        stub = self.home / "state-show.toml"
        stub.write_text(
            'chain_id = "state-show"\n'
            f'consensus_key_path = "{self.home / "unused"}"\n'
            f'state_file_path = "{state_file}"\n'
            '[[validator]]\naddress = "unix:///unused.sock"\n'
        )
        out = _run([str(self.softsign), "state", "show", "--json", "-c", str(stub)], "tmkms-softsign state show")
        return int(json.loads(out.stdout)["height"])


class SoftSigner(Signer):
    provider = "softsign"
    imports_node_key = True

    def __init__(self, *args):
        super().__init__(*args)
        self.proc: Proc | None = None

    def init(self, chain_id: str, laddr: str, dialect: str, node_home: Path) -> bytes:
        key_file = node_home / "config" / "priv_validator_key.json"
        key = json.loads(key_file.read_text())
        address = key["address"].upper()
        out = _run(
            [str(self.softsign), "init", "-c", str(self.config),
             "--chain-id", chain_id, "--address", laddr, "--protocol-version", dialect,
             "--import-key", str(key_file),
             "--import-state", str(node_home / "data" / "priv_validator_state.json")],
            "tmkms-softsign init", timeout=30,
        )
        if address not in out.stdout + out.stderr:
            raise SignerError(f"signer reports another validator address than {address}:\n{out.stdout}{out.stderr}")
        return base64.b64decode(key["pub_key"]["value"])

    def start(self) -> None:
        self.proc = Proc("tmkms-softsign", [str(self.softsign), "start", "-c", str(self.config)],
                         self.log, env=_log_env())

    def processes(self) -> list[Proc]:
        return [self.proc] if self.proc else []


# The HA signers' [[validator]] settings (see e2e/README.md, "HA runs"): the
# node accepts the standby only when its current connection failed, so the
# standby waits in its SecretConnection handshake; timeout_secs bounds that
# wait, and the reconnect backoff the gap between two waits.
HA_TIMEOUT_SECS = int(os.environ.get("E2E_HA_TIMEOUT_SECS", "15"))
HA_RECONNECT_MAX_BACKOFF_SECS = int(os.environ.get("E2E_HA_BACKOFF_SECS", "1"))
# "<time>  INFO ... signed at=12/0/precommit ..." (the session's line per
# fresh signature; replays log "replayed the stored signature at=...").
SIGNED_AT = re.compile(r"\bINFO\s+(?:[\w:]+:\s+)?signed at=(\d+)/")


class HaSoftSigner(Signer):
    """Two softsign signers of one validator on one etcd cluster. A crash
    (`kill-signer`) kills both; the HA disruptions address one member."""

    provider = "softsign-ha"
    imports_node_key = True
    NAMES = ("a", "b")

    def __init__(self, bins: Path, home: Path, log: Path, softsign: Path, node_sim: Path):
        super().__init__(bins, home, log.parent / "signer-a.log", softsign)
        self.node_sim = node_sim
        self.homes = [home / n for n in self.NAMES]
        self.logs = [log.parent / f"signer-{n}.log" for n in self.NAMES]
        self.configs = [h / "tmkms.toml" for h in self.homes]
        self.procs: list[Proc | None] = [None, None]
        self.etcd: EtcdCluster | None = None

    @staticmethod
    def check(node_sim: Path) -> None:
        if not node_sim.is_file():
            raise Unavailable(f"{node_sim} not found: cargo build -p tmkms-node-sim (scripts/e2e.sh does), "
                              "or point E2E_NODE_SIM at it")
        if etcd_bin_dir() is None:
            raise Unavailable("etcd is not installed: run ./scripts/install-etcd.sh "
                              "(or set TMKMS_ETCD_BIN_DIR)")

    def init(self, chain_id: str, laddr: str, dialect: str, node_home: Path) -> bytes:
        try:
            self.etcd = EtcdCluster(self.node_sim, self.home / "etcd")
        except EtcdFailed as e:
            raise SignerError(str(e)) from None
        info = self.etcd.info
        key_file = node_home / "config" / "priv_validator_key.json"
        key = json.loads(key_file.read_text())
        address = key["address"].upper()
        endpoints = ", ".join(json.dumps(e) for e in info["endpoints"])
        for name, config in zip(self.NAMES, self.configs):
            out = _run(
                [str(self.softsign), "init", "-c", str(config),
                 "--chain-id", chain_id, "--address", laddr, "--protocol-version", dialect,
                 "--import-key", str(key_file),
                 "--import-state", str(node_home / "data" / "priv_validator_state.json")],
                f"tmkms-softsign init ({name})", timeout=30,
            )
            if address not in out.stdout + out.stderr:
                raise SignerError(f"signer {name} reports another validator address than {address}:\n"
                                  f"{out.stdout}{out.stderr}")
            text = config.read_text()
            text, n1 = re.subn(r"(?m)^timeout_secs = \d+$", f"timeout_secs = {HA_TIMEOUT_SECS}", text, count=1)
            text, n2 = re.subn(r"(?m)^reconnect_max_backoff_secs = \d+$",
                               f"reconnect_max_backoff_secs = {HA_RECONNECT_MAX_BACKOFF_SECS}", text, count=1)
            if n1 != 1 or n2 != 1:
                raise SignerError(f"{config}: timeout_secs / reconnect_max_backoff_secs not found in the template")
            text += (f'\n[ha]\nbackend = "etcd"\nendpoints = [{endpoints}]\n'
                     f'ca_file = {json.dumps(info["ca_file"])}\ncert_file = {json.dumps(info["cert_file"])}\n'
                     f'key_file = {json.dumps(info["key_file"])}\nsigner_id = "e2e-signer-{name}"\n')
            config.write_text(text)
        return base64.b64decode(key["pub_key"]["value"])

    def start_member(self, i: int) -> None:
        self.procs[i] = Proc(f"tmkms-softsign ({self.NAMES[i]})",
                             [str(self.softsign), "start", "-c", str(self.configs[i])],
                             self.logs[i], env=_log_env())

    def start(self) -> None:
        for i in range(len(self.NAMES)):
            p = self.procs[i]
            if p is None or not p.alive():
                self.start_member(i)

    def processes(self) -> list[Proc]:
        return [p for p in self.procs if p is not None]

    def stop(self) -> None:
        super().stop()
        if self.etcd is not None:
            self.etcd.stop()

    def log_files(self) -> list[Path]:
        return list(self.logs) + ([self.etcd.log] if self.etcd is not None else [])

    def log_text(self) -> str:
        return "\n".join(read_log(f) for f in self.logs)

    def signed(self, i: int) -> tuple[int, int]:
        """(number of signatures, highest height) in member i's log."""
        heights = [int(h) for h in SIGNED_AT.findall(read_log(self.logs[i]))]
        return len(heights), max(heights, default=0)

    def active(self) -> int | None:
        """The member the node talks to: the one that signed the highest
        height (the other never signs while it waits in the node's backlog)."""
        tops = [self.signed(i)[1] for i in range(len(self.NAMES))]
        best = max(tops)
        return None if best == 0 or tops.count(best) > 1 else tops.index(best)

    def state_files(self) -> list[Path]:
        return [h / "state" / "consensus.state" for h in self.homes]

    def state_height(self) -> int:
        """The highest of the two state files: each holds what its signer released."""
        return max(self.read_state_height(f) for f in self.state_files())


def sgx_sigstruct(repo: Path) -> Path:
    return Path(os.environ.get("E2E_SGX_SIGSTRUCT") or repo / "target" / "sgx" / "enclave" / "tmkms-light-sgx-app.sig")


class SgxSimSigner(Signer):
    """The runner spawns the enclave process into its own process group, so a
    crash kills both."""

    provider = "sgx-sim"

    def __init__(self, *args, sigstruct: Path):
        super().__init__(*args)
        self.runner = self.bins / "tmkms-light-sgx-runner"
        self.enclave = self.bins / "tmkms-light-sgx-app"
        self.sigstruct = sigstruct
        self.proc: Proc | None = None

    @staticmethod
    def check(bins: Path, sigstruct: Path) -> None:
        for b in ("tmkms-light-sgx-runner", "tmkms-light-sgx-app"):
            if not (bins / b).is_file():
                raise Unavailable(f"{bins / b} not found: cargo build -p {b} (scripts/e2e.sh does)")
        if not sigstruct.is_file():
            raise Unavailable(
                f"the enclave's SIGSTRUCT {sigstruct} is missing: the SGX simulation takes its identity "
                "from the real signed enclave. Build it with ./scripts/sgx-build.sh (CI does, before "
                "the e2e step), or point E2E_SGX_SIGSTRUCT at one")

    def init(self, chain_id: str, laddr: str, dialect: str, node_home: Path) -> bytes:
        out = _run(
            [str(self.runner), "init", "-c", str(self.config), "--mode", "simulation",
             "--enclave", str(self.enclave), "--sigstruct", str(self.sigstruct),
             "--chain-id", chain_id, "--address", laddr, "--protocol-version", dialect, "-p", "base64"],
            "tmkms-light-sgx-runner init", env=_log_env(),
        )
        key = _pubkey_b64(out.stdout, "tmkms-light-sgx-runner init")
        # The key unsealed by a fresh enclave process must be the one generated.
        again = _run([str(self.runner), "pubkey", "-c", str(self.config), "-p", "base64"],
                     "tmkms-light-sgx-runner pubkey", env=_log_env())
        if _pubkey_b64(again.stdout, "tmkms-light-sgx-runner pubkey") != key:
            raise SignerError(f"pubkey after unsealing ({again.stdout.strip()}) differs from init's "
                              f"({out.stdout.strip()})")
        return key

    def start(self) -> None:
        self.proc = Proc("tmkms-light-sgx-runner", [str(self.runner), "start", "-c", str(self.config)],
                         self.log, env=_log_env())

    def processes(self) -> list[Proc]:
        return [self.proc] if self.proc else []


class NitroSimSigner(Signer):
    """Three processes: the enclave (mock NSM), the KMS proxy and the helper.
    A crash kills the helper and the enclave; the proxy, a separate service on
    a real parent instance, keeps running."""

    provider = "nitro-sim"

    def __init__(self, *args, kms_endpoint: str):
        super().__init__(*args)
        self.helper = self.bins / "tmkms-nitro-helper"
        self.enclave_bin = self.bins / "tmkms-nitro-enclave"
        self.kms_endpoint = kms_endpoint
        self.enclave_log = self.home.parent / "enclave.log"
        self.proxy_log = self.home.parent / "proxy.log"
        self.enclave: Proc | None = None
        self.proxy: Proc | None = None
        self.proc: Proc | None = None

    @staticmethod
    def check(bins: Path) -> None:
        for b in ("tmkms-nitro-helper", "tmkms-nitro-enclave"):
            if not (bins / b).is_file():
                raise Unavailable(f"{bins / b} not found: cargo build -p {b} (scripts/e2e.sh does)")

    def sock(self, name: str) -> str:
        return f"unix://{self.home / (name + '.sock')}"

    def env(self) -> dict:
        # Credentials from the test set, and the metadata service (the
        # helper's fallback, 169.254.169.254 by default) pinned to a closed
        # loopback port: nothing in the suite may leave this machine.
        env = dict(_log_env(), **kms.TEST_CREDENTIALS)
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:1"
        for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_PROFILE"):
            env.pop(var, None)
        return env

    def init(self, chain_id: str, laddr: str, dialect: str, node_home: Path) -> bytes:
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            key_id = kms.create_key(self.kms_endpoint, f"tmkms-light e2e {self.home}")
        except kms.KmsError as e:
            raise SignerError(str(e)) from None
        target = "tcp://" + self.kms_endpoint.removeprefix("http://").rstrip("/")
        self.config.write_text(f'''chain_id = "{chain_id}"
consensus_key_path = "secrets/unused"
id_key_path = "secrets/unused-id"
state_file_path = "state/consensus.state"

[[validator]]
address = "{laddr}"
protocol_version = "{dialect}"

[nitro]
region = "{kms.REGION}"
kms_key_id = "{key_id}"
kms_endpoint = "{self.kms_endpoint}"
enclave = "{self.sock('enclave')}"
host_listen = "{self.sock('host')}"
host_for_enclave = "{self.sock('host')}"
logs_listen = "{self.sock('logs')}"
logs_for_enclave = "{self.sock('logs')}"
kms_proxy_listen = "{self.sock('kms-proxy')}"
kms_proxy_for_enclave = "{self.sock('kms-proxy')}"
kms_proxy_target = "{target}"
''')
        self._start_enclave()
        try:
            out = _run([str(self.helper), "init", "-c", str(self.config), "-a", kms.REGION,
                        "-k", key_id, "-p", "base64"], "tmkms-nitro-helper init", env=self.env())
        except SignerError as e:
            raise SignerError(f"{e}\nenclave log:\n{read_log(self.enclave_log)}") from None
        finally:
            if self.enclave is not None:
                self.enclave.stop()
        return _pubkey_b64(out.stdout, "tmkms-nitro-helper init")

    def _start_enclave(self) -> None:
        sock = self.home / "enclave.sock"
        sock.unlink(missing_ok=True)
        self.enclave = Proc("tmkms-nitro-enclave",
                            [str(self.enclave_bin), "--listen", self.sock("enclave"), "--mock-nsm"],
                            self.enclave_log, env=self.env())
        deadline = time.monotonic() + 10
        while not sock.exists():
            if not self.enclave.alive() or time.monotonic() > deadline:
                raise SignerError(f"the enclave did not listen on {sock}:\n{read_log(self.enclave_log)}")
            time.sleep(0.02)

    def start(self) -> None:
        if self.proxy is None or not self.proxy.alive():
            self.proxy = Proc("tmkms-nitro-helper enclave vsock-proxy",
                              [str(self.helper), "enclave", "vsock-proxy", "-c", str(self.config)],
                              self.proxy_log, env=self.env())
        self._start_enclave()
        self.proc = Proc("tmkms-nitro-helper", [str(self.helper), "start", "-c", str(self.config)],
                         self.log, env=self.env())

    def processes(self) -> list[Proc]:
        return [p for p in (self.proc, self.enclave, self.proxy) if p is not None]

    def crash(self) -> list[str]:
        killed = [p for p in (self.proc, self.enclave) if p is not None]
        for p in killed:
            p.kill9()
        return [p.name for p in killed]

    def log_files(self) -> list[Path]:
        return [self.log, self.enclave_log, self.proxy_log]


def make_signer(provider: str, repo: Path, bins: Path, home: Path, log: Path, kms_endpoint: str) -> Signer:
    """A signer of `provider`, or Unavailable when this machine cannot run it."""
    softsign = bins / "tmkms-softsign"
    if not softsign.is_file():
        raise Unavailable(f"{softsign} not found: cargo build -p tmkms-softsign (scripts/e2e.sh does)")
    if provider == "softsign":
        return SoftSigner(bins, home, log, softsign)
    if provider == "sgx-sim":
        sig = sgx_sigstruct(repo)
        SgxSimSigner.check(bins, sig)
        return SgxSimSigner(bins, home, log, softsign, sigstruct=sig)
    if provider == "softsign-ha":
        node_sim = Path(os.environ.get("E2E_NODE_SIM") or bins / "tmkms-node-sim")
        if not node_sim.is_file() and not os.environ.get("E2E_NODE_SIM"):
            node_sim = repo / "target" / "debug" / "tmkms-node-sim"
        HaSoftSigner.check(node_sim)
        return HaSoftSigner(bins, home, log, softsign, node_sim)
    if provider == "nitro-sim":
        NitroSimSigner.check(bins)
        return NitroSimSigner(bins, home, log, softsign, kms_endpoint=kms_endpoint)
    raise SignerError(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")
