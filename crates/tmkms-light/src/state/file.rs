//! Durable state in a local file: two alternating fixed-size slots.
//!
//! Each `persist` overwrites, in place, the slot that does *not* hold the
//! newest durable record with the next record (sequence number + 1), then
//! calls `fdatasync`. A crash or power cut at any point leaves at least one
//! valid slot: either the new record made it whole, or its slot is torn (the
//! checksum fails) and the other slot still holds the previous state, which
//! is all that was promised to the caller. No rename, no directory update and
//! no allocation on this path: one 512-byte `pwrite`, a `sync_file_range`
//! that starts the device write (the signature is made while it runs) and
//! one `fdatasync`.
//!
//! Each slot starts on its own 4 KiB boundary. If both shared a page or a
//! physical sector, the kernel or the drive would rewrite the old slot while
//! writing the new one (a read-modify-write of a 4 KiB sector on "512e"
//! drives), and a power cut then could damage both.
//!
//! An exclusive advisory lock on `<path>.lock` keeps a second signer process
//! (or a second store in this one) off the same file: two signers sharing one
//! state is the classic double-sign setup.

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::record::{decode_slot, encode_slot, RecordError, SLOT_LEN};
use super::{StateError, StateStore};
use crate::paths::parent_dir;
use crate::types::SignState;

/// Distance between the starts of the two slots.
pub const SLOT_STRIDE: u64 = 4096;

/// Exact length of a state file: two slot regions. Bytes of a region after
/// its record are zero and never read.
pub const FILE_LEN: u64 = 2 * SLOT_STRIDE;

/// Byte offset of slot `index` (0 or 1) in the file, for tools and tests that
/// inspect or damage state files.
pub fn slot_offset(index: usize) -> Option<u64> {
    match index {
        0 => Some(Slot::Zero.offset()),
        1 => Some(Slot::One.offset()),
        _ => None,
    }
}

/// Path of the lock file that guards the state file at `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Zero,
    One,
}

impl Slot {
    fn other(self) -> Self {
        match self {
            Slot::Zero => Slot::One,
            Slot::One => Slot::Zero,
        }
    }

    fn offset(self) -> u64 {
        match self {
            Slot::Zero => 0,
            Slot::One => SLOT_STRIDE,
        }
    }

    fn index(self) -> usize {
        match self {
            Slot::Zero => 0,
            Slot::One => 1,
        }
    }
}

/// The newest record known to be durable: the slot it is in and its
/// sequence number. The next write goes to the other slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Durable {
    slot: Slot,
    seq: u64,
}

/// A [`StateStore`] backed by a two-slot file. See the module documentation.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    file: File,
    /// Held (locked) for the store's lifetime; the kernel drops the lock
    /// when this closes, including on process death.
    _lock: File,
    durable: Durable,
}

