//! The reader: big reads from the input, split into lines, each line handled inline or sent to its
//! worker.
//!
//! - **Buffers.** The reader reads into a chunk of at least [`CHUNK`] bytes. Lines are never copied:
//!   a worker gets the chunk (an `Arc`) and the ranges of its lines. Once a chunk is shared, the
//!   reader moves on to a free chunk (recycled when the workers drop their references), copying over
//!   only the incomplete last line.
//! - **Inline when light.** When a read brings at most [`INLINE_MAX`] lines (`--inline-max`), a line whose shard has
//!   nothing in flight is handled right here and its reply written at once (see
//!   [`super::output`]): a lone request crosses no thread, and a reader that keeps up serves
//!   everything itself. Bigger reads (input is queueing) go to the workers, one job per worker.
//! - **Bad input.** A line longer than the line limit (`--max-line-bytes`, default [`MAX_LINE`])
//!   is dropped (logged once) without being buffered whole; the reader skips to the next newline.
//!   If the line's start names its sender and `msg_id`, it is answered with error 12 naming the
//!   limit ([`Node::refuse_line`]). Empty lines are ignored. Everything else is the handler's
//!   business, which never fails.

use super::node::Node;
use super::output::Output;
use super::pool::{Job, Pool};
use crate::loom::StdArc as Arc;
use crate::maelstrom::wire::peek_src;
use std::io::{ErrorKind, Read};

/// The size of a fresh input chunk.
pub const CHUNK: usize = 128 * 1024;

/// The longest line accepted by default, in bytes (`--max-line-bytes`); longer lines are
/// refused.
pub const MAX_LINE: usize = 1 << 20;

/// The largest line limit `--max-line-bytes` takes: the decoder keeps a field's place in the line
/// in 24 bits.
pub const MAX_LINE_LIMIT: usize = 8 << 20;

/// The smallest line limit `--max-line-bytes` takes.
pub const MIN_LINE_LIMIT: usize = 1024;

/// A read that brings more lines than this goes to the workers whole.
///
/// The reader serves a read itself while it keeps up: reads then stay small, as each brings what
/// arrived while the previous one was served. Only a large read means input is queueing, and
/// then the work goes to the workers. A request served inline costs less than one handed to a
/// worker (the lines and the partition tails would cross cores; figures in `benches/README.md`),
/// and 1024 lines (about 100 KiB of Maelstrom requests) is more than a pipe read brings while the
/// reader keeps up, so the pool takes over only when the reader has truly fallen behind.
pub const INLINE_MAX: usize = 1024;

/// Inline replies are submitted once they exceed this many bytes, even mid-read.
const FLUSH_AT: usize = 64 * 1024;

/// Free space below which the reader makes room before it reads again.
const MIN_READ: usize = 16 * 1024;

/// Free chunks kept for reuse.
const SPARES: usize = 16;

/// Reads `input` to its end, serving every line. Returns after the last line was handled or
/// dispatched (the caller then joins the pool).
pub fn read_loop(
    mut input: impl Read,
    node: &Node,
    pool: Option<&Pool>,
    output: &Output,
    inline_max: usize,
    max_line: usize,
) -> std::io::Result<()> {
    let mut r = Reader {
        inline_max,
        max_line: max_line.clamp(MIN_LINE_LIMIT, MAX_LINE_LIMIT),
        refused: Vec::new(),
        buf: Arc::new(vec![0; CHUNK]),
        start: 0,
        filled: 0,
        discarding: false,
        spares: Vec::new(),
        lines: Vec::new(),
        jobs: pool.map_or_else(Vec::new, |p| vec![Vec::new(); p.workers()]),
        inline: Vec::new(),
        out: Vec::with_capacity(CHUNK),
    };
    loop {
        r.make_room();
        let filled = r.filled;
        let Some(data) = Arc::get_mut(&mut r.buf) else {
            unreachable!("the reader's current chunk is never shared while it reads")
        };
        let n = match input.read(&mut data[filled..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                r.finish(node, pool, output, false);
                return Err(e);
            }
        };
        super::guard::inject("reader");
        r.filled += n;
        r.split(filled);
        r.serve(node, pool, output);
    }
    r.finish(node, pool, output, true);
    Ok(())
}

struct Reader {
    /// See [`INLINE_MAX`].
    inline_max: usize,
    /// The line limit, in bytes.
    max_line: usize,
    /// Starts of over-long lines in `buf` found by the last `split`, to answer: `(start, end)`.
    refused: Vec<(u32, u32)>,
    /// The current chunk; unshared while the reader reads into it.
    buf: Arc<Vec<u8>>,
    /// Start of the first line not yet complete.
    start: usize,
    /// Bytes of `buf` holding input.
    filled: usize,
    /// Skipping the rest of an over-long line.
    discarding: bool,
    /// Chunks handed to workers, reused once they are free again.
    spares: Vec<Arc<Vec<u8>>>,
    /// Complete lines of the last read: `(start, end)` without the newline.
    lines: Vec<(u32, u32)>,
    /// Per worker: lines to send.
    jobs: Vec<Vec<(u32, u32)>>,
    /// Lines to handle here.
    inline: Vec<(u32, u32)>,
    /// Replies to inline lines.
    out: Vec<u8>,
}

