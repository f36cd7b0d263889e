//! Sequence values this node has reserved and not yet handed out: each `nextval` takes
//! from a block, and only an empty block goes to storage (`crate::catalog::sequences`).

use std::collections::HashMap;
use std::sync::Mutex;

/// A node's reserved, not yet handed out values of one sequence.
#[derive(Debug, Clone, Copy)]
pub struct Block {
    pub next: i64,
    pub remaining: u64,
    pub increment: i64,
}

/// The blocks this node holds, by sequence name and oid (a sequence dropped and created
/// again under the same name starts over).
#[derive(Debug, Default)]
pub struct Blocks {
    pub held: Mutex<HashMap<(String, u32), Block>>,
}

impl Blocks {
    pub fn take(&self, key: &(String, u32), want: usize, out: &mut Vec<i64>) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = held.get_mut(key) {
            while out.len() < want && b.remaining > 0 {
                out.push(b.next);
                b.remaining -= 1;
                if b.remaining > 0 {
                    // Within the block, so within the sequence's bounds: no overflow.
                    b.next += b.increment;
                }
            }
        }
    }

    pub fn forget(&self, name: &str) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(n, _), _| n != name);
    }
}
