//! Appending a journal's batches to log files on local disk (the file layout; names and
//! rules in [`crate::logfile`]), and sealing a journal's newest log file when taking it
//! over. Blocking I/O: the writer task calls it through `spawn_blocking`.
//!
//! A batch costs one `pwrite` into space that was zero-filled ahead of time and one
//! `fdatasync`, then a `stat` of the file's seal name. A full file is rotated: the next
//! file, prepared (created, zero-filled a paced chunk at a time, fsynced) by a background
//! thread while the current one fills, receives the batch, is made durable, and is
//! hard-linked under its name, which fails if the name exists (an epoch claim of a newer
//! writer, or a file of one); then one directory fsync.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::JournalError;
use crate::format::{decode_header, decode_object, Header, HEADER_LEN};
use crate::logfile::{entry_name, parse_entry_name, scan_log, seal_name};
use crate::reader::{check_follows, JournalObject};

/// The default size of a log file (`--journal-file-bytes`).
pub const LOG_FILE_BYTES_DEFAULT: u64 = 16 << 20;
/// The smallest log file an appender makes (smaller requests are raised to it; `weft
/// serve` refuses them).
pub const LOG_FILE_BYTES_MIN: u64 = 4096;

/// How often a writer that found its file sealed looks for the claim that decides its
/// last frame.
const RESOLVE_POLL: Duration = Duration::from_millis(5);

struct Current {
    file: File,
    first: u64,
    offset: u64,
    size: u64,
}

struct Spare {
    file: File,
    path: PathBuf,
    size: u64,
}

/// The appender of one journal's log files. Starts with no current file: the first
/// append opens one (a claim is an object, so a writer always begins a new file).
pub struct LogAppender {
    dir: PathBuf,
    journal_id: u32,
    file_bytes: u64,
    resolve_timeout: Duration,
    current: Option<Current>,
    spare: Option<JoinHandle<io::Result<Spare>>>,
    spares_made: u64,
    /// Set once this writer learned a newer writer holds the journal: the epoch, if known.
    fenced: Option<u64>,
}

fn io_err(what: &str, path: &Path, e: io::Error) -> JournalError {
    JournalError::Store(format!("{what} {}: {e}", path.display()))
}

impl LogAppender {
    pub fn new(
        dir: PathBuf,
        journal_id: u32,
        file_bytes: u64,
        resolve_timeout: Duration,
    ) -> LogAppender {
        let mut a = LogAppender {
            dir,
            journal_id,
            file_bytes: file_bytes.max(LOG_FILE_BYTES_MIN),
            resolve_timeout,
            current: None,
            spare: None,
            spares_made: 0,
            fenced: None,
        };
        a.prepare_spare();
        a
    }

    /// A new name for a file being prepared (the process id lets a later claim remove
    /// what a crashed process left).
    fn next_spare_path(&mut self) -> PathBuf {
        self.spares_made += 1;
        self.dir.join(format!(
            ".spare-{}-{}-{}.tmp",
            std::process::id(),
            self.journal_id,
            self.spares_made
        ))
    }

    fn prepare_spare(&mut self) {
        let path = self.next_spare_path();
        let size = self.file_bytes;
        self.spare = Some(std::thread::spawn(move || make_spare(path, size, true)));
    }

    /// Makes `frame` (the object of `sequence`) durable in the journal's log. `Ok` once it
    /// counts (see [`crate::logfile`]); `Fenced` when a newer writer holds the journal and
    /// the frame does not count; `Unknown` when a newer writer sealed the file but did not
    /// claim within the resolve timeout; `Store` on an I/O error, after which the frame's
    /// fate is unknown and the writer must stop.
    pub fn append(&mut self, sequence: u64, frame: &[u8]) -> Result<(), JournalError> {
        if let Some(by_epoch) = self.fenced {
            return Err(JournalError::Fenced {
                journal: self.journal_id,
                sequence,
                by_epoch,
            });
        }
        let len = frame.len() as u64;
        match &self.current {
            Some(c) if c.offset + len <= c.size => {
                let path = self.dir.join(entry_name(c.first));
                c.file
                    .write_all_at(frame, c.offset)
                    .map_err(|e| io_err("writing", &path, e))?;
                c.file
                    .sync_data()
                    .map_err(|e| io_err("fdatasync of", &path, e))?;
                let first = c.first;
                if let Some(c) = self.current.as_mut() {
                    c.offset += len;
                }
                self.check(sequence, first, None)
            }
            _ => self.rotate(sequence, frame),
        }
    }

