//! `kgroups-echo`: the floor of the throughput bench — a node that does nothing but answer.
//!
//! One thread reads stdin in large chunks, answers every complete line at once with a minimal
//! `<type>_ok` reply and writes the replies of a chunk with one `write`. It decodes with the same
//! [`kgroups::maelstrom::wire`] decoder as the real node, so the floor includes the parse every Maelstrom
//! node must do, and nothing else:
//! - `send {key}` → `send_ok {offset}`, the offset a per-key counter (so the bench's order checks
//!   pass);
//! - `poll {offsets: {k: from}}` → `poll_ok {msgs: {k: [[from, 0]]}}` (one record at `from`);
//! - group `poll {group}` → `poll_ok {msgs: [], partitions: [], generation: 0}`;
//! - `list_committed_offsets` → `{offsets: {}}`; anything else → `<type>_ok {}`.
//!
//! It stores nothing, so the bench does not read records back from it. `--fault stale-offset`
//! answers every `send` with offset 0, for the tests that prove the bench's checks catch a bad node.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use kgroups::maelstrom::wire::{self, reply, Field, JsonOut};

/// A deliberate fault, for tests of the bench's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every `send_ok` carries offset 0.
    StaleOffset,
}

/// Per-key offset counters: small decimal keys in a vector, any other key in a map.
#[derive(Debug, Default)]
struct Counters {
    small: Vec<u64>,
    other: HashMap<String, u64>,
}

impl Counters {
    fn next(&mut self, key: &str) -> u64 {
        if let Ok(i) = key.parse::<usize>() {
            if i < 1 << 16 {
                if self.small.len() <= i {
                    self.small.resize(i + 1, 0);
                }
                let v = self.small[i];
                self.small[i] += 1;
                return v;
            }
        }
        let c = self.other.entry(key.to_string()).or_insert(0);
        *c += 1;
        *c - 1
    }
}

/// The echo node over `input` and `output`, until end of input.
pub fn run(mut input: impl Read, mut output: impl Write, fault: Option<Fault>) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let (mut start, mut end) = (0usize, 0usize);
    let mut out = Vec::with_capacity(256 * 1024);
    let mut node_id = String::from("n0");
    let mut counters = Counters::default();
    let mut next_id = 0u64;
    loop {
        if start > 0 && start == end {
            (start, end) = (0, 0);
        }
        if end == buf.len() {
            if start > 0 {
                buf.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            } else {
                buf.resize(buf.len() * 2, 0);
            }
        }
        let n = input.read(&mut buf[end..])?;
        if n == 0 {
            break;
        }
        end += n;
        while let Some(nl) = memchr::memchr(b'\n', &buf[start..end]) {
            let line = &buf[start..start + nl];
            start += nl + 1;
            answer(
                line,
                &mut node_id,
                &mut counters,
                &mut next_id,
                fault,
                &mut out,
            );
        }
        if !out.is_empty() {
            output.write_all(&out)?;
            output.flush()?;
            out.clear();
        }
    }
    Ok(())
}

/// Writes the reply to one line (none for a line it cannot decode).
fn answer(
    line: &[u8],
    node_id: &mut String,
    counters: &mut Counters,
    next_id: &mut u64,
    fault: Option<Fault>,
    out: &mut Vec<u8>,
) {
    let Ok(m) = wire::decode(line) else {
        return;
    };
    let Ok(ty) = m.body.str(Field::Type) else {
        return;
    };
    let ty = ty.raw();
    let in_reply_to = m.body.opt_u64(Field::MsgId).ok().flatten();
    if ty == "init" {
        if let Ok(id) = m.body.str(Field::NodeId) {
            *node_id = id.raw().to_string();
        }
    }
    reply::begin(out, node_id, m.src.raw(), ty, "_ok");
    match ty {
        "send" => {
            let key = m.body.raw(Field::Key).map(|k| match k.as_str() {
                Some(s) => s.raw(),
                None => k.text(),
            });
            let offset = match (fault, key) {
                (Some(Fault::StaleOffset), _) => 0,
                (None, Ok(k)) => counters.next(k),
                (None, Err(_)) => counters.next(""),
            };
            out.key("offset").uint(offset);
        }
        "poll" if m.body.get(Field::Group).is_some() => {
            out.key("msgs").raw(b"[]");
            out.key("partitions").raw(b"[]");
            out.key("generation").uint(0);
        }
        "poll" => {
            out.key("msgs").push(b'{');
            if let Ok(offsets) = m.body.object(Field::Offsets) {
                for (i, (k, v)) in offsets.entries().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.raw_string(k.raw()).raw(b":[[").raw(v.text().as_bytes());
                    out.raw(b",0]]");
                }
            }
            out.push(b'}');
        }
        "list_committed_offsets" => {
            out.key("offsets").raw(b"{}");
        }
        _ => {}
    }
    reply::end(out, in_reply_to, *next_id);
    *next_id += 1;
}

fn main() {
    std::process::exit(run_main());
}

/// `kgroups-echo [--fault stale-offset]` on stdin and stdout; returns the exit code.
fn run_main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fault = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => None,
        ["--fault", "stale-offset"] => Some(Fault::StaleOffset),
        _ => {
            eprintln!("usage: kgroups-echo [--fault stale-offset]");
            return 2;
        }
    };
    let stdin = io::stdin();
    let stdout = io::stdout();
    match run(stdin.lock(), stdout.lock(), fault) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kgroups-echo: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(input: &str, fault: Option<Fault>) -> String {
        let mut out = Vec::new();
        run(input.as_bytes(), &mut out, fault).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn answers_init_and_counts_offsets_per_key() {
        let out = echo(
            concat!(
                r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#,
                "\n",
                r#"{"src":"c1","dest":"n1","body":{"type":"send","msg_id":2,"key":"7","msg":5}}"#,
                "\n",
                r#"{"src":"c1","dest":"n1","body":{"type":"send","msg_id":3,"key":"7","msg":6}}"#,
                "\n",
                r#"{"src":"c1","dest":"n1","body":{"type":"poll","msg_id":4,"offsets":{"7":1}}}"#,
                "\n",
            ),
            None,
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"src":"n1","dest":"c0","body":{"type":"init_ok","in_reply_to":1,"msg_id":0}}"#
        );
        assert!(lines[1].contains(r#""type":"send_ok","offset":0,"in_reply_to":2"#));
        assert!(lines[2].contains(r#""offset":1,"in_reply_to":3"#));
        assert!(lines[3].contains(r#""msgs":{"7":[[1,0]]}"#), "{}", lines[3]);
    }

    #[test]
    fn stale_offset_fault_repeats_zero() {
        let line =
            r#"{"src":"c1","dest":"n0","body":{"type":"send","msg_id":2,"key":"7","msg":5}}"#;
        let out = echo(&format!("{line}\n{line}\n"), Some(Fault::StaleOffset));
        assert_eq!(out.matches(r#""offset":0,"#).count(), 2);
    }
}