impl FileStore {
    /// Open an existing state file and lock it.
    ///
    /// Fails with [`StateError::Missing`] if there is no file,
    /// [`StateError::Locked`] if another store holds it, and
    /// [`StateError::Corrupt`] if neither slot holds a valid record.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StateError> {
        let path = path.as_ref();
        match fs::metadata(path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Err(corrupt(path, "it is not a regular file")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing(path)),
            Err(e) => return Err(io_error(path, "reading metadata", e)),
        }
        let lock = acquire_lock(path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => missing(path),
                _ => io_error(path, "opening", e),
            })?;
        // A predecessor killed between its write and its fdatasync leaves the
        // write in the page cache only. Flush it before trusting what we read,
        // or the next write could overwrite the only durable slot.
        file.sync_data()
            .map_err(|e| io_error(path, "fdatasync on open", e))?;
        let (durable, _) = read_newest(&file, path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            _lock: lock,
            durable,
        })
    }

    /// Create a new state file holding `initial`, and lock it.
    ///
    /// Refuses to overwrite an existing file ([`StateError::Exists`]). Missing
    /// parent directories are created with mode 0700, the file with 0600.
    /// Returns once the file's contents and its directory entry are durable.
    pub fn create(path: impl AsRef<Path>, initial: &SignState) -> Result<Self, StateError> {
        // Both slots hold `initial`, so a later loss of either (bit rot) still
        // falls back to it rather than to an empty state.
        let first = encode_slot(1, initial)?;
        let copy = encode_slot(0, initial)?;
        Self::create_from_records(path, &[first, copy])
    }

    /// Create a new state file from two records an enclave encoded (and
    /// tagged) for `init` or `state import`: `records[0]` goes to slot 0,
    /// `records[1]` to slot 1. Both must decode. Otherwise as [`Self::create`].
    pub fn create_from_records(
        path: impl AsRef<Path>,
        records: &[[u8; SLOT_LEN]; 2],
    ) -> Result<Self, StateError> {
        let path = path.as_ref();
        let [first, copy] = records;
        let (seq0, _) = decode_slot(first)?;
        let (seq1, _) = decode_slot(copy)?;
        let (newest_slot, newest_seq) = if seq0 >= seq1 {
            (Slot::Zero, seq0)
        } else {
            (Slot::One, seq1)
        };
        let mut image = [0u8; FILE_LEN as usize];
        for (slot, record) in [(Slot::Zero, first), (Slot::One, copy)] {
            let start = usize::try_from(slot.offset()).unwrap_or(usize::MAX);
            image
                .get_mut(start..start.saturating_add(SLOT_LEN))
                .ok_or_else(|| corrupt(path, "slot layout does not fit the file"))?
                .copy_from_slice(record);
        }

        let dir = parent_dir(path);
        ensure_dir(dir)?;
        if fs::symlink_metadata(path).is_ok() {
            return Err(exists(path));
        }
        let lock = acquire_lock(path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => exists(path),
                _ => io_error(path, "creating", e),
            })?;
        let written = file
            .write_all_at(&image, 0)
            .map_err(|e| io_error(path, "writing the initial state", e))
            .and_then(|()| {
                file.sync_all()
                    .map_err(|e| io_error(path, "fsync of the new file", e))
            });
        if let Err(e) = written {
            // The file never held a complete state; leaving it would make the
            // next `create` refuse and `open` report corruption.
            let _ = fs::remove_file(path);
            return Err(e);
        }
        sync_dir(dir)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            _lock: lock,
            durable: Durable {
                slot: newest_slot,
                seq: newest_seq,
            },
        })
    }

    /// Write `state` into the file at `path`, creating it if missing.
    ///
    /// For `state import`: an existing file is moved forward with an ordinary
    /// crash-atomic persist, and is never moved to a lower height/round/step
    /// unless `allow_regression` is set ([`StateError::Regression`]). An equal
    /// position is not a regression. Returns the state the file held before,
    /// or `None` if it was created.
    ///
    /// A corrupt file is not repaired: move it aside and import again.
    pub fn import_into(
        path: impl AsRef<Path>,
        state: &SignState,
        allow_regression: bool,
    ) -> Result<Option<SignState>, StateError> {
        let path = path.as_ref();
        let mut store = match Self::open(path) {
            Ok(store) => store,
            Err(StateError::Missing { .. }) => {
                Self::create(path, state)?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let (_, current) = read_newest(&store.file, path)?;
        if state.position < current.position && !allow_regression {
            return Err(StateError::Regression {
                path: path.display().to_string(),
                current: current.position,
                requested: state.position,
            });
        }
        store.persist(state)?;
        Ok(Some(current))
    }

    /// Read the state at `path` without locking or writing, for `state show`
    /// while a signer runs. A write in flight at that moment reads as a torn
    /// slot, and the other slot is used, as on load.
    pub fn peek(path: impl AsRef<Path>) -> Result<SignState, StateError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => missing(path),
            _ => io_error(path, "opening", e),
        })?;
        if !file
            .metadata()
            .map_err(|e| io_error(path, "reading metadata", e))?
            .is_file()
        {
            return Err(corrupt(path, "it is not a regular file"));
        }
        read_newest(&file, path).map(|(_, state)| state)
    }

    /// Path of the state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw bytes of both slots, read from the file now, for an enclave
    /// that verifies records itself. A slot that cannot be read is `None`.
    pub fn raw_slots(&self) -> [Option<[u8; SLOT_LEN]>; 2] {
        [Slot::Zero, Slot::One].map(|slot| {
            let mut buf = [0u8; SLOT_LEN];
            self.file.read_exact_at(&mut buf, slot.offset()).ok()?;
            Some(buf)
        })
    }

    /// Durably write a record encoded (and authenticated) by an enclave,
    /// with the sequence number it chose, into the slot that does not hold
    /// the newest durable record. The record must decode and its sequence
    /// number must be above the newest one in the file, so the alternating
    /// slot discipline and crash atomicity are the same as for
    /// [`StateStore::persist`]. Returns the record's sequence number.
    pub fn write_record(&mut self, record: &[u8; SLOT_LEN]) -> Result<u64, StateError> {
        let (seq, _) = decode_slot(record)?;
        if seq <= self.durable.seq {
            return Err(corrupt(
                &self.path,
                &format!(
                    "refusing a record with sequence {seq}: the file already holds sequence {}",
                    self.durable.seq
                ),
            ));
        }
        let target = self.durable.slot.other();
        self.file
            .write_all_at(record, target.offset())
            .map_err(|e| io_error(&self.path, "writing the state record", e))?;
        self.file
            .sync_data()
            .map_err(|e| io_error(&self.path, "fdatasync", e))?;
        self.durable = Durable { slot: target, seq };
        Ok(seq)
    }
}

