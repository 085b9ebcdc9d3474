//! Checkers: pure functions from a recorded history to the anomalies found in it.
//!
//! - [`kafka`]: jepsen's kafka checker, as Maelstrom's kafka workload uses it.
//! - [`groups`]: the consumer-group checker.

pub mod groups;
pub mod kafka;

use std::collections::BTreeMap;

use serde::Serialize;

/// How many examples are kept per kind of anomaly.
pub const MAX_EXAMPLES: usize = 8;

/// Anomalies found in a history: a count and a few examples per kind.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Anomalies {
    /// Kind → number of cases.
    pub counts: BTreeMap<String, u64>,
    /// Kind → the first few cases, described.
    pub examples: BTreeMap<String, Vec<String>>,
}

impl Anomalies {
    /// Records one case of `kind`; `describe` is called only while examples are still kept.
    pub fn add(&mut self, kind: &str, describe: impl FnOnce() -> String) {
        *self.counts.entry(kind.to_string()).or_default() += 1;
        let ex = self.examples.entry(kind.to_string()).or_default();
        if ex.len() < MAX_EXAMPLES {
            ex.push(describe());
        }
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The count of one kind (0 if none).
    #[cfg(test)]
    pub fn count(&self, kind: &str) -> u64 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    /// Adds all of `other`'s cases.
    pub fn merge(&mut self, other: Anomalies) {
        for (k, n) in other.counts {
            *self.counts.entry(k).or_default() += n;
        }
        for (k, ex) in other.examples {
            let mine = self.examples.entry(k).or_default();
            for e in ex {
                if mine.len() < MAX_EXAMPLES {
                    mine.push(e);
                }
            }
        }
    }
}

/// An optional number as example text: the number, or `none` (never Rust's `Some(…)`).
pub fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}
