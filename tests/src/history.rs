//! A checker for list-append histories, in the manner of Elle (Kingsbury and Alvaro, 2020).
//!
//! Clients run transactions of appends (`append v to the list at key k`) and reads (`read
//! the list at k`). Every appended value is unique, so a read names the writers of every
//! element it saw, and the longest read of a key gives its version order. From that the
//! checker builds the dependency graph between committed transactions (ww, wr and rw
//! edges) and looks for the anomalies snapshot isolation forbids (G0, G1a, G1b, G1c,
//! G-single, lost appends, incompatible orders) and, when asked for serializability, any
//! dependency cycle (G2).

use std::collections::{HashMap, HashSet, VecDeque};

/// A list as the workloads store it: comma-separated values in a text column (`None`:
/// the key does not exist yet).
pub fn parse_list(v: Option<String>) -> Vec<u64> {
    v.map(|s| {
        s.split(',')
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().expect("list element"))
            .collect()
    })
    .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Append {
        key: u32,
        value: u64,
    },
    /// The list as read (empty if the key did not exist).
    Read {
        key: u32,
        list: Vec<u64>,
    },
}

#[derive(Debug, Clone)]
pub struct Txn {
    pub ops: Vec<Op>,
    /// The COMMIT returned success. Failed transactions (40001) must leave no trace.
    pub committed: bool,
}