    fn rotate(&mut self, sequence: u64, frame: &[u8]) -> Result<(), JournalError> {
        let len = frame.len() as u64;
        let spare = match self.spare.take().map(|h| h.join()) {
            Some(Ok(Ok(s))) if s.size >= len => s,
            other => {
                if let Some(Ok(Ok(s))) = other {
                    let _ = std::fs::remove_file(&s.path);
                }
                let path = self.next_spare_path();
                make_spare(path.clone(), self.file_bytes.max(len), false)
                    .map_err(|e| io_err("preparing", &path, e))?
            }
        };
        spare
            .file
            .write_all_at(frame, 0)
            .map_err(|e| io_err("writing", &spare.path, e))?;
        spare
            .file
            .sync_data()
            .map_err(|e| io_err("fdatasync of", &spare.path, e))?;
        let name = self.dir.join(entry_name(sequence));
        let linked = std::fs::hard_link(&spare.path, &name);
        let _ = std::fs::remove_file(&spare.path);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let by_epoch = first_epoch(&name).unwrap_or(0);
                self.fenced = Some(by_epoch);
                return Err(JournalError::Fenced {
                    journal: self.journal_id,
                    sequence,
                    by_epoch,
                });
            }
            Err(e) => return Err(io_err("linking", &name, e)),
        }
        sync_dir(&self.dir)?;
        let previous = self.current.take().map(|c| c.first);
        self.current = Some(Current {
            file: spare.file,
            first: sequence,
            offset: len,
            size: spare.size,
        });
        self.prepare_spare();
        self.check(sequence, sequence, previous)
    }

    /// After frame `sequence` became durable in the file starting at `first` (having just
    /// left the file starting at `previous`): does it count?
    ///
    /// A newer writer took the journal over if it sealed the file, or if retention has
    /// since deleted the file (retention deletes a log file only once a claim superseded
    /// it, and deletes its seal only after the file). Either way the claim decides: the
    /// claimer read every frame in the file before it claimed the next sequence, so a frame
    /// below the claim was read (it counts) and one at the claim was not.
    fn check(
        &mut self,
        sequence: u64,
        first: u64,
        previous: Option<u64>,
    ) -> Result<(), JournalError> {
        let sealed = |f: u64| self.dir.join(seal_name(f)).exists();
        // The seal first, then the file: a seal found missing was never made, or was
        // deleted after the file, which is then seen gone.
        let gone = |c: &Option<Current>| match c {
            Some(c) => link_count(&c.file).map(|n| n == 0).unwrap_or(true),
            None => false,
        };
        if sealed(first) || previous.is_some_and(sealed) || gone(&self.current) {
            return self.resolve(sequence, previous.unwrap_or(first));
        }
        Ok(())
    }

    /// The file starting at `sealed_first` (or the one after it) was sealed, or deleted, by
    /// a writer taking the journal over: its claim, the first object after `sealed_first`,
    /// decides.
    fn resolve(&mut self, sequence: u64, sealed_first: u64) -> Result<(), JournalError> {
        // Counted in polls rather than read from a clock: this runs on a blocking thread.
        let polls = (self.resolve_timeout.as_millis() / RESOLVE_POLL.as_millis()).max(1);
        for _ in 0..polls {
            if let Some((claim_seq, path)) = self.claim_after(sealed_first)? {
                let by_epoch = first_epoch(&path).unwrap_or(0);
                self.fenced = Some(by_epoch);
                tracing::warn!(
                    journal = self.journal_id,
                    sequence,
                    claim = claim_seq,
                    by_epoch,
                    "journal: a newer writer claimed this journal"
                );
                return if claim_seq > sequence {
                    Ok(())
                } else {
                    Err(JournalError::Fenced {
                        journal: self.journal_id,
                        sequence,
                        by_epoch,
                    })
                };
            }
            std::thread::sleep(RESOLVE_POLL);
        }
        self.fenced = Some(0);
        Err(JournalError::Unknown {
            journal: self.journal_id,
            sequence,
        })
    }
}

impl LogAppender {
    /// The first epoch claim after sequence `first`, if one exists.
    fn claim_after(&self, first: u64) -> Result<Option<(u64, PathBuf)>, JournalError> {
        Ok(list_dir(&self.dir)
            .map_err(|e| io_err("listing", &self.dir, e))?
            .into_iter()
            .filter(|(seq, _)| *seq > first)
            .find(|(_, path)| first_header(path).is_some_and(|h| h.is_epoch_claim())))
    }
}

impl Drop for LogAppender {
    fn drop(&mut self) {
        if let Some(Ok(Ok(s))) = self.spare.take().map(|h| h.join()) {
            let _ = std::fs::remove_file(&s.path);
        }
    }
}

/// The file's link count (0 once a newer writer deleted it), asked for alone.
/// `File::metadata` asks for its times as well, and on a file system with multigrain
/// timestamps (Linux 6.13 and later) a query of them makes the next write stamp
/// fine-grained times into the inode, which the next `fdatasync` must then write back too:
/// measured on this project's ext4, a 1 KiB append and `fdatasync` took 130 µs, and 185 µs
/// with a full `fstat` after each (docs/benchmarks.md).
fn link_count(file: &File) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: statx of an open descriptor (an empty path with AT_EMPTY_PATH) into a buffer
    // of statx's own type; read only after the call reported success.
    let r = unsafe {
        libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_NLINK,
            stx.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statx succeeded and filled the buffer.
    Ok(unsafe { stx.assume_init() }.stx_nlink)
}

