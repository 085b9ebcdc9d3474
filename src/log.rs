//! The lock-free append log that backs a partition. (Skeleton: the engine issue fills this in.)
//!
//! Contract:
//! - [`Log::append`] gives dense offsets 0, 1, 2, … and returns once the record is *published*
//!   (readable by every reader).
//! - Readers see only a contiguous published prefix, `0..end()`: a read never returns offset n while an
//!   offset below n could still appear.
//! - Append and read take no lock. Record addresses are stable for the life of the log.

use std::marker::PhantomData;

/// A hook run exactly once per record, in offset order, by whichever thread publishes it, before the
/// record becomes visible to readers. A partition uses it to index records by key.
pub trait Publish {
    /// Called once for the record at `offset`, in strictly increasing offset order, never concurrently.
    fn publish(&self, _offset: u64) {}
}

impl Publish for u64 {}

/// A lock-free, append-only log of `T`.
pub struct Log<T> {
    _t: PhantomData<T>,
}

impl<T: Publish> Log<T> {
    /// An empty log.
    pub fn new() -> Self {
        todo!()
    }

    /// Appends `value`, returning its offset once it is published.
    pub fn append(&self, _value: T) -> u64 {
        todo!()
    }

    /// The high watermark: every offset below it is published.
    pub fn end(&self) -> u64 {
        todo!()
    }

    /// The record at `offset`, if it is published.
    pub fn get(&self, _offset: u64) -> Option<&T> {
        todo!()
    }

    /// Calls `f` for the published records at `from..`, in offset order, at most `max` of them; returns
    /// how many it visited.
    pub fn read(&self, _from: u64, _max: usize, _f: impl FnMut(u64, &T)) -> usize {
        todo!()
    }
}

impl<T: Publish> Default for Log<T> {
    fn default() -> Self {
        Self::new()
    }
}
