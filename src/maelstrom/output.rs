//! The node's output: one writer at a time, batches, and no hand-off when the output is idle.
//!
//! Threads [`submit`](Output::submit) whole batches of reply lines. Exactly one thread writes to the
//! sink at any moment (the one that holds the `busy` flag), so the sink's lock is never contended:
//! - when nothing is queued and nobody is writing, the submitting thread writes its batch itself, at
//!   once — a lone request costs no thread wake-up on the way out;
//! - otherwise the batch is appended to the queue, and the writer thread (parked while the queue is
//!   empty) takes the whole queue in one swap and writes it with one call: batches grow by themselves
//!   under load, and the writer flushes as soon as it is idle.
//!
//! Order: bytes reach the sink in the order their `submit` calls took the state lock, since a direct
//! write only happens when the queue is empty and no other write is in progress. The node relies on
//! this for per-client reply order (see [`super::pool`]).
//!
//! Wake-ups: the writer thread waits on a condition variable of the state lock, and marks itself
//! `parked` under that lock before it waits (the wait releases the lock atomically). A submitter
//! that sees `parked` under the same lock notifies it, so no wake-up is lost, whenever the writer
//! thread started: there is no thread handle to publish first.
//!
//! A panic while writing (a bug: the sink's errors are handled) ends the process with a message
//! ([`super::guard`]): a line may be half written, and the output cannot go on.

use super::guard;
use crate::loom::{lock, Condvar, Mutex, MutexGuard, StdArc as Arc};
use std::io::Write;
use std::thread::{self, JoinHandle};

/// Queued bytes above which the writer gives the spare buffer's memory back after a write.
const KEEP_CAPACITY: usize = 4 << 20;

struct State {
    /// Bytes waiting for the writer thread.
    queue: Vec<u8>,
    /// A thread is writing to the sink.
    busy: bool,
    /// The writer thread waits on `wake` for bytes.
    parked: bool,
    /// No more bytes will come: the writer thread exits once the queue is empty.
    closed: bool,
}

struct Sink {
    w: Box<dyn Write + Send>,
    /// A write failed (e.g. stdout closed); later bytes are dropped.
    broken: bool,
}

/// The node's output; see the module docs.
pub struct Output {
    state: Mutex<State>,
    /// Where the writer thread waits while `parked`.
    wake: Condvar,
    sink: Mutex<Sink>,
}

impl Output {
    /// An output writing to `sink`. Call [`Output::spawn_writer`] before submitting.
    pub fn new(sink: impl Write + Send + 'static) -> Arc<Self> {
        Arc::new(Output {
            state: Mutex::new(State {
                queue: Vec::new(),
                busy: false,
                parked: false,
                closed: false,
            }),
            wake: Condvar::new(),
            sink: Mutex::new(Sink {
                w: Box::new(sink),
                broken: false,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Writes `bytes` to the sink. Only the holder of `busy` calls this, so the lock is uncontended.
    fn write(&self, bytes: &[u8]) {
        let mut sink = lock(&self.sink);
        if sink.broken {
            return;
        }
        let written = guard::or_exit("the output (writing to stdout)", || {
            guard::inject("output");
            sink.w.write_all(bytes).and_then(|()| sink.w.flush())
        });
        if let Err(e) = written {
            sink.broken = true;
            tracing::error!("output failed, dropping all further output: {e}");
        }
    }

    /// Wakes the writer thread if it waits (`st` is the state lock's guard).
    fn wake(&self, st: &mut State) {
        if st.parked {
            st.parked = false;
            self.wake.notify_one();
        }
    }

    /// Hands over a batch of complete lines; leaves `bytes` empty (its capacity may be swapped for
    /// another buffer's, so callers can keep reusing it without allocating).
    pub fn submit(&self, bytes: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let mut st = self.state();
        if !st.busy && st.queue.is_empty() {
            st.busy = true;
            drop(st);
            self.write(bytes);
            bytes.clear();
            let mut st = self.state();
            st.busy = false;
            if !st.queue.is_empty() {
                self.wake(&mut st);
            }
        } else {
            if st.queue.is_empty() {
                std::mem::swap(&mut st.queue, bytes);
            } else {
                st.queue.extend_from_slice(bytes);
                bytes.clear();
            }
            if !st.busy {
                self.wake(&mut st);
            }
        }
    }

    /// Starts the writer thread.
    pub fn spawn_writer(self: &Arc<Self>) -> std::io::Result<JoinHandle<()>> {
        let me = self.clone();
        thread::Builder::new()
            .name("kgroups-writer".into())
            .spawn(move || me.writer_loop())
    }

    /// Lets the writer thread exit once everything submitted so far is written.
    pub fn close(&self) {
        let mut st = self.state();
        st.closed = true;
        st.parked = false;
        self.wake.notify_one();
    }

    fn writer_loop(&self) {
        let mut spare = Vec::new();
        loop {
            let mut st = self.state();
            while st.queue.is_empty() || st.busy {
                if st.closed && st.queue.is_empty() {
                    return;
                }
                st.parked = true;
                st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            std::mem::swap(&mut st.queue, &mut spare);
            st.busy = true;
            drop(st);
            self.write(&spare);
            spare.clear();
            if spare.capacity() > KEEP_CAPACITY {
                spare = Vec::new();
            }
            self.state().busy = false;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A sink that shares what it got.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn concurrent_submits_keep_lines_whole_and_per_thread_order() {
        let sink = Shared::default();
        let out = Output::new(sink.clone());
        let writer = out.spawn_writer().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let out = out.clone();
                thread::spawn(move || {
                    let mut buf = Vec::new();
                    for i in 0..2000 {
                        buf.extend_from_slice(format!("{t} {i}\n").as_bytes());
                        if i % 7 == 0 {
                            out.submit(&mut buf);
                            assert!(buf.is_empty());
                        }
                    }
                    out.submit(&mut buf);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        out.close();
        writer.join().unwrap();
        let got = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let mut next = [0u32; 4];
        for line in got.lines() {
            let (t, i) = line.split_once(' ').unwrap();
            let (t, i): (usize, u32) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "thread {t} out of order");
            next[t] += 1;
        }
        assert_eq!(next, [2000; 4]);
    }
}
