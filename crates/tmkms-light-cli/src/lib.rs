//! Host pieces shared by the tmkms-light binaries (`tmkms-softsign`,
//! `tmkms-light-sgx-runner`, `tmkms-nitro-helper`), each written once: the
//! clap argument groups and the `state` subcommand, logging setup, file
//! helpers, a TEE provider's `tmkms.toml` section, the state-file steps, and the router of an enclave's named
//! streams with its byte-for-byte `splice`.

mod args;
mod binary;
mod files;
mod logging;
mod router;
mod section;
mod splice;
mod state;

pub use args::{Bech32PrefixArg, ConfigArg, InitChainArgs, PubkeyOutputArgs};
pub use binary::Binary;
pub use files::{parent_dir, read_capped, write_config_if_missing, CappedReadError};
pub use logging::{active_log_format, LogArgs, LogFormat, Targets};
pub use router::{NodeDialer, StreamRouter};
pub use section::{
    refuse_settings_tee_hosts_lack, warn_settings_tee_hosts_ignore, SectionContext, SectionError,
    SectionSpec, UnsupportedSetting,
};
pub use splice::{copy_half, splice, Duplex};
pub use state::{
    open_existing_state, open_or_create_state, read_state_json, state_show, write_imported_state,
    StateCommand, StateImportArgs, StateShowArgs,
};
