//! A fetch position: where the current owner of one partition reads next.
//!
//! A [`Cursor`] belongs to one *ownership*: it is created when a partition gets a new owner and is
//! carried unchanged into every later snapshot in which the same member keeps the partition. When
//! the partition moves, the new snapshot holds a fresh cursor, so an old owner still polling with an
//! old snapshot advances only its own, orphaned cursor and can never move the new owner's position.
//!
//! When an ownership ends (the member releases the partition, leaves, expires or is fenced) the
//! coordinator **closes** the cursor before it publishes the snapshot that moves the partition:
//! [`Cursor::close`] sets the closed bit of the position in one read-modify-write and returns the
//! position it ended at. No claim can succeed after that, so the old owner's polls still running on
//! an older snapshot hand out nothing past the closed position, and committing that position (a
//! release with auto-commit) gives the next owner exactly the records the old one was not handed.
//!
//! # Orderings
//!
//! Every operation here is `Relaxed`:
//! - `position` is a counter that polls claim ranges from with compare-and-swap, and that
//!   [`Cursor::close`] ends with `fetch_or`. Read-modify-writes on one atomic are totally ordered and
//!   each reads the latest value, so two claims never overlap, no claim follows the close, the
//!   value the close returns is the end of every claim, and the lazy initialization (`UNSET` →
//!   value) happens at most once (never after the close). The records themselves are published by
//!   the partition's own Release/Acquire on its watermark
//!   ([`Partition::end`](crate::partition::Partition::end)), not by the cursor; the closed position
//!   reaches the next owner through the committed map's entry lock and the snapshot swap (see
//!   [`crate::group`]'s "Fencing").
//! - The initial value is read from the committed-offsets map, whose locks order it against commits
//!   (see [`crate::group`]'s "Fencing"); the cursor adds no ordering to that.
//! - `handed` is a `fetch_max` high-water mark read by the owner's next poll. A stale read only
//!   delays an auto-commit to the poll after.
//! - `auto` is read and written only while the committed map's entry lock for this partition is
//!   held (in `Group::commit_as`), and that lock orders it.

use crate::loom::{AtomicU64, Ordering};

/// The bit of `position` that says the ownership has ended.
const CLOSED: u64 = 1 << 63;
/// The position of a cursor that no poll has needed yet (closed or not).
const UNSET: u64 = CLOSED - 1;

/// One owner's fetch position in one partition.
#[derive(Debug)]
pub(crate) struct Cursor {
    /// The next offset to hand out, or `UNSET` until the first poll needs it; with the `CLOSED` bit
    /// once the ownership ended.
    position: AtomicU64,
    /// The end of what completed polls handed out (0: nothing yet).
    handed: AtomicU64,
    /// The last offset auto-commit stored for this ownership (0: none).
    auto: AtomicU64,
}

impl Cursor {
    pub(crate) fn new() -> Self {
        Cursor {
            position: AtomicU64::new(UNSET),
            handed: AtomicU64::new(0),
            auto: AtomicU64::new(0),
        }
    }

    /// The position, first set to `init()` if no poll needed it before; `None` once closed. When
    /// two polls initialize at once, one value wins and both use it.
    #[inline]
    pub(crate) fn position(&self, init: impl FnOnce() -> u64) -> Option<u64> {
        // Relaxed: see "Orderings".
        let pos = self.position.load(Ordering::Relaxed);
        if pos != UNSET {
            return (pos & CLOSED == 0).then_some(pos);
        }
        let value = init().min(UNSET - 1);
        // Relaxed: the CAS alone decides which initial value wins; see "Orderings".
        match self
            .position
            .compare_exchange(UNSET, value, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => Some(value),
            Err(current) => (current & CLOSED == 0).then_some(current),
        }
    }

    /// The position, if a poll has set it (also after the close).
    pub(crate) fn peek(&self) -> Option<u64> {
        // Relaxed: an observation for `describe` and tests; see "Orderings".
        let pos = self.position.load(Ordering::Relaxed) & !CLOSED;
        (pos != UNSET).then_some(pos)
    }

