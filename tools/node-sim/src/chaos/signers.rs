//! The signer processes: homes made with the real binary's `init`, one
//! consensus key copied into all of them, an `[ha]` table pointing at the
//! cluster (through the cut-off proxies), and start/kill/stop/continue.
//! A clock jump uses libfaketime: each signer runs with
//! `FAKETIME_TIMESTAMP_FILE` naming a file of its own whose offset the
//! driver rewrites (libfaketime re-reads it every second).

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::ChaosError;

/// Where Debian's `faketime` package puts the library.
pub const FAKETIME_LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

/// libfaketime, if installed.
pub fn find_faketime() -> Option<PathBuf> {
    FAKETIME_LIBS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// What every signer home shares.
#[derive(Debug, Clone)]
pub struct HomeSpec<'a> {
    pub chain_id: &'a str,
    pub endpoints: Vec<String>,
    pub ca: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
    pub timeout_ms: u64,
}

/// One signer.
#[derive(Debug)]
pub struct SignerProc {
    pub index: usize,
    pub home: PathBuf,
    config: PathBuf,
    clock_file: PathBuf,
    child: Option<Child>,
    stopped: bool,
    pub starts: u64,
}

/// All signers.
#[derive(Debug)]
pub struct Signers {
    bin: PathBuf,
    faketime: Option<PathBuf>,
    pub procs: Vec<SignerProc>,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> ChaosError {
    move |source| ChaosError::Io { context, source }
}

impl Signers {
    /// `init`s one home per entry of `addresses` (the node addresses that
    /// signer dials, one per node) under `dir`.
    pub fn init(
        bin: &Path,
        faketime: Option<PathBuf>,
        dir: &Path,
        addresses: &[Vec<String>],
        spec: &HomeSpec<'_>,
    ) -> Result<Self, ChaosError> {
        let mut procs = Vec::new();
        for (i, addrs) in addresses.iter().enumerate() {
            let home = dir.join(format!("signer-{i}"));
            fs::create_dir_all(&home).map_err(io(format!("creating {}", home.display())))?;
            let config = home.join("tmkms.toml");
            let first = addrs
                .first()
                .ok_or(ChaosError::Setup("no node address".into()))?;
            let out = Command::new(bin)
                .arg("init")
                .arg("-c")
                .arg(&config)
                .args(["--chain-id", spec.chain_id, "--address", first])
                .args(["--protocol-version", "v0.38"])
                .output()
                .map_err(io(format!("running {} init", bin.display())))?;
            if !out.status.success() {
                return Err(ChaosError::Setup(format!(
                    "init of signer {i} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            if let Some(first_proc) = procs.first() {
                let first_proc: &SignerProc = first_proc;
                let from = first_proc.home.join("secrets/consensus.key");
                let to = home.join("secrets/consensus.key");
                fs::copy(&from, &to).map_err(io(format!("copying {}", from.display())))?;
            }
            let mut text =
                fs::read_to_string(&config).map_err(io(format!("reading {}", config.display())))?;
            for addr in addrs.iter().skip(1) {
                text.push_str(&format!(
                    "\n[[validator]]\naddress = {addr:?}\nprotocol_version = \"v0.38\"\ntimeout_secs = 4\nreconnect_max_backoff_secs = 1\n"
                ));
            }
            let endpoints: Vec<String> = spec.endpoints.iter().map(|e| format!("{e:?}")).collect();
            text.push_str(&format!(
                "\n[ha]\nbackend = \"etcd\"\nendpoints = [{}]\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\nsigner_id = \"chaos-signer-{i}\"\ntimeout_ms = {}\n",
                endpoints.join(", "),
                spec.ca,
                spec.cert,
                spec.key,
                spec.timeout_ms,
            ));
            fs::write(&config, text).map_err(io(format!("writing {}", config.display())))?;
            let clock_file = home.join("faketime.offset");
            fs::write(&clock_file, "+0\n")
                .map_err(io(format!("writing {}", clock_file.display())))?;
            procs.push(SignerProc {
                index: i,
                home,
                config,
                clock_file,
                child: None,
                stopped: false,
                starts: 0,
            });
        }
        Ok(Self {
            bin: bin.to_owned(),
            faketime,
            procs,
        })
    }

    /// Whether clock jumps are possible.
    pub fn can_jump_clocks(&self) -> bool {
        self.faketime.is_some()
    }

    fn get(&mut self, i: usize) -> Result<&mut SignerProc, ChaosError> {
        self.procs
            .get_mut(i)
            .ok_or(ChaosError::Setup(format!("no signer {i}")))
    }

    /// Starts signer `i` (its log is appended to `signer.log` in its home).
    pub fn spawn(&mut self, i: usize) -> Result<(), ChaosError> {
        let bin = self.bin.clone();
        let faketime = self.faketime.clone();
        let p = self.get(i)?;
        if p.child.is_some() {
            return Ok(());
        }
        let log_path = p.home.join("signer.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(format!("opening {}", log_path.display())))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("start")
            .arg("-c")
            .arg(&p.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(lib) = faketime {
            cmd.env("LD_PRELOAD", lib)
                .env("FAKETIME_TIMESTAMP_FILE", &p.clock_file)
                .env("FAKETIME_CACHE_DURATION", "1");
        }
        let child = cmd.spawn().map_err(io(format!("starting signer {i}")))?;
        p.child = Some(child);
        p.stopped = false;
        p.starts += 1;
        Ok(())
    }

    /// SIGKILLs signer `i` and reaps it.
    pub fn kill(&mut self, i: usize) -> Result<(), ChaosError> {
        let p = self.get(i)?;
        if let Some(mut child) = p.child.take() {
            child.kill().map_err(io(format!("killing signer {i}")))?;
            child.wait().map_err(io(format!("reaping signer {i}")))?;
        }
        p.stopped = false;
        Ok(())
    }

    /// SIGSTOP (`stop`) or SIGCONT signer `i`.
    pub fn pause(&mut self, i: usize, stop: bool) -> Result<(), ChaosError> {
        let p = self.get(i)?;
        let Some(child) = p.child.as_ref() else {
            return Ok(());
        };
        let sig = if stop { "STOP" } else { "CONT" };
        let status = Command::new("kill")
            .args(["-s", sig, &child.id().to_string()])
            .status()
            .map_err(io(format!("kill -s {sig}")))?;
        if !status.success() {
            return Err(ChaosError::Setup(format!(
                "kill -s {sig} signer {i}: {status}"
            )));
        }
        p.stopped = stop;
        Ok(())
    }

    /// Sets signer `i`'s clock offset (libfaketime syntax, e.g. `+3600`).
    pub fn set_clock(&mut self, i: usize, offset: &str) -> Result<(), ChaosError> {
        let p = self.get(i)?;
        fs::write(&p.clock_file, format!("{offset}\n"))
            .map_err(io(format!("writing {}", p.clock_file.display())))
    }

    /// Whether signer `i` exited by itself (not killed by the driver).
    pub fn exited(&mut self, i: usize) -> Option<String> {
        let p = self.procs.get_mut(i)?;
        let status = p.child.as_mut()?.try_wait().ok()??;
        p.child = None;
        Some(status.to_string())
    }

    /// Brings every signer back: continued, clock reset, running.
    pub fn heal(&mut self) -> Result<(), ChaosError> {
        for i in 0..self.procs.len() {
            self.pause(i, false)?;
            self.set_clock(i, "+0")?;
            self.spawn(i)?;
        }
        Ok(())
    }

    /// Kills every signer.
    pub fn kill_all(&mut self) {
        for i in 0..self.procs.len() {
            let _ = self.kill(i);
        }
    }
}

impl Drop for Signers {
    fn drop(&mut self) {
        self.kill_all();
    }
}
