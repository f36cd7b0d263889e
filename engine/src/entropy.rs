//! Randomness as a handle: every id, salt, nonce and key weft draws comes from an
//! [`Entropy`] given to the component at construction, so that a simulation seeds it and
//! one seed replays one run. The one place that reads the operating system's randomness
//! is [`Entropy::from_os`].

use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// A shared source of random bytes (cheap to clone: clones draw from the same stream).
#[derive(Clone)]
pub struct Entropy(Arc<Mutex<StdRng>>);

impl std::fmt::Debug for Entropy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Entropy")
    }
}

impl Entropy {
    /// Seeded from the operating system: what a server uses.
    pub fn from_os() -> Entropy {
        #[allow(clippy::disallowed_methods)] // the one place that reads the OS's randomness
        let rng = StdRng::from_rng(&mut rand::rng());
        Entropy(Arc::new(Mutex::new(rng)))
    }

    /// A deterministic stream: what a test or a simulation uses.
    pub fn seeded(seed: u64) -> Entropy {
        Entropy(Arc::new(Mutex::new(StdRng::seed_from_u64(seed))))
    }

    pub fn fill(&self, out: &mut [u8]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fill_bytes(out);
    }

    pub fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }

    pub fn u64(&self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_gives_one_stream() {
        let (a, b) = (Entropy::seeded(7), Entropy::seeded(7));
        assert_eq!(a.bytes::<32>(), b.bytes::<32>());
        assert_ne!(a.u64(), Entropy::seeded(8).u64());
        assert_ne!(Entropy::from_os().bytes::<16>(), [0u8; 16]);
    }
}