    /// Ends the ownership: no claim succeeds after this. Returns the position it ended at (the end
    /// of every claim), or `None` if no poll had set one or it was already closed.
    pub(crate) fn close(&self) -> Option<u64> {
        // Relaxed: RMWs on `position` are totally ordered; see "Orderings".
        let before = self.position.fetch_or(CLOSED, Ordering::Relaxed);
        (before & CLOSED == 0 && before != UNSET).then_some(before)
    }

    /// Claims up to `max` offsets from the position `pos` (as last seen) to the log end `end()`,
    /// advancing the position past them. Returns the claimed range as (first offset, count), or
    /// `None` when nothing is readable. Concurrent claims get disjoint ranges.
    #[inline]
    pub(crate) fn claim(
        &self,
        mut pos: u64,
        end: impl Fn() -> u64,
        max: u64,
    ) -> Option<(u64, u64)> {
        loop {
            if pos & CLOSED != 0 {
                return None;
            }
            let end = end();
            if pos >= end || max == 0 {
                return None;
            }
            let n = (end - pos).min(max);
            // Relaxed: RMWs on `position` are totally ordered; see "Orderings".
            match self.position.compare_exchange_weak(
                pos,
                pos + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some((pos, n)),
                Err(current) => pos = current,
            }
        }
    }

    /// Records that a poll finished handing out everything below `to`.
    #[inline]
    pub(crate) fn handed_out(&self, to: u64) {
        // Relaxed: a high-water mark; see "Orderings".
        self.handed.fetch_max(to, Ordering::Relaxed);
    }

    /// What auto-commit should store: the end of what was handed out, if beyond its last commit.
    #[inline]
    pub(crate) fn pending(&self) -> Option<u64> {
        // Relaxed: a stale value only delays the commit; the decision is re-checked under the
        // entry lock by `Group::commit_as`.
        let handed = self.handed.load(Ordering::Relaxed);
        (handed > self.auto.load(Ordering::Relaxed)).then_some(handed)
    }

    /// The last offset auto-commit stored. Call only under the committed map's entry lock.
    pub(crate) fn auto(&self) -> u64 {
        // Relaxed: ordered by the entry lock; see "Orderings".
        self.auto.load(Ordering::Relaxed)
    }

    /// Sets what auto-commit stored. Call only under the committed map's entry lock.
    pub(crate) fn set_auto(&self, offset: u64) {
        // Relaxed: ordered by the entry lock; see "Orderings".
        self.auto.store(offset, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn initializes_once_and_claims_disjoint_ranges() {
        let c = Cursor::new();
        assert_eq!(c.peek(), None);
        assert_eq!(c.position(|| 3), Some(3));
        assert_eq!(c.position(|| 7), Some(3), "a second init does not win");
        assert_eq!(c.claim(3, || 10, 4), Some((3, 4)));
        // A stale view of the position still claims after the first range.
        assert_eq!(c.claim(3, || 10, 4), Some((7, 3)));
        assert_eq!(c.claim(3, || 10, 4), None);
        assert_eq!(c.peek(), Some(10));
    }

    #[test]
    fn a_closed_cursor_claims_nothing_and_reports_where_it_ended() {
        let c = Cursor::new();
        assert_eq!(c.position(|| 2), Some(2));
        assert_eq!(c.claim(2, || 10, 3), Some((2, 3)));
        assert_eq!(c.close(), Some(5));
        assert_eq!(c.close(), None, "closed once");
        // A poll that read the position before the close claims nothing after it.
        assert_eq!(c.claim(5, || 10, 3), None);
        assert_eq!(c.position(|| 0), None);
        assert_eq!(c.peek(), Some(5));
        // A cursor no poll needed closes with no position, and can never be initialized.
        let fresh = Cursor::new();
        assert_eq!(fresh.close(), None);
        assert_eq!(fresh.position(|| 4), None);
        assert_eq!(fresh.peek(), None);
    }

    #[test]
    fn pending_follows_handed_out_and_auto() {
        let c = Cursor::new();
        assert_eq!(c.pending(), None);
        c.handed_out(5);
        c.handed_out(3);
        assert_eq!(c.pending(), Some(5));
        c.set_auto(5);
        assert_eq!(c.pending(), None);
    }
}