impl StateStore for FileStore {
    /// The newest valid record. A file store always holds a state, so this
    /// never returns `Ok(None)`.
    ///
    /// Reading does not change where the next write goes: after a failed
    /// persist the other slot may hold a record that reads back fine from the
    /// page cache but was never confirmed durable, and it must not be treated
    /// as the slot to preserve.
    fn load(&mut self) -> Result<Option<SignState>, StateError> {
        read_newest(&self.file, &self.path).map(|(_, state)| Some(state))
    }

    fn persist(&mut self, state: &SignState) -> Result<(), StateError> {
        self.persist_while(state, &mut || {})
    }

    /// `meanwhile` runs between the record's `pwrite` and its `fdatasync`.
    fn persist_while(
        &mut self,
        state: &SignState,
        meanwhile: &mut dyn FnMut(),
    ) -> Result<(), StateError> {
        let seq = self
            .durable
            .seq
            .checked_add(1)
            .ok_or_else(|| corrupt(&self.path, "sequence number exhausted"))?;
        let target = self.durable.slot.other();
        let record = encode_slot(seq, state)?;
        self.file
            .write_all_at(&record, target.offset())
            .map_err(|e| io_error(&self.path, "writing the state record", e))?;
        start_writeback(&self.file, target.offset(), record.len());
        meanwhile();
        self.file
            .sync_data()
            .map_err(|e| io_error(&self.path, "fdatasync", e))?;
        // Only now is the new record the one to preserve.
        self.durable = Durable { slot: target, seq };
        Ok(())
    }
}

/// Hand the record to the disk now, so that what the caller does before
/// the `fdatasync` (signing) overlaps the device write instead of preceding
/// it. Advisory only: durability comes from the `fdatasync` that follows,
/// so a failure here changes nothing and is ignored. Neither `rustix` nor
/// `nix` wraps `sync_file_range`, hence the one direct libc call.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_writeback(file: &File, offset: u64, len: usize) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain syscall on a descriptor this store owns; no memory is
    // passed to the kernel.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: usize) {}

/// What one slot read back as.
enum SlotContent {
    Valid(u64, SignState),
    Invalid(RecordError),
    Unreadable(io::Error),
}

impl SlotContent {
    fn describe(&self) -> String {
        match self {
            SlotContent::Valid(seq, _) => format!("valid, sequence {seq}"),
            SlotContent::Invalid(e) => e.to_string(),
            SlotContent::Unreadable(e) => format!("read failed: {e}"),
        }
    }
}

