//! How the catch-up reader reads journal objects that are local files: through io_uring
//! where the kernel offers it, or ordinary reads otherwise, chosen at runtime.
//!
//! The io_uring engine opens the files, then submits one read per file (up to the ring's
//! depth at a time) and collects completions, resubmitting the remainder of any short read:
//! many objects are read with a handful of system calls.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;

pub trait ReadEngine: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Reads each file whole, in the order given.
    fn read_files(&self, paths: &[PathBuf]) -> io::Result<Vec<Vec<u8>>>;
}

/// Ordinary `read(2)` calls, one file after another.
#[derive(Debug, Default)]
pub struct StdReads;

impl ReadEngine for StdReads {
    fn name(&self) -> &'static str {
        "read"
    }

    fn read_files(&self, paths: &[PathBuf]) -> io::Result<Vec<Vec<u8>>> {
        paths
            .iter()
            .map(|p| {
                let mut f = File::open(p)?;
                let mut buf = Vec::with_capacity(f.metadata()?.len() as usize);
                f.read_to_end(&mut buf)?;
                Ok(buf)
            })
            .collect()
    }
}

/// Reads through an io_uring submission queue.
#[derive(Debug)]
pub struct UringReads {
    depth: u32,
}

impl UringReads {
    /// `None` when the kernel (or a sandbox's seccomp filter) refuses io_uring.
    pub fn probe(depth: u32) -> Option<UringReads> {
        io_uring::IoUring::new(depth).ok()?;
        Some(UringReads { depth })
    }
}

impl ReadEngine for UringReads {
    fn name(&self) -> &'static str {
        "io_uring"
    }

    fn read_files(&self, paths: &[PathBuf]) -> io::Result<Vec<Vec<u8>>> {
        use io_uring::{opcode, types, IoUring};
        let mut ring = IoUring::new(self.depth)?;
        let files: Vec<File> = paths.iter().map(File::open).collect::<io::Result<_>>()?;
        let mut bufs: Vec<Vec<u8>> = files
            .iter()
            .map(|f| Ok(vec![0u8; f.metadata()?.len() as usize]))
            .collect::<io::Result<_>>()?;
        // Bytes read so far per file; files still to submit; reads in flight.
        let mut done = vec![0usize; files.len()];
        let mut todo: Vec<usize> = (0..files.len()).rev().collect();
        let mut inflight = 0u32;
        loop {
            while inflight < self.depth {
                let Some(i) = todo.pop() else { break };
                if done[i] == bufs[i].len() {
                    continue;
                }
                let rest = &mut bufs[i][done[i]..];
                let sqe = opcode::Read::new(
                    types::Fd(files[i].as_raw_fd()),
                    rest.as_mut_ptr(),
                    rest.len().min(u32::MAX as usize) as u32,
                )
                .offset(done[i] as u64)
                .build()
                .user_data(i as u64);
                // SAFETY: the buffer and the file outlive the read: both are kept until
                // its completion is reaped below, and neither is touched meanwhile.
                unsafe {
                    ring.submission()
                        .push(&sqe)
                        .map_err(|_| io::Error::other("io_uring submission queue full"))?;
                }
                inflight += 1;
            }
            if inflight == 0 {
                break;
            }
            ring.submit_and_wait(1)?;
            let completed: Vec<(usize, i32)> = ring
                .completion()
                .map(|c| (c.user_data() as usize, c.result()))
                .collect();
            for (i, res) in completed {
                inflight -= 1;
                if res < 0 {
                    return Err(io::Error::from_raw_os_error(-res));
                }
                if res == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} shrank while being read", paths[i].display()),
                    ));
                }
                done[i] += res as usize;
                if done[i] < bufs[i].len() {
                    todo.push(i); // a short read: read the rest
                }
            }
        }
        Ok(bufs)
    }
}

/// io_uring if it works here, ordinary reads otherwise; `WEFT_IO=read` forces the latter.
pub fn choose() -> Arc<dyn ReadEngine> {
    if std::env::var("WEFT_IO").is_ok_and(|v| v == "read") {
        return Arc::new(StdReads);
    }
    match UringReads::probe(64) {
        Some(u) => Arc::new(u),
        None => Arc::new(StdReads),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_engines_read_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for i in 0..100usize {
            let p = dir.path().join(format!("{i}.bin"));
            let data: Vec<u8> = (0..(i * 997 + 1)).map(|b| (b * 31 + i) as u8).collect();
            std::fs::write(&p, &data).unwrap();
            paths.push(p);
        }
        let plain = StdReads.read_files(&paths).unwrap();
        match UringReads::probe(8) {
            Some(u) => assert_eq!(u.read_files(&paths).unwrap(), plain),
            None => eprintln!("io_uring is unavailable here: only the fallback was checked"),
        }
        assert!(StdReads.read_files(&[dir.path().join("missing")]).is_err());
    }
}
