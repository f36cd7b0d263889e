//! Message sizes bounded as the bytes arrive, before any message is buffered whole.
//!
//! pgwire's decoder waits until a message's declared length has arrived (up to 1 GiB for
//! a Query) before it looks at it. [`FrameGuard`] sits between the connection and the
//! decoder, follows the message boundaries in the bytes it passes on, and fails the read
//! as soon as a header declares more than the connection may send:
//! - the startup packet: [`STARTUP_BYTES_MAX`] (PostgreSQL's 10000);
//! - any message before authentication has completed: [`AUTH_MESSAGE_BYTES_MAX`] (a
//!   password or SASL message; PostgreSQL's bound on an authentication token), so that a
//!   client that has not proved who it is cannot make the server hold more;
//! - any message after it: the node's `--message-bytes-max`
//!   ([`crate::catalog::db::MESSAGE_BYTES_MAX_DEFAULT`]).
//!
//! The connection loop answers the failed read with FATAL 08P01 and closes the connection,
//! as PostgreSQL does for an invalid message length. [`Frames`] is the pure core: it knows
//! nothing of sockets.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest startup packet (PostgreSQL's `MAX_STARTUP_PACKET_LENGTH`).
pub const STARTUP_BYTES_MAX: usize = 10_000;
/// The largest message before authentication completes (PostgreSQL's
/// `PG_MAX_AUTH_TOKEN_LENGTH`, with the length word).
pub const AUTH_MESSAGE_BYTES_MAX: usize = 65_535 + 4;

/// Where the byte stream stands between message boundaries.
#[derive(Debug, Clone)]
pub struct Frames {
    /// The next message is the startup packet (no type byte).
    startup: bool,
    header: [u8; 5],
    /// Header bytes seen of the current message.
    have: usize,
    /// Body bytes of the current message still to pass.
    body_left: usize,
}

impl Default for Frames {
    fn default() -> Self {
        Frames {
            startup: true,
            header: [0; 5],
            have: 0,
            body_left: 0,
        }
    }
}

impl Frames {
    /// Follows `bytes` (the next bytes the client sent); an error names the first header
    /// that declares more than its bound. `authenticated`: whether authentication has
    /// completed; `message_max`: the bound after it.
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        authenticated: bool,
        message_max: usize,
    ) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let header_len = if self.startup { 4 } else { 5 };
            let n = (header_len - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < header_len {
                continue;
            }
            let at = header_len - 4;
            let len = u32::from_be_bytes(
                self.header[at..at + 4]
                    .try_into()
                    .expect("four bytes of header"),
            ) as usize;
            let (max, what) = if self.startup {
                (STARTUP_BYTES_MAX, "a startup packet")
            } else if !authenticated {
                (AUTH_MESSAGE_BYTES_MAX, "a message before authentication")
            } else {
                (message_max, "a message (--message-bytes-max)")
            };
            if len < 4 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("invalid message length {len}"),
                ));
            }
            if len > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "invalid message length: {len} bytes, more than the {max} {what} may have"
                    ),
                ));
            }
            self.body_left = len - 4;
            self.have = 0;
            self.startup = false;
        }
        Ok(())
    }
}

/// A connection whose reads fail as soon as a message header declares too many bytes.
pub struct FrameGuard<S> {
    inner: S,
    frames: Frames,
    authenticated: Arc<AtomicBool>,
    message_max: usize,
    /// What the bytes read before the guard was put in place declared too much: the
    /// first read fails with it (after the decoder has taken the messages before it).
    pending: Option<io::Error>,
}

impl<S> FrameGuard<S> {
    /// Guards `inner`, whose first `already` bytes were read before it was wrapped.
    /// `authenticated` is set by the connection loop once authentication has completed.
    pub fn new(
        inner: S,
        already: &[u8],
        authenticated: Arc<AtomicBool>,
        message_max: usize,
    ) -> FrameGuard<S> {
        let mut frames = Frames::default();
        let pending = frames
            .feed(already, authenticated.load(Ordering::Acquire), message_max)
            .err();
        FrameGuard {
            inner,
            frames,
            authenticated,
            message_max,
            pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.pending.take() {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let authenticated = this.authenticated.load(Ordering::Acquire);
                Poll::Ready(this.frames.feed(
                    &buf.filled()[before..],
                    authenticated,
                    this.message_max,
                ))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FrameGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup(len: u32) -> Vec<u8> {
        let mut v = len.to_be_bytes().to_vec();
        v.resize(len as usize, 0);
        v
    }

    fn message(ty: u8, len: u32) -> Vec<u8> {
        let mut v = vec![ty];
        v.extend_from_slice(&len.to_be_bytes());
        v
    }

    #[test]
    fn a_large_message_is_refused_at_its_header_before_authentication() {
        let mut f = Frames::default();
        f.feed(&startup(40), false, 1 << 20).unwrap();
        // A password message of 100 bytes passes.
        let mut p = message(b'p', 100);
        p.resize(101, 0);
        f.feed(&p, false, 1 << 20).unwrap();
        // A Query declaring 512 MiB is refused from its five header bytes, split anyhow.
        let q = message(b'Q', 512 << 20);
        f.feed(&q[..2], false, 1 << 30).unwrap();
        let e = f.feed(&q[2..], false, 1 << 30).unwrap_err();
        assert!(e.to_string().contains("before authentication"), "{e}");
    }

    #[test]
    fn after_authentication_the_configured_bound_holds() {
        let mut f = Frames::default();
        f.feed(&startup(8), false, 1000).unwrap();
        let mut q = message(b'Q', 1000);
        q.resize(1001, b'x');
        // Byte by byte, as a slow client sends it.
        for b in &q {
            f.feed(std::slice::from_ref(b), true, 1000).unwrap();
        }
        let e = f.feed(&message(b'Q', 1001), true, 1000).unwrap_err();
        assert!(e.to_string().contains("--message-bytes-max"), "{e}");
    }

    #[test]
    fn a_huge_startup_packet_and_a_short_length_are_refused() {
        assert!(Frames::default()
            .feed(&(1u32 << 30).to_be_bytes(), false, 1000)
            .is_err());
        let mut f = Frames::default();
        f.feed(&startup(8), false, 1000).unwrap();
        assert!(f.feed(&message(b'Q', 3), true, 1000).is_err());
    }
}