fn read_slot(file: &File, slot: Slot) -> SlotContent {
    let mut buf = [0u8; SLOT_LEN];
    match file.read_exact_at(&mut buf, slot.offset()) {
        Ok(()) => match decode_slot(&buf) {
            Ok((seq, state)) => SlotContent::Valid(seq, state),
            Err(e) => SlotContent::Invalid(e),
        },
        Err(e) => SlotContent::Unreadable(e),
    }
}

/// Read both slots and pick the valid one with the highest sequence number.
fn read_newest(file: &File, path: &Path) -> Result<(Durable, SignState), StateError> {
    let len = file
        .metadata()
        .map_err(|e| io_error(path, "reading metadata", e))?
        .len();
    if len != FILE_LEN {
        return Err(corrupt(
            path,
            &format!(
                "it is {len} bytes long, a state file is exactly {FILE_LEN} bytes; \
                 it was truncated or not written by this program"
            ),
        ));
    }
    let zero = read_slot(file, Slot::Zero);
    let one = read_slot(file, Slot::One);
    match (zero, one) {
        (SlotContent::Valid(seq0, state0), SlotContent::Valid(seq1, state1)) => {
            if seq0 == seq1 && state0 != state1 {
                return Err(corrupt(
                    path,
                    &format!("both slots carry sequence number {seq0} but different states"),
                ));
            }
            if seq0.abs_diff(seq1) > 1 {
                tracing::warn!(
                    path = %path.display(),
                    seq0,
                    seq1,
                    "state file slots are not consecutive; was the file edited or copied together from two files?"
                );
            }
            Ok(if seq1 > seq0 {
                (
                    Durable {
                        slot: Slot::One,
                        seq: seq1,
                    },
                    state1,
                )
            } else {
                (
                    Durable {
                        slot: Slot::Zero,
                        seq: seq0,
                    },
                    state0,
                )
            })
        }
        (SlotContent::Valid(seq, state), bad) => Ok(one_valid(path, Slot::Zero, seq, state, &bad)),
        (bad, SlotContent::Valid(seq, state)) => Ok(one_valid(path, Slot::One, seq, state, &bad)),
        (zero, one) => {
            let reason = format!(
                "neither slot holds a valid record (slot 0: {}; slot 1: {}). \
                 Refusing to start from an unknown state: restore the file from a backup, \
                 or move it aside and `state import` a known state",
                zero.describe(),
                one.describe()
            );
            match (zero, one) {
                (SlotContent::Unreadable(e), SlotContent::Unreadable(_)) => {
                    Err(io_error(path, "reading both slots", e))
                }
                _ => Err(corrupt(path, &reason)),
            }
        }
    }
}

fn one_valid(
    path: &Path,
    slot: Slot,
    seq: u64,
    state: SignState,
    bad: &SlotContent,
) -> (Durable, SignState) {
    tracing::warn!(
        path = %path.display(),
        bad_slot = slot.other().index(),
        problem = %bad.describe(),
        "one state slot is invalid (an interrupted write leaves this); using the other one"
    );
    (Durable { slot, seq }, state)
}

/// Take the exclusive lock on `<path>.lock` without waiting, and write our
/// pid into it for operators. The lock file is never deleted: unlinking a
/// lock file that another process has just opened would let two processes
/// each hold "the" lock on different inodes.
fn acquire_lock(path: &Path) -> Result<File, StateError> {
    let lock_path = lock_path(path);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| io_error(&lock_path, "opening the lock file", e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(StateError::Locked {
                path: path.display().to_string(),
                lock: lock_path.display().to_string(),
            })
        }
        Err(TryLockError::Error(e)) => {
            return Err(io_error(&lock_path, "locking the lock file", e))
        }
    }
    let pid = format!("{}\n", std::process::id());
    if let Err(e) = lock
        .set_len(0)
        .and_then(|()| lock.write_all_at(pid.as_bytes(), 0))
    {
        // The pid is only a hint for operators; the lock itself is held.
        tracing::warn!(lock = %lock_path.display(), error = %e, "could not write pid into lock file");
    }
    Ok(lock)
}

