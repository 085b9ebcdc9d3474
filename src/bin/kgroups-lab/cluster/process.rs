//! One node process and its three pipes.
//!
//! - **stdin**: a writer thread owns the pipe. It takes whole lines from a channel, writes them through a
//!   buffer and flushes whenever the channel is momentarily empty, so bursts cost one `write` syscall.
//! - **stdout**: a reader thread hands every line (without its newline) to a callback — the router.
//! - **stderr**: copied to a log file (or discarded), never mixed into the lab's own output.
//!
//! Nothing here knows about Maelstrom messages; the throughput mode reuses it as is.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

/// What the writer thread of a node receives.
#[derive(Debug)]
pub enum Input {
    /// One line to write; it must end with `\n`.
    Line(Vec<u8>),
    /// Close the node's stdin (the node sees end of input).
    Close,
}

/// A spawned node process.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    threads: Vec<JoinHandle<()>>,
}

impl NodeProcess {
    /// Spawns `bin args…` with piped stdio. Lines sent on the channel whose receiving end is `input` are
    /// written to its stdin; every line it writes on stdout is passed to `on_line`; `on_exit` runs once
    /// when its stdout closes (the process ended or closed it). Its stderr goes to `log`, if given.
    pub fn spawn(
        id: &str,
        bin: &Path,
        args: &[String],
        log: Option<&Path>,
        input: Receiver<Input>,
        mut on_line: impl FnMut(&[u8]) + Send + 'static,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> io::Result<NodeProcess> {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let mut log_file = match log {
            Some(path) => Some(File::create(path)?),
            None => None,
        };
        let mut threads = Vec::with_capacity(3);
        threads.push(
            thread::Builder::new()
                .name(format!("{id}-stdin"))
                .spawn(move || write_loop(stdin, input))?,
        );
        threads.push(
            thread::Builder::new()
                .name(format!("{id}-stdout"))
                .spawn(move || {
                    let mut reader = BufReader::with_capacity(1 << 16, stdout);
                    let mut line = Vec::with_capacity(1024);
                    loop {
                        line.clear();
                        match reader.read_until(b'\n', &mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {
                                while matches!(line.last(), Some(b'\n' | b'\r')) {
                                    line.pop();
                                }
                                if !line.is_empty() {
                                    on_line(&line);
                                }
                            }
                        }
                    }
                    on_exit();
                })?,
        );
        threads.push(
            thread::Builder::new()
                .name(format!("{id}-stderr"))
                .spawn(move || {
                    let mut buf = [0u8; 8192];
                    loop {
                        match stderr.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if let Some(f) = log_file.as_mut() {
                                    let _ = f.write_all(&buf[..n]);
                                }
                            }
                        }
                    }
                })?,
        );
        Ok(NodeProcess { child, threads })
    }

    /// Waits up to `grace` for the process to exit by itself (its stdin should be closed first), then
    /// kills it. Joins the pipe threads. Returns the exit status, if one could be collected.
    pub fn stop(mut self, grace: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + grace;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => {
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
                Err(_) => break None,
            }
        };
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        status
    }
}

/// The stdin writer: batch whatever is queued, flush when the queue runs dry.
fn write_loop(stdin: ChildStdin, input: Receiver<Input>) {
    let mut out = BufWriter::with_capacity(1 << 16, stdin);
    'outer: while let Ok(first) = input.recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Input::Line(line) => {
                    if out.write_all(&line).is_err() {
                        break 'outer;
                    }
                }
                Input::Close => break 'outer,
            }
            next = match input.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => break 'outer,
            };
        }
        if out.flush().is_err() {
            break;
        }
    }
    let _ = out.flush();
    // Dropping the writer closes the pipe: the node sees end of input.
}

/// Creates the channel that feeds a node's stdin.
pub fn input_channel() -> (Sender<Input>, Receiver<Input>) {
    crossbeam_channel::unbounded()
}
