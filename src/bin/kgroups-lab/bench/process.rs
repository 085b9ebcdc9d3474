//! The node under test: one child process with raw pipes, its CPU time and its peak memory.
//!
//! The bench drives the pipes itself (no router, no channel per line): a writer thread owns stdin, a
//! reader thread owns stdout through a [`LineReader`]. The node's CPU time during the load is read
//! from `/proc/<pid>/task/*/schedstat` (see [`NodeChild::cpu`]); after the load, stdin is closed and
//! `wait4` returns the child's whole resource usage, including its peak RSS.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// A spawned node.
#[derive(Debug)]
pub struct NodeChild {
    /// Its process id (the lab reaps it with `wait4`, not through std's `Child`).
    pub pid: i32,
}

/// What `wait4` reports once the node has exited.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exit {
    /// User + system CPU time of the whole life of the process.
    pub cpu: Duration,
    /// Peak resident set size in bytes.
    pub max_rss: u64,
}

impl NodeChild {
    /// Spawns `bin args…` with piped stdin and stdout; stderr goes to `log` (or nowhere).
    pub fn spawn(
        bin: &Path,
        args: &[String],
        log: Option<&Path>,
    ) -> io::Result<(NodeChild, ChildStdin, ChildStdout)> {
        let stderr = match log {
            Some(p) => Stdio::from(File::create(p)?),
            None => Stdio::null(),
        };
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let pid = child.id() as i32;
        Ok((NodeChild { pid }, stdin, stdout))
    }

    /// CPU time of the node so far: the sum over its live threads of `/proc/<pid>/task/*/schedstat`
    /// (nanoseconds on CPU), else user + system time of `/proc/<pid>/stat` (clock ticks, all
    /// threads); `None` if neither is readable. The node's threads live as long as it does, so the
    /// difference of two readings is the CPU it spent between them.
    pub fn cpu(&self) -> Option<Duration> {
        self.schedstat_cpu().or_else(|| self.stat_cpu())
    }

    fn schedstat_cpu(&self) -> Option<Duration> {
        let mut ns = 0u64;
        for t in std::fs::read_dir(format!("/proc/{}/task", self.pid)).ok()? {
            let path = t.ok()?.path().join("schedstat");
            let s = std::fs::read_to_string(path).ok()?;
            ns += s.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        (ns > 0).then(|| Duration::from_nanos(ns))
    }

    fn stat_cpu(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // Fields after the command name (which may hold spaces) start at field 3 (state).
        let rest = &stat[stat.rfind(')')? + 2..];
        let mut f = rest.split(' ');
        let utime: u64 = f.nth(11)?.parse().ok()?;
        let stime: u64 = f.next()?.parse().ok()?;
        // SAFETY: 1. sysconf only reads a constant of the running system; 2. it has no other effect.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let hz = if hz > 0 { hz as u64 } else { 100 };
        Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / hz))
    }

    /// Peak resident set size so far (`VmHWM` of `/proc/<pid>/status`), in bytes. Unlike the
    /// `ru_maxrss` of `wait4`, it does not count memory of the lab that the child shared before it
    /// exec'd the node.
    pub fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Waits for the node to exit (its stdin must be closed first) and returns its usage.
    pub fn wait(self) -> io::Result<Exit> {
        let mut status: libc::c_int = 0;
        let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        let r = loop {
            // SAFETY: 1. `status` and `ru` are valid, writable and live for the call; 2. `pid` is
            // our own child, not yet reaped (std's `Child` is never waited on here); 3. a zeroed
            // `rusage` is a valid value, so reading it is sound whatever wait4 wrote.
            let r = unsafe { libc::wait4(self.pid, &mut status, 0, ru.as_mut_ptr()) };
            if r == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break r;
        };
        if r == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: see above: zero-initialized, and wait4 filled it on success.
        let ru = unsafe { ru.assume_init() };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        Ok(Exit {
            cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
            // Linux reports ru_maxrss in KiB.
            max_rss: ru.ru_maxrss as u64 * 1024,
        })
    }
}

/// Complete lines out of a byte stream, read in large chunks, with no copy per line.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: Read> LineReader<R> {
    /// A reader with a 256 KiB buffer (grown for longer lines).
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: vec![0; 256 * 1024],
            start: 0,
            end: 0,
        }
    }

    /// Reads more bytes; `Ok(0)` at end of stream.
    pub fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            } else {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next complete line in the buffer (without its newline), if any.
    pub fn next_line(&mut self) -> Option<&[u8]> {
        let nl = memchr::memchr(b'\n', &self.buf[self.start..self.end])?;
        let line = &self.buf[self.start..self.start + nl];
        self.start += nl + 1;
        Some(line)
    }
}
