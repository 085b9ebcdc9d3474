//! Sequential walks over a segment's batches, for recovery and index rebuilds.
//!
//! A walk reads the `.log` file in chunks of [`CHUNK`] bytes (or one batch, if larger) and yields
//! each batch's position and header; with `check_crc` it also validates the whole batch with
//! [`Batch::parse_all`] (lengths, magic, CRC-32C, record count). It stops at the first thing that
//! cannot be a stored batch and says why, without reading past the file's end or allocating more
//! than the file holds, whatever the bytes claim.

use super::layout::Header;
use crate::batch::{Batch, BatchError, HEADER};
use bytes::Bytes;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bytes read per call.
pub(crate) const CHUNK: u64 = 1 << 20;

/// What a walk found next.
#[derive(Debug)]
pub(crate) enum Step {
    /// A batch at `position`.
    Batch { position: u64, header: Header },
    /// The walk reached its limit exactly.
    End,
    /// The bytes at `position` are not a valid batch; `why` says what is wrong.
    Bad { position: u64, why: String },
}

/// A walk over `file` from a position up to `limit`.
#[derive(Debug)]
pub(crate) struct Walk<'f> {
    file: &'f File,
    position: u64,
    limit: u64,
    check_crc: bool,
    buf: Bytes,
    buf_at: u64,
    /// Bytes read from the file so far.
    pub(crate) read: u64,
}

impl<'f> Walk<'f> {
    /// A walk of `file` from `position` to `limit` (the file's length, or less).
    pub(crate) fn new(file: &'f File, position: u64, limit: u64, check_crc: bool) -> Self {
        Walk {
            file,
            position,
            limit,
            check_crc,
            buf: Bytes::new(),
            buf_at: position,
            read: 0,
        }
    }

    /// The next batch, or where and why the walk stops.
    pub(crate) fn next_batch(&mut self) -> io::Result<Step> {
        let at = self.position;
        if at >= self.limit {
            return Ok(Step::End);
        }
        let bad = |why: String| Ok(Step::Bad { position: at, why });
        if self.limit - at < HEADER as u64 {
            return bad(format!(
                "{} bytes left, less than a batch header (a torn write)",
                self.limit - at
            ));
        }
        let header = match Header::parse(self.bytes(at, HEADER as u64)?) {
            Ok(h) => h,
            Err(why) => return bad(why),
        };
        if header.size > self.limit - at {
            return bad(format!(
                "a batch of {} bytes runs past the end ({} bytes left: a torn write)",
                header.size,
                self.limit - at
            ));
        }
        if self.check_crc {
            let bytes = self.slice(at, header.size)?;
            match Batch::parse_all(bytes) {
                Ok(_) | Err(BatchError::Unsupported(_)) => {}
                Err(e) => return bad(e.to_string()),
            }
        }
        self.position = at + header.size;
        Ok(Step::Batch {
            position: at,
            header,
        })
    }

    /// `len` bytes at `at` (within `limit`), from the buffer or a new read.
    fn bytes(&mut self, at: u64, len: u64) -> io::Result<&[u8]> {
        self.fill(at, len)?;
        let from = (at - self.buf_at) as usize;
        Ok(&self.buf[from..from + len as usize])
    }

    fn slice(&mut self, at: u64, len: u64) -> io::Result<Bytes> {
        self.fill(at, len)?;
        let from = (at - self.buf_at) as usize;
        Ok(self.buf.slice(from..from + len as usize))
    }

    fn fill(&mut self, at: u64, len: u64) -> io::Result<()> {
        if at >= self.buf_at && at + len <= self.buf_at + self.buf.len() as u64 {
            return Ok(());
        }
        let n = len.max(CHUNK).min(self.limit - at);
        let mut buf = vec![0; n as usize];
        self.file.read_exact_at(&mut buf, at)?;
        self.read += n;
        self.buf = Bytes::from(buf);
        self.buf_at = at;
        Ok(())
    }
}
