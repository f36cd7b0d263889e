//! pgwire's decoder panics on some message bodies that do not match their type (a Bind
//! whose parameter length runs past the message, a Parse cut short). The connection loop
//! catches those panics and answers FATAL 08P01 (`wire::server`); this module keeps them
//! from printing as crashes. While a connection decodes a message, a thread-local flag is
//! set; the process's panic hook stays quiet for a panic raised under it (the 08P01 is
//! logged by the caller) and prints every other panic as before.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    static DECODING: Cell<bool> = const { Cell::new(false) };
}

/// Resets the flag when the poll ends, by return or by unwind.
struct Reset(bool);

impl Drop for Reset {
    fn drop(&mut self) {
        DECODING.with(|d| d.set(self.0));
    }
}

/// A future polled with the flag set: a panic inside it is a caught decoder panic.
pub struct Decoding<F>(pub F);

impl<F: Future + Unpin> Future for Decoding<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _reset = Reset(DECODING.with(|d| d.replace(true)));
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Runs a decoding step of pgwire's that may panic on a malformed body: `None` if it did.
pub fn decode<T>(f: impl FnOnce() -> T) -> Option<T> {
    let _reset = Reset(DECODING.with(|d| d.replace(true)));
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

/// Installs the quiet hook in front of the process's own (once).
pub fn install_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DECODING.with(|d| d.get()) {
                tracing::debug!(panic = %info, "a message the decoder could not read (answered 08P01)");
                return;
            }
            previous(info)
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn the_flag_is_set_only_while_decoding_and_reset_by_unwind() {
        install_hook();
        let r = futures::executor::block_on(
            std::panic::AssertUnwindSafe(Decoding(std::future::poll_fn(|_| -> Poll<()> {
                assert!(DECODING.with(|d| d.get()));
                panic!("a decoder panic")
            })))
            .catch_unwind(),
        );
        assert!(r.is_err());
        assert!(!DECODING.with(|d| d.get()));
    }
}
