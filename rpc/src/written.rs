//! What a frontend remembers of catalog tables' write timestamps ([`WrittenMemo`]), so that
//! one call answers every catalog check a statement makes.
//!
//! A statement checks several catalog tables at one read timestamp (its table's definition,
//! the schemas on its search path). `written_ts(table, ts)` never changes once it has been
//! answered (the server answers only once every commit at or below `ts` is applied), so
//! the first check of a timestamp asks the server for every table checked so far, and the
//! others at that timestamp are answered from memory. Pure: no I/O.
//!
//! Bounds: [`TABLES_MAX`] tables asked about at once; [`TIMESTAMPS_MAX`] timestamps
//! remembered (the memo is emptied when full).

use std::collections::HashMap;

use weft_engine::Timestamp;

/// The most tables one call asks about.
pub const TABLES_MAX: usize = 32;
/// The most read timestamps remembered.
pub const TIMESTAMPS_MAX: usize = 1024;

#[derive(Debug, Default)]
pub struct WrittenMemo {
    /// Tables checked before, in the order first seen.
    tables: Vec<u64>,
    answers: HashMap<Timestamp, HashMap<u64, Timestamp>>,
}

impl WrittenMemo {
    pub fn lookup(&self, table_id: u64, ts: Timestamp) -> Option<Timestamp> {
        self.answers.get(&ts)?.get(&table_id).copied()
    }

    /// The tables to ask about with `table_id`: it first, then the others checked before.
    pub fn to_ask(&mut self, table_id: u64) -> Vec<u64> {
        if !self.tables.contains(&table_id) && self.tables.len() < TABLES_MAX {
            self.tables.push(table_id);
        }
        let mut ask = vec![table_id];
        ask.extend(self.tables.iter().copied().filter(|t| *t != table_id));
        ask.truncate(TABLES_MAX);
        ask
    }

    pub fn record(&mut self, ts: Timestamp, answers: impl IntoIterator<Item = (u64, Timestamp)>) {
        if self.answers.len() >= TIMESTAMPS_MAX && !self.answers.contains_key(&ts) {
            self.answers.clear();
        }
        self.answers.entry(ts).or_default().extend(answers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_answers_every_table_checked_before_at_that_timestamp() {
        let mut m = WrittenMemo::default();
        assert_eq!(m.to_ask(7), vec![7]);
        m.record(100, [(7, 90)]);
        assert_eq!(m.lookup(7, 100), Some(90));
        assert_eq!(m.lookup(8, 100), None, "never asked");
        assert_eq!(m.to_ask(8), vec![8, 7]);
        m.record(200, [(8, 150), (7, 190)]);
        assert_eq!(
            m.lookup(7, 200),
            Some(190),
            "answered by the first call at 200"
        );
        assert_eq!(m.lookup(7, 300), None, "another timestamp asks again");
    }

    #[test]
    fn bounded() {
        let mut m = WrittenMemo::default();
        for t in 0..100 {
            m.to_ask(t);
        }
        assert_eq!(m.to_ask(99).len(), TABLES_MAX);
        assert_eq!(m.to_ask(99)[0], 99);
        for ts in 0..(TIMESTAMPS_MAX as u64 + 10) {
            m.record(ts, [(1, ts)]);
        }
        assert!(m.answers.len() <= TIMESTAMPS_MAX);
    }
}
