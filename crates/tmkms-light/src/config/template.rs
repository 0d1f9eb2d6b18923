//! The fully commented `tmkms.toml` that `init` writes.

use std::path::{Path, PathBuf};

use super::address::{Address, EXAMPLE_PORT};
use super::ha::{DEFAULT_HA_KEY_PREFIX, DEFAULT_HA_TIMEOUT_MS};
use super::*;

/// What `init` puts into a new `tmkms.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateParams {
    pub chain_id: ChainId,
    pub address: Address,
    pub protocol_version: Dialect,
    pub consensus_key_path: PathBuf,
    pub id_key_path: PathBuf,
    pub state_file_path: PathBuf,
}

impl TemplateParams {
    /// With the default relative paths.
    pub fn new(chain_id: ChainId, address: Address, protocol_version: Dialect) -> Self {
        Self {
            chain_id,
            address,
            protocol_version,
            consensus_key_path: PathBuf::from(DEFAULT_CONSENSUS_KEY_PATH),
            id_key_path: PathBuf::from(DEFAULT_ID_KEY_PATH),
            state_file_path: PathBuf::from(DEFAULT_STATE_FILE_PATH),
        }
    }
}

/// A TOML string literal (quoted and escaped).
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn toml_path(p: &Path) -> String {
    toml_string(&p.to_string_lossy())
}

/// A fully commented `tmkms.toml`. Paths that are not UTF-8 are written
/// lossily.
pub fn render_template(params: &TemplateParams) -> String {
    let chain_id = toml_string(params.chain_id.as_str());
    let consensus_key_path = toml_path(&params.consensus_key_path);
    let id_key_path = toml_path(&params.id_key_path);
    let state_file_path = toml_path(&params.state_file_path);
    let address = toml_string(&params.address.to_string());
    let protocol_version = toml_string(params.protocol_version.name());
    let default_dialect = Dialect::default();
    format!(
        r#"# tmkms-light configuration.
#
# Relative paths are resolved against the directory of this file. Optional
# settings are shown commented out with their default value.

# Chain id of the network this validator signs for. Requests for any other
# chain id are refused.
chain_id = {chain_id}

# The validator's consensus key (base64 of the 32-byte Ed25519 seed, mode
# 0600). `init` creates it; a CometBFT priv_validator_key.json can be
# imported instead.
consensus_key_path = {consensus_key_path}

# This signer's own identity for SecretConnection (tcp:// addresses): a
# separate key, never the consensus key. Required when any [[validator]]
# uses tcp://; unused for unix:// only.
id_key_path = {id_key_path}

# Double-sign protection: the last height/round/step signed, written durably
# before every signature leaves the signer. Never delete it, and never let two
# signers use copies of it.
state_file_path = {state_file_path}

# Refuse to sign anything above this height. Default: no limit.
# max_height = 100000000

# Largest request accepted from the node, in bytes, from {MIN_MAX_FRAME_BYTES} to
# {MAX_MAX_FRAME_BYTES}. Default: {DEFAULT_MAX_FRAME_BYTES} (a 1 MiB vote extension plus 64 KiB).
# max_frame_bytes = {DEFAULT_MAX_FRAME_BYTES}

# CometBFT v1 nodes can ask the signer to sign arbitrary bytes with the
# consensus key. Such requests are refused unless this is true. Default: false.
# danger_allow_sign_bytes = false

# Prometheus metrics (/metrics) and health checks (/healthz, /readyz) on this
# address. Off unless set; keep it on loopback or a monitoring network.
# metrics_listen = "127.0.0.1:9101"

# Log lines on stderr: "text" (default) or "json" (one JSON object per line,
# for log shippers). The --log-format flag overrides it.
# log_format = "text"

# After each response, spin up to this many microseconds for the node's next
# request before blocking (0..=10000). The node sends proposal, prevote and
# precommit in bursts; spinning saves the scheduler's wake-up on each of
# them, at the cost of up to this much CPU time per response. softsign only.
# Default: 0 (off).
# busy_poll_us = 0

# One [[validator]] table per node. The node listens on its
# priv_validator_laddr; the signer connects to it.
[[validator]]
# "tcp://[<node id>@]host:port": SecretConnection, encrypted. With "<node
# id>@" the node's key is checked too; stock CometBFT makes a new key for
# this connection at every start, so pin it only for nodes with a stable key.
# "unix:///absolute/path.sock": a Unix socket, PLAINTEXT; only for a node on
# this host.
address = {address}
# privval wire version spoken by the node: "v0.34", "v0.37", "v0.38" (also
# for v0.39 and v0.40) or "v1" (also for v2). Default: "{default_dialect}".
protocol_version = {protocol_version}
# Read/write timeout in seconds, at least {MIN_TIMEOUT_SECS} (the node pings
# about every 3.3 s). Default: {DEFAULT_TIMEOUT_SECS}.
timeout_secs = {DEFAULT_TIMEOUT_SECS}
# Longest wait between reconnection attempts, in seconds. Keep it below 3: a
# starting node waits only 3 s for its signer, then exits. Default: {DEFAULT_RECONNECT_MAX_BACKOFF_SECS}.
reconnect_max_backoff_secs = {DEFAULT_RECONNECT_MAX_BACKOFF_SECS}

# A second node for the same chain (e.g. a sentry): uncomment and edit. All
# connections share the double-sign state, so no two conflicting messages get
# signed across them.
# [[validator]]
# address = "tcp://0123456789abcdef0123456789abcdef01234567@10.0.0.2:{EXAMPLE_PORT}"
# protocol_version = "{default_dialect}"
# timeout_secs = {DEFAULT_TIMEOUT_SECS}
# reconnect_max_backoff_secs = {DEFAULT_RECONNECT_MAX_BACKOFF_SECS}

# High availability: several signers for this validator, each on its own
# host with its own state file, coordinated by an etcd cluster. Every new
# height/round/step is reserved in etcd (one transaction) before its
# signature leaves, so two signers never sign conflicting messages. While
# etcd has no quorum nothing is signed (code 5) and safety is kept. Off
# unless this table is present; see the README, "High availability".
# [ha]
# backend = "etcd"
# endpoints = ["https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"]
# The CA that signed the members' certificates (the only one trusted), and
# this signer's client certificate and key.
# ca_file = "etcd/ca.pem"
# cert_file = "etcd/signer.pem"
# key_file = "etcd/signer-key.pem"
# Unique for each signer of this validator.
# signer_id = "signer-a"
# key_prefix = "{DEFAULT_HA_KEY_PREFIX}"
# How long one request may wait for etcd, in ms. Default: {DEFAULT_HA_TIMEOUT_MS}.
# timeout_ms = {DEFAULT_HA_TIMEOUT_MS}
"#
    )
}