/// How a spare prepared in the background writes its zeros: in chunks of this many bytes,
/// each made durable before the next, with [`SPARE_PAUSE`] between them. Written at once,
/// a 16 MiB spare's writeback stalled the journal's own `fdatasync` behind it for 10-25 ms
/// (docs/benchmarks.md, "What the commit phases say"); paced, an append waits behind at most
/// one chunk. At these figures a spare takes about 0.3 s, while a file fills in seconds.
pub const SPARE_CHUNK_BYTES: usize = 256 << 10;
/// See [`SPARE_CHUNK_BYTES`].
pub const SPARE_PAUSE: Duration = Duration::from_millis(4);

/// Creates a zero-filled file of `size` bytes and makes it durable, so that writing into
/// it later changes no file metadata and costs one `fdatasync`. `paced`: in the
/// background, a chunk at a time (see [`SPARE_CHUNK_BYTES`]); otherwise at once (an
/// append is waiting for it).
fn make_spare(path: PathBuf, size: u64, paced: bool) -> io::Result<Spare> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let chunk = vec![0u8; if paced { SPARE_CHUNK_BYTES } else { 1 << 20 }];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
        if paced {
            file.sync_data()?;
            if left > 0 {
                std::thread::sleep(SPARE_PAUSE);
            }
        }
    }
    file.sync_all()?;
    Ok(Spare { file, path, size })
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("fsync of directory", dir, e))
}

/// The first header of the entry at `path`.
fn first_header(path: &Path) -> Option<Header> {
    let mut head = vec![0u8; HEADER_LEN];
    File::open(path).ok()?.read_exact_at(&mut head, 0).ok()?;
    decode_header("", &head).ok()
}

/// The epoch in the first header of the entry at `path`.
fn first_epoch(path: &Path) -> Option<u64> {
    first_header(path).map(|h| h.epoch)
}

/// The entries of a journal's directory, in sequence order.
fn list_dir(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if let Some(seq) = e.file_name().to_str().and_then(parse_entry_name) {
            out.push((seq, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes spare files left by processes that no longer run (a crash while preparing).
fn remove_stale_spares(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix(".spare-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The first step of taking over a journal on local disk: seals its newest log file (so
/// that its writer acknowledges nothing it does not also find here), makes the file
/// durable, and returns every object past `after` (what recovery already read) with the
/// newest header. Nothing to do, and `after` back, when the journal has no log files.
pub fn seal_and_read(
    dir: &Path,
    journal_id: u32,
    after: Option<Header>,
) -> Result<(Vec<JournalObject>, Option<Header>), JournalError> {
    if !dir.exists() {
        return Ok((Vec::new(), after));
    }
    remove_stale_spares(dir);
    let listing = |dir: &Path| list_dir(dir).map_err(|e| io_err("listing", dir, e));
    let mut entries = listing(dir)?;
    // Seal the newest entry, until no newer one appears meanwhile (its writer starting a
    // new file before it saw the seal). Sealing a one-object entry is harmless.
    while let Some((first, _)) = entries.last().cloned() {
        let seal = dir.join(seal_name(first));
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&seal)
            .map_err(|e| io_err("sealing", &seal, e))?;
        let again = listing(dir)?;
        let same = again.last().map(|e| e.0) == Some(first);
        entries = again;
        if same {
            break;
        }
    }
    // Read every entry that may hold an object past `after`.
    let from = match &after {
        None => 0,
        Some(h) => entries
            .iter()
            .rposition(|e| e.0 <= h.sequence + 1)
            .unwrap_or(0),
    };
    let mut appeared = Vec::new();
    let mut last = after;
    for i in from..entries.len() {
        let (first, path) = &entries[i];
        let end_before = entries.get(i + 1).map(|e| e.0);
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|e| io_err("opening", path, e))?;
        file.sync_data()
            .map_err(|e| io_err("fdatasync of", path, e))?;
        let mut data = Vec::new();
        (&file)
            .read_to_end(&mut data)
            .map_err(|e| io_err("reading", path, e))?;
        let frames = scan_log(&shown, journal_id, *first, &data, end_before)?.frames;
        if frames.is_empty() {
            // Entries are created with their first frame in place: this is damage.
            decode_object(&shown, &data)?;
        }
        for f in frames {
            if last
                .as_ref()
                .is_some_and(|l| f.header.sequence <= l.sequence)
            {
                continue;
            }
            let p = format!("{shown}@{}", f.offset);
            check_follows(&p, &f.header, last.as_ref())?;
            last = Some(f.header.clone());
            appeared.push(JournalObject {
                path: p,
                bytes: f.len as u64,
                header: f.header,
                records: f.records,
            });
        }
    }
    Ok((appeared, last))
}