impl Txn {
    /// The values this transaction appended to `key`, in order.
    fn appends_to(&self, key: u32) -> Vec<u64> {
        self.ops
            .iter()
            .filter_map(|o| match o {
                Op::Append { key: k, value } if *k == key => Some(*value),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    SnapshotIsolation,
    Serializable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Edge {
    WW,
    WR,
    RW,
}

/// Checks a history. `finals` is one last read of every key, taken after every client
/// finished. Returns the anomalies found, each described in a line.
pub fn check(history: &[Txn], finals: &HashMap<u32, Vec<u64>>, model: Model) -> Vec<String> {
    let mut anomalies = Vec::new();
    // Who appended each value, and whether it committed.
    let mut writer: HashMap<(u32, u64), usize> = HashMap::new();
    for (i, t) in history.iter().enumerate() {
        for op in &t.ops {
            if let Op::Append { key, value } = op {
                if writer.insert((*key, *value), i).is_some() {
                    anomalies.push(format!("value {value} appended twice to key {key}"));
                }
            }
        }
    }
    let committed = |i: usize| history[i].committed;

    // Version order per key: the final read, which must extend every committed read.
    let mut order: HashMap<u32, Vec<u64>> = finals.clone();
    for (i, t) in history.iter().enumerate().filter(|(_, t)| t.committed) {
        for op in &t.ops {
            if let Op::Read { key, list } = op {
                let full = order.entry(*key).or_default();
                let own: HashSet<u64> = t.appends_to(*key).into_iter().collect();
                // The read minus the transaction's own appends must be a prefix of the
                // version order.
                let others: Vec<u64> = list.iter().copied().filter(|v| !own.contains(v)).collect();
                if others.len() > full.len() || full[..others.len()] != others[..] {
                    anomalies.push(format!(
                        "incompatible order: T{i} read key {key} as {list:?}, final is {full:?}"
                    ));
                }
            }
        }
    }

    for (key, list) in &order {
        let mut seen = HashSet::new();
        for v in list {
            if !seen.insert(*v) {
                anomalies.push(format!("key {key}: value {v} appears twice in {list:?}"));
            }
            match writer.get(&(*key, *v)) {
                None => anomalies.push(format!("key {key}: value {v} was never appended")),
                Some(&w) if !committed(w) => anomalies.push(format!(
                    "G1a (aborted read): key {key} holds {v}, appended by T{w} which failed"
                )),
                _ => {}
            }
        }
    }
    // Every committed append is in the final state: nothing acknowledged is lost.
    for (&(key, value), &w) in &writer {
        if committed(w) && !order.get(&key).is_some_and(|l| l.contains(&value)) {
            anomalies.push(format!(
                "lost append: T{w} committed {value} to key {key}, final is {:?}",
                order.get(&key)
            ));
        }
    }
    // G1b (intermediate read): a read that ends at a value a transaction appended, when that
    // same transaction appended again to the key later.
    for (i, t) in history.iter().enumerate().filter(|(_, t)| t.committed) {
        for op in &t.ops {
            let Op::Read { key, list } = op else { continue };
            let Some(&last) = list.last() else { continue };
            let Some(&w) = writer.get(&(*key, last)) else {
                continue;
            };
            if w == i {
                continue;
            }
            let mine = history[w].appends_to(*key);
            if mine.last() != Some(&last) {
                anomalies.push(format!(
                    "G1b (intermediate read): T{i} read key {key} ending at {last}, \
                     not T{w}'s final append {:?}",
                    mine.last()
                ));
            }
        }
    }

    // The dependency graph over committed transactions.
    let n = history.len();
    let mut edges: Vec<HashSet<(usize, Edge)>> = vec![HashSet::new(); n];
    let mut add = |a: usize, b: usize, e: Edge| {
        if a != b && committed(a) && committed(b) {
            edges[a].insert((b, e));
        }
    };
    for (key, list) in &order {
        let w: Vec<usize> = list
            .iter()
            .filter_map(|v| writer.get(&(*key, *v)).copied())
            .collect();
        for pair in w.windows(2) {
            add(pair[0], pair[1], Edge::WW);
        }
    }
    for (i, t) in history.iter().enumerate().filter(|(_, t)| t.committed) {
        for op in &t.ops {
            let Op::Read { key, list } = op else { continue };
            let Some(full) = order.get(key) else { continue };
            // Only what others wrote counts; the transaction's own appends come last.
            let others = list
                .iter()
                .filter(|v| writer.get(&(*key, **v)) != Some(&i))
                .count();
            if others > full.len() {
                continue; // an incompatible order, reported above
            }
            if others > 0 {
                if let Some(&w) = writer.get(&(*key, full[others - 1])) {
                    add(w, i, Edge::WR);
                }
            }
            // The next version after what was read was installed by someone else: rw.
            if let Some(next) = full.get(others) {
                if let Some(&w) = writer.get(&(*key, *next)) {
                    add(i, w, Edge::RW);
                }
            }
        }
    }

    let reach = |from: usize, to: usize, allowed: &[Edge]| -> bool {
        let mut seen = vec![false; n];
        let mut q = VecDeque::from([from]);
        seen[from] = true;
        while let Some(a) = q.pop_front() {
            for &(b, e) in &edges[a] {
                if !allowed.contains(&e) || seen[b] {
                    continue;
                }
                if b == to {
                    return true;
                }
                seen[b] = true;
                q.push_back(b);
            }
        }
        false
    };
    for (a, out) in edges.iter().enumerate().take(n) {
        for &(b, e) in out {
            match e {
                Edge::WW if reach(b, a, &[Edge::WW]) => {
                    anomalies.push(format!("G0 (write cycle) through T{a} -ww-> T{b}"))
                }
                Edge::WW | Edge::WR if reach(b, a, &[Edge::WW, Edge::WR]) => anomalies.push(
                    format!("G1c (circular information flow) through T{a} -{e:?}-> T{b}"),
                ),
                Edge::RW if reach(b, a, &[Edge::WW, Edge::WR]) => {
                    anomalies.push(format!("G-single (read skew) through T{a} -rw-> T{b}"))
                }
                Edge::RW
                    if model == Model::Serializable
                        && reach(b, a, &[Edge::WW, Edge::WR, Edge::RW]) =>
                {
                    anomalies.push(format!(
                        "G2 (anti-dependency cycle) through T{a} -rw-> T{b}"
                    ))
                }
                _ => {}
            }
        }
    }
    anomalies
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ap(key: u32, value: u64) -> Op {
        Op::Append { key, value }
    }
    fn rd(key: u32, list: &[u64]) -> Op {
        Op::Read {
            key,
            list: list.to_vec(),
        }
    }
    fn ok(ops: Vec<Op>) -> Txn {
        Txn {
            ops,
            committed: true,
        }
    }

    #[test]
    fn a_serial_history_passes() {
        let h = vec![
            ok(vec![ap(1, 1), ap(2, 2)]),
            ok(vec![rd(1, &[1]), ap(1, 3)]),
            ok(vec![rd(1, &[1, 3]), rd(2, &[2])]),
            Txn {
                ops: vec![ap(2, 9)],
                committed: false,
            },
        ];
        let finals = HashMap::from([(1, vec![1, 3]), (2, vec![2])]);
        assert_eq!(
            check(&h, &finals, Model::Serializable),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_lost_append_is_caught() {
        // Both read [] and appended; the final state kept only one.
        let h = vec![
            ok(vec![rd(1, &[]), ap(1, 1)]),
            ok(vec![rd(1, &[]), ap(1, 2)]),
        ];
        let finals = HashMap::from([(1, vec![2])]);
        let a = check(&h, &finals, Model::SnapshotIsolation);
        assert!(a.iter().any(|l| l.starts_with("lost append")), "{a:?}");
    }

    #[test]
    fn read_skew_is_caught() {
        // T1 reads key 1 before T0's append and key 2 after it.
        let h = vec![
            ok(vec![ap(1, 1), ap(2, 2)]),
            ok(vec![rd(1, &[]), rd(2, &[2])]),
        ];
        let finals = HashMap::from([(1, vec![1]), (2, vec![2])]);
        let a = check(&h, &finals, Model::SnapshotIsolation);
        assert!(a.iter().any(|l| l.starts_with("G-single")), "{a:?}");
    }

    #[test]
    fn write_skew_is_g2_only_under_serializability() {
        let h = vec![
            ok(vec![rd(1, &[]), rd(2, &[]), ap(1, 1)]),
            ok(vec![rd(1, &[]), rd(2, &[]), ap(2, 2)]),
        ];
        let finals = HashMap::from([(1, vec![1]), (2, vec![2])]);
        assert!(check(&h, &finals, Model::SnapshotIsolation).is_empty());
        let a = check(&h, &finals, Model::Serializable);
        assert!(a.iter().any(|l| l.starts_with("G2")), "{a:?}");
    }

    #[test]
    fn aborted_and_intermediate_reads_are_caught() {
        let h = vec![
            Txn {
                ops: vec![ap(1, 1)],
                committed: false,
            },
            ok(vec![rd(1, &[1])]),
            ok(vec![ap(2, 5), ap(2, 6)]),
            ok(vec![rd(2, &[5])]),
        ];
        let finals = HashMap::from([(1, vec![1]), (2, vec![5, 6])]);
        let a = check(&h, &finals, Model::SnapshotIsolation);
        assert!(a.iter().any(|l| l.starts_with("G1a")), "{a:?}");
        assert!(a.iter().any(|l| l.starts_with("G1b")), "{a:?}");
    }
}