impl Reader {
    /// Collects the complete lines among the bytes read from `from` on.
    fn split(&mut self, from: usize) {
        self.lines.clear();
        let data = &self.buf[..self.filled];
        let max = self.max_line;
        for nl in memchr::memchr_iter(b'\n', &data[from..]) {
            let end = from + nl;
            if self.discarding {
                self.discarding = false;
            } else if end - self.start > max {
                tracing::warn!(
                    len = end - self.start,
                    "skipped an input line longer than {max} bytes"
                );
                self.refused
                    .push((self.start as u32, (self.start + max) as u32));
            } else if end > self.start {
                self.lines.push((self.start as u32, end as u32));
            }
            self.start = end + 1;
        }
        if self.discarding {
            // Still inside the over-long line: drop what was read of it.
            self.start = self.filled;
        } else if self.filled - self.start > max {
            tracing::warn!("skipped an input line longer than {max} bytes");
            self.refused
                .push((self.start as u32, (self.start + max) as u32));
            self.discarding = true;
            self.start = self.filled;
        }
    }

    /// Answers the over-long lines the last `split` found (their starts are still in `buf`).
    #[cold]
    #[inline(never)]
    fn refuse(&mut self, node: &Node) {
        let why = format!(
            "the line is longer than {} bytes, the node's line limit (--max-line-bytes); it was \
             not read",
            self.max_line
        );
        for (s, e) in std::mem::take(&mut self.refused) {
            node.refuse_line(&self.buf[s as usize..e as usize], &why, &mut self.out);
        }
    }

    /// Handles or dispatches the lines of the last read.
    fn serve(&mut self, node: &Node, pool: Option<&Pool>, output: &Output) {
        if !self.refused.is_empty() {
            self.refuse(node);
        }
        let Some(pool) = pool else {
            for &(s, e) in &self.lines {
                node.handle(&self.buf[s as usize..e as usize], &mut self.out);
                if self.out.len() >= FLUSH_AT {
                    output.submit(&mut self.out);
                }
            }
            output.submit(&mut self.out);
            return;
        };
        let few = self.lines.len() <= self.inline_max;
        for &(s, e) in &self.lines {
            let line = &self.buf[s as usize..e as usize];
            let shard = pool.shard_of(peek_src(line).unwrap_or_default());
            // A shard is either all inline or all dispatched within one read: once a line of it is
            // queued here, later lines of it follow; an idle shard stays idle (only the reader
            // raises its count).
            if few && self.jobs[shard].is_empty() && pool.is_idle(shard) {
                self.inline.push((s, e));
            } else {
                self.jobs[shard].push((s, e));
            }
        }
        let mut shared = false;
        for (shard, lines) in self.jobs.iter_mut().enumerate() {
            if !lines.is_empty() {
                shared = true;
                let job = Job {
                    chunk: self.buf.clone(),
                    lines: std::mem::replace(lines, Vec::with_capacity(self.lines.len())),
                };
                pool.dispatch(shard, job);
            }
        }
        for &(s, e) in &self.inline {
            node.handle(&self.buf[s as usize..e as usize], &mut self.out);
            if self.out.len() >= FLUSH_AT {
                output.submit(&mut self.out);
            }
        }
        self.inline.clear();
        output.submit(&mut self.out);
        if shared {
            self.switch_chunk();
        }
    }

    /// Moves to a free chunk, carrying over the incomplete line.
    fn switch_chunk(&mut self) {
        let tail = self.filled - self.start;
        let want = (tail + CHUNK).max(CHUNK);
        let free = self
            .spares
            .iter()
            .position(|c| Arc::strong_count(c) == 1 && c.len() >= want);
        let mut next = match free {
            Some(i) => self.spares.swap_remove(i),
            None => Arc::new(vec![0; want]),
        };
        let Some(data) = Arc::get_mut(&mut next) else {
            unreachable!("a free spare has no other owner")
        };
        data[..tail].copy_from_slice(&self.buf[self.start..self.filled]);
        let old = std::mem::replace(&mut self.buf, next);
        if self.spares.len() >= SPARES {
            self.spares.remove(0);
        }
        self.spares.push(old);
        self.start = 0;
        self.filled = tail;
    }

    /// Ensures at least [`MIN_READ`] free bytes after `filled`.
    fn make_room(&mut self) {
        if self.start == self.filled {
            self.start = 0;
            self.filled = 0;
        }
        let len = self.buf.len();
        if len - self.filled >= MIN_READ {
            return;
        }
        let Some(data) = Arc::get_mut(&mut self.buf) else {
            unreachable!("the reader's current chunk is never shared while it reads")
        };
        if self.start > 0 {
            data.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
        }
        if len - self.filled < MIN_READ {
            // One line fills the chunk: grow it (the line is at most the limit, see `split`).
            data.resize(
                (len * 2)
                    .min(self.max_line + CHUNK)
                    .max(self.filled + MIN_READ),
                0,
            );
        }
    }

    /// At the end of the input: a last line without a newline is still served.
    fn finish(&mut self, node: &Node, pool: Option<&Pool>, output: &Output, eof: bool) {
        self.lines.clear();
        if eof && !self.discarding && self.filled > self.start {
            self.lines.push((self.start as u32, self.filled as u32));
            self.start = self.filled;
        }
        self.serve(node, pool, output);
    }
}
