//! One partition: a [`Log`](crate::log::Log) of records plus a per-key index. (Skeleton.)
//!
//! Keys are opaque bytes plus a [`KeyKind`], so the wire layer can give a JSON string key and the same
//! text as a non-string JSON key back as they came. The value is opaque bytes (the node stores the
//! compact JSON text of the message).

/// How the wire layer wants a key's bytes read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The bytes are the UTF-8 of a string key.
    Str,
    /// The bytes are the compact JSON text of a non-string key.
    Json,
}

/// A key as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key<'a> {
    pub kind: KeyKind,
    pub bytes: &'a [u8],
}

/// A published record, borrowed from its partition.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub offset: u64,
    pub key: Option<Key<'a>>,
    pub value: &'a [u8],
}

/// One partition of a topic.
pub struct Partition {}

impl Partition {
    /// An empty partition.
    pub fn new() -> Self {
        todo!()
    }

    /// Appends a record; returns its offset once it is published (readable).
    pub fn append(&self, _key: Option<Key<'_>>, _value: &[u8]) -> u64 {
        todo!()
    }

    /// The log end offset (high watermark).
    pub fn end(&self) -> u64 {
        todo!()
    }

    /// Calls `f` for up to `max` published records at offsets `from..`, in offset order; returns the count.
    pub fn read(&self, _from: u64, _max: usize, _f: impl FnMut(RecordRef<'_>)) -> usize {
        todo!()
    }

    /// Calls `f` for up to `max` published records of `key` at offsets `from..`, in offset order, in
    /// O(log n + max); returns the count.
    pub fn read_key(
        &self,
        _key: Key<'_>,
        _from: u64,
        _max: usize,
        _f: impl FnMut(RecordRef<'_>),
    ) -> usize {
        todo!()
    }
}

impl Default for Partition {
    fn default() -> Self {
        Self::new()
    }
}