/// Create `dir` and any missing ancestors with mode 0700, making each new
/// directory entry durable.
fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(io_error(
                dir,
                "creating the state directory",
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(dir, "reading metadata", e)),
    }
    let parent = parent_dir(dir);
    if parent != dir {
        ensure_dir(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => sync_dir(parent),
        // Someone else created it meanwhile; fine.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io_error(dir, "creating the state directory", e)),
    }
}

/// fsync a directory so entries created in it survive power loss.
fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "fsync of the directory", e))
}

fn io_error(path: &Path, what: &str, e: io::Error) -> StateError {
    StateError::Io {
        path: path.display().to_string(),
        error: io::Error::new(e.kind(), format!("{what}: {e}")),
    }
}

fn corrupt(path: &Path, reason: &str) -> StateError {
    StateError::Corrupt {
        path: path.display().to_string(),
        reason: reason.to_owned(),
    }
}

fn missing(path: &Path) -> StateError {
    StateError::Missing {
        path: path.display().to_string(),
    }
}

fn exists(path: &Path) -> StateError {
    StateError::Exists {
        path: path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::state::record::MAX_SIGN_BYTES;
    use crate::types::{Height, Position, Round, Signature, Step};

    fn state(height: i64, round: i64, step: Step) -> SignState {
        SignState {
            position: Position {
                height: Height::try_from(height).unwrap(),
                round: Round::try_from(round).unwrap(),
                step,
            },
            sign_bytes: format!("sign bytes {height}/{round}/{step:?}").into_bytes(),
            signature: Some(Signature([height as u8; 64])),
        }
    }

    /// Asserts that `$result` is this state error, showing what it was if not.
    macro_rules! assert_state_error {
        ($result:expr, $error:pat) => {{
            let result = $result;
            assert!(
                matches!(result, Err($error)),
                "{:?}",
                result.as_ref().map(|_| ())
            );
        }};
    }

    fn temp() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("priv_validator_state.bin");
        (dir, path)
    }

    fn load(path: &Path) -> SignState {
        FileStore::open(path).unwrap().load().unwrap().unwrap()
    }

    fn raw_slot(path: &Path, index: usize) -> [u8; SLOT_LEN] {
        let mut buf = [0u8; SLOT_LEN];
        File::open(path)
            .unwrap()
            .read_exact_at(&mut buf, slot_offset(index).unwrap())
            .unwrap();
        buf
    }

    fn write_at(path: &Path, bytes: &[u8], offset: u64) {
        let f = OpenOptions::new().write(true).open(path).unwrap();
        f.write_all_at(bytes, offset).unwrap();
    }

    #[test]
    fn creates_and_loads_the_initial_state() {
        let (_dir, path) = temp();
        let initial = SignState::at_height(Height::try_from(1_000_000i64).unwrap());
        let mut store = FileStore::create(&path, &initial).unwrap();
        assert_eq!(store.load().unwrap(), Some(initial.clone()));
        assert_eq!(fs::metadata(&path).unwrap().len(), FILE_LEN);
        // Both slots hold the initial state, so losing either keeps it.
        assert_eq!(
            decode_slot(&raw_slot(&path, 0)).unwrap(),
            (1, initial.clone())
        );
        assert_eq!(decode_slot(&raw_slot(&path, 1)).unwrap(), (0, initial));
    }

    #[test]
    fn persists_survive_reopen_and_alternate_slots() {
        let (_dir, path) = temp();
        let mut store = FileStore::create(&path, &SignState::default()).unwrap();
        let states = [
            state(1, 0, Step::Propose),
            state(1, 0, Step::Prevote),
            state(1, 0, Step::Precommit),
            state(2, 3, Step::Prevote),
        ];
        for (i, s) in states.iter().enumerate() {
            store.persist(s).unwrap();
            let seq = i as u64 + 2;
            // seq 2 goes to slot 1, seq 3 to slot 0, ...
            let slot = (i + 1) % 2;
            assert_eq!(
                decode_slot(&raw_slot(&path, slot)).unwrap(),
                (seq, s.clone())
            );
            assert_eq!(store.load().unwrap().as_ref(), Some(s));
        }
        drop(store);
        assert_eq!(load(&path), states[3]);

        // And a reopened store keeps alternating from where it was.
        let mut store = FileStore::open(&path).unwrap();
        let next = state(3, 0, Step::Propose);
        store.persist(&next).unwrap();
        drop(store);
        assert_eq!(load(&path), next);
        let seqs: Vec<u64> = (0..2)
            .map(|i| decode_slot(&raw_slot(&path, i)).unwrap().0)
            .collect();
        assert_eq!(seqs, [5, 6]);
    }

    #[test]
    fn second_open_is_locked_until_the_first_store_drops() {
        let (_dir, path) = temp();
        let first = FileStore::create(&path, &SignState::default()).unwrap();
        match FileStore::open(&path) {
            Err(StateError::Locked { path: p, lock }) => {
                assert_eq!(p, path.display().to_string());
                assert!(lock.ends_with(".bin.lock"), "{lock}");
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        let pid = fs::read_to_string(lock_path(&path)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        drop(first);
        FileStore::open(&path).unwrap();
    }

    #[test]
    fn peek_reads_without_taking_the_lock() {
        let (_dir, path, newest, _running) = reopened_after_two_states();
        assert_eq!(FileStore::peek(&path).unwrap(), newest);
        let (_dir2, other) = temp();
        assert_state_error!(FileStore::peek(&other), StateError::Missing { .. });
    }

    #[test]
    fn open_of_a_missing_file_is_missing_and_creates_nothing() {
        let (dir, path) = temp();
        assert_state_error!(FileStore::open(&path), StateError::Missing { .. });
        assert!(!lock_path(&path).exists());
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn create_refuses_to_overwrite() {
        let (_dir, path) = temp();
        drop(FileStore::create(&path, &state(5, 0, Step::Precommit)).unwrap());
        assert_state_error!(
            FileStore::create(&path, &SignState::default()),
            StateError::Exists { .. }
        );
        assert_eq!(load(&path), state(5, 0, Step::Precommit));
    }

    #[test]
    fn create_rejects_unencodable_state_without_creating_a_file() {
        let (_dir, path) = temp();
        let mut s = state(5, 0, Step::Precommit);
        s.sign_bytes = vec![0; MAX_SIGN_BYTES + 1];
        assert_state_error!(
            FileStore::create(&path, &s),
            StateError::Record(RecordError::SignBytesTooLong { .. })
        );
        assert!(!path.exists());
    }

    #[test]
    fn creates_private_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("b").join("state.bin");
        drop(FileStore::create(&path, &SignState::default()).unwrap());
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&lock_path(&path)), 0o600);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a").join("b")), 0o700);
    }

    /// Set up a file whose slot 1 holds `newest` (seq 2) and slot 0 the
    /// older `initial` (seq 1); the next persist targets slot 0.
    fn two_states(path: &Path) -> (SignState, SignState) {
        let initial = state(10, 0, Step::Prevote);
        let newest = state(10, 0, Step::Precommit);
        let mut store = FileStore::create(path, &initial).unwrap();
        store.persist(&newest).unwrap();
        (initial, newest)
    }

    /// A new file holding [`two_states`], opened again: its directory
    /// guard, its path, the newest state and the store.
    fn reopened_after_two_states() -> (tempfile::TempDir, PathBuf, SignState, FileStore) {
        let (dir, path) = temp();
        let (_, newest) = two_states(&path);
        let store = FileStore::open(&path).unwrap();
        (dir, path, newest, store)
    }

    #[test]
    fn torn_write_at_any_offset_loads_the_previous_state() {
        let (_dir, path) = temp();
        let (_, newest) = two_states(&path);
        let next = state(11, 0, Step::Propose);
        let old_slot = raw_slot(&path, 0);
        let new_record = encode_slot(3, &next).unwrap();
        let offset = slot_offset(0).unwrap();

        for cut in 0..=SLOT_LEN {
            // Either the first `cut` bytes of the new record reached the disk,
            // or only the bytes after `cut` did (sectors landing out of order).
            let mut prefix = old_slot;
            prefix[..cut].copy_from_slice(&new_record[..cut]);
            let mut suffix = old_slot;
            suffix[cut..].copy_from_slice(&new_record[cut..]);
            for (what, torn) in [("prefix", prefix), ("suffix", suffix)] {
                write_at(&path, &torn, offset);
                // Only a write that left the whole new record is the new state.
                let expected = if torn == new_record { &next } else { &newest };
                assert_eq!(&load(&path), expected, "{what} cut at byte {cut}");
            }
        }

        // After a torn write the store goes on from the surviving slot.
        write_at(&path, &new_record[..100], offset);
        let mut store = FileStore::open(&path).unwrap();
        assert_eq!(store.load().unwrap(), Some(newest));
        store.persist(&next).unwrap();
        drop(store);
        assert_eq!(load(&path), next);
    }

    #[test]
    fn flipped_bit_in_either_slot_falls_back_to_the_other() {
        let (_dir, path) = temp();
        let (initial, newest) = two_states(&path);
        for (index, survivor) in [(1, &initial), (0, &newest)] {
            let original = raw_slot(&path, index);
            for byte in [0, 9, 16, 40, 200, 479, 480, 511] {
                let mut bad = original;
                bad[byte] ^= 0x10;
                write_at(&path, &bad, slot_offset(index).unwrap());
                assert_eq!(&load(&path), survivor, "slot {index} byte {byte}");
            }
            write_at(&path, &original, slot_offset(index).unwrap());
        }
        assert_eq!(load(&path), newest);
    }

    #[test]
    fn both_slots_corrupt_is_an_error_not_a_reset() {
        let (_dir, path) = temp();
        two_states(&path);
        write_at(&path, b"x", 20);
        write_at(&path, b"y", SLOT_STRIDE + 20);
        match FileStore::open(&path) {
            Err(StateError::Corrupt { reason, .. }) => {
                assert!(reason.contains("neither slot"), "{reason}");
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn equal_sequence_numbers_with_different_states_are_corrupt() {
        let (_dir, path) = temp();
        two_states(&path);
        let forged = encode_slot(2, &state(99, 0, Step::Propose)).unwrap();
        write_at(&path, &forged, 0);
        assert_state_error!(FileStore::open(&path), StateError::Corrupt { .. });
    }

    #[test]
    fn wrong_file_length_is_corrupt() {
        let (_dir, path) = temp();
        two_states(&path);
        for len in [
            0,
            SLOT_LEN as u64,
            2 * SLOT_LEN as u64,
            FILE_LEN - 1,
            FILE_LEN + 1,
        ] {
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(len)
                .unwrap();
            match FileStore::open(&path) {
                Err(StateError::Corrupt { reason, .. }) => {
                    assert!(reason.contains(&format!("{len} bytes long")), "{reason}")
                }
                other => panic!("length {len}: expected Corrupt, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_directory_is_not_a_state_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_state_error!(FileStore::open(dir.path()), StateError::Corrupt { .. });
    }

    #[test]
    fn failed_write_is_reported_and_the_next_persist_is_still_correct() {
        let (_dir, path, newest, mut store) = reopened_after_two_states();
        let good_handle = std::mem::replace(&mut store.file, File::open(&path).unwrap());

        let lost = state(11, 0, Step::Propose);
        match store.persist(&lost) {
            Err(e @ StateError::Io { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&path.display().to_string()), "{text}");
                assert!(text.contains("writing the state record"), "{text}");
            }
            other => panic!("expected Io, got {other:?}"),
        }
        assert_eq!(store.load().unwrap(), Some(newest.clone()));

        store.file = good_handle;
        let next = state(11, 0, Step::Prevote);
        store.persist(&next).unwrap();
        assert_eq!(store.load().unwrap(), Some(next.clone()));
        drop(store);
        assert_eq!(load(&path), next);
        // The slot that held `newest` was not the one overwritten.
        assert_eq!(decode_slot(&raw_slot(&path, 1)).unwrap(), (2, newest));
    }

    #[test]
    fn unconfirmed_write_never_displaces_the_durable_slot() {
        // A write that reached the page cache but whose fdatasync failed may
        // read back fine. The store must keep treating the older slot as the
        // one to preserve.
        let (_dir, path, newest, mut store) = reopened_after_two_states();
        let unconfirmed = state(11, 0, Step::Propose);
        write_at(&path, &encode_slot(3, &unconfirmed).unwrap(), 0);
        assert_eq!(store.load().unwrap(), Some(unconfirmed));

        let next = state(11, 0, Step::Prevote);
        store.persist(&next).unwrap();
        assert_eq!(decode_slot(&raw_slot(&path, 0)).unwrap(), (3, next.clone()));
        assert_eq!(decode_slot(&raw_slot(&path, 1)).unwrap(), (2, newest));
    }

    #[test]
    fn unencodable_state_fails_persist_and_changes_nothing() {
        let (_dir, _path, newest, mut store) = reopened_after_two_states();
        let mut too_long = state(12, 0, Step::Propose);
        too_long.sign_bytes = vec![1; MAX_SIGN_BYTES + 1];
        assert_state_error!(store.persist(&too_long), StateError::Record(_));
        assert_eq!(store.load().unwrap(), Some(newest));
    }

    #[test]
    fn import_creates_moves_forward_and_refuses_regression() {
        let (_dir, path) = temp();
        let high = state(100, 0, Step::Precommit);
        assert_eq!(FileStore::import_into(&path, &high, false).unwrap(), None);
        assert_eq!(load(&path), high);

        let low = state(50, 0, Step::Precommit);
        match FileStore::import_into(&path, &low, false) {
            Err(StateError::Regression {
                current, requested, ..
            }) => {
                assert_eq!(current, high.position);
                assert_eq!(requested, low.position);
            }
            other => panic!("expected Regression, got {other:?}"),
        }
        assert_eq!(load(&path), high);

        let same_position = SignState {
            sign_bytes: b"other".to_vec(),
            ..high.clone()
        };
        assert_eq!(
            FileStore::import_into(&path, &same_position, false).unwrap(),
            Some(high.clone())
        );
        let higher = state(101, 0, Step::Propose);
        FileStore::import_into(&path, &higher, false).unwrap();
        assert_eq!(load(&path), higher);

        assert_eq!(
            FileStore::import_into(&path, &low, true).unwrap(),
            Some(higher)
        );
        assert_eq!(load(&path), low);
    }

    #[test]
    fn import_into_a_locked_file_is_refused() {
        let (_dir, path) = temp();
        let _running = FileStore::create(&path, &SignState::default()).unwrap();
        assert_state_error!(
            FileStore::import_into(&path, &state(1, 0, Step::Propose), false),
            StateError::Locked { .. }
        );
    }

    /// Prints persist latency (pwrite + fdatasync). Not a pass/fail check:
    /// `TMKMS_STATE_BENCH_DIR=/some/disk cargo test -p tmkms-light --lib \
    /// state::file::tests::persist_latency -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn persist_latency() {
        let base = std::env::var_os("TMKMS_STATE_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::tempdir_in(base).unwrap();
        let path = dir.path().join("state.bin");
        let mut store = FileStore::create(&path, &SignState::default()).unwrap();
        let mut samples = Vec::new();
        for i in 1..=2000i64 {
            let s = state(i, 0, Step::Precommit);
            let start = std::time::Instant::now();
            store.persist(&s).unwrap();
            samples.push(start.elapsed());
        }
        samples.sort();
        let pct = |p: usize| samples[(samples.len() - 1) * p / 100];
        println!(
            "persist latency on {}: p50 {:?}, p90 {:?}, p99 {:?}, max {:?} ({} samples)",
            dir.path().display(),
            pct(50),
            pct(90),
            pct(99),
            samples[samples.len() - 1],
            samples.len()
        );
    }
}
