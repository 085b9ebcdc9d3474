//! Fast parsers for the replies the bench reads most, in exactly the byte layout kgroups (and
//! `kgroups-echo`) write them. Each parser accepts only that layout, byte for byte, and returns
//! `None` for anything else (fields in another order, whitespace, escapes, a string where a number
//! was expected, …); the reader then decodes the line with the general scanner, which checks the
//! same things. So another binary (`--bench --bin`) still works, only at the general scanner's
//! cost, and a line the fast path accepts means exactly what the general scanner would read.
//!
//! The layouts (`src/maelstrom/wire/reply.rs` `begin`/`end`, `src/maelstrom/kafka_workload.rs`,
//! `src/maelstrom/groups.rs`):
//!
//! ```text
//! {"src":"<node>","dest":"c<C>","body":{"type":"<type>"<body>,"in_reply_to":<I>,"msg_id":<M>}}
//! send_ok:           <body> = ,"offset":<O>
//! commit_offsets_ok: <body> = (empty)
//! kafka poll_ok:     <body> = ,"msgs":{} | ,"msgs":{"<key>":[[<O>,<msg>],…]}
//! group poll_ok:     <body> = ,"msgs":[{"topic":"<t>","partition":<P>,"offset":<O>,"key":"<key>",
//!                              "msg":<msg>},…],"partitions":[<P>,…],"generation":<G>
//! ```
//!
//! Keys and messages are the bench's own: decimal keys, integer messages. A kafka poll is accepted
//! only with at most one key (the bench polls one key at a time); more go to the general path.

/// The common frame of a reply: who it is for, what it answers, its type and the bytes of its body
/// between the type and `,"in_reply_to"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head<'a> {
    /// `C` of `"dest":"c<C>"`.
    pub client: usize,
    pub in_reply_to: u64,
    /// The type, without quotes.
    pub ty: &'a [u8],
    /// Everything after the type's closing quote, up to `,"in_reply_to":`.
    pub body: &'a [u8],
}

/// The frame of `line` from `node`, if it is in kgroups' layout.
#[inline]
pub(super) fn head<'a>(line: &'a [u8], node: &str) -> Option<Head<'a>> {
    let rest = line.strip_prefix(b"{\"src\":\"")?;
    let rest = rest.strip_prefix(node.as_bytes())?;
    let rest = rest.strip_prefix(b"\",\"dest\":\"c")?;
    let (client, rest) = digits(rest)?;
    let rest = rest.strip_prefix(b"\",\"body\":{\"type\":\"")?;
    let n = rest
        .iter()
        .take_while(|&&b| b.is_ascii_lowercase() || b == b'_')
        .count();
    let (ty, rest) = rest.split_at(n);
    let rest = rest.strip_prefix(b"\"")?;
    let rest = rest.strip_suffix(b"}}")?;
    let (_, rest) = digits_back(rest)?;
    let rest = rest.strip_suffix(b",\"msg_id\":")?;
    let (in_reply_to, rest) = digits_back(rest)?;
    let body = rest.strip_suffix(b",\"in_reply_to\":")?;
    Some(Head {
        client: usize::try_from(client).ok()?,
        in_reply_to,
        ty,
        body,
    })
}

/// The offset of a `send_ok` body.
#[inline]
pub(super) fn send_ok(body: &[u8]) -> Option<u64> {
    let (off, rest) = digits(body.strip_prefix(b",\"offset\":")?)?;
    rest.is_empty().then_some(off)
}

/// A kafka `poll_ok` body with at most one key: the key, if any, and its records `(key, offset,
/// msg)` appended to `recs`.
#[inline]
pub(super) fn kafka_poll(body: &[u8], recs: &mut Vec<(u64, u64, u64)>) -> Option<Option<u64>> {
    let rest = body.strip_prefix(b",\"msgs\":{")?;
    if rest == b"}" {
        return Some(None);
    }
    let (key, mut rest) = digits(rest.strip_prefix(b"\"")?)?;
    rest = rest.strip_prefix(b"\":[")?;
    loop {
        let (off, r) = digits(rest.strip_prefix(b"[")?)?;
        let (msg, r) = digits(r.strip_prefix(b",")?)?;
        recs.push((key, off, msg));
        rest = r.strip_prefix(b"]")?;
        match rest.split_first()? {
            (b',', r) => rest = r,
            (b']', r) => return (r == b"}").then_some(Some(key)),
            _ => return None,
        }
    }
}

/// A group `poll_ok` body: its records `(key, offset, msg)` appended to `recs`.
#[inline]
pub(super) fn group_poll(body: &[u8], recs: &mut Vec<(u64, u64, u64)>) -> Option<()> {
    let mut rest = body.strip_prefix(b",\"msgs\":[")?;
    if let Some(r) = rest.strip_prefix(b"]") {
        rest = r;
    } else {
        loop {
            let r = rest.strip_prefix(b"{\"topic\":\"")?;
            // A topic name without quotes or escapes.
            let n = r.iter().take_while(|&&b| b != b'"' && b != b'\\').count();
            let r = r[n..].strip_prefix(b"\",\"partition\":")?;
            let (_, r) = digits(r)?;
            let (off, r) = digits(r.strip_prefix(b",\"offset\":")?)?;
            let (key, r) = digits(r.strip_prefix(b",\"key\":\"")?)?;
            let (msg, r) = digits(r.strip_prefix(b"\",\"msg\":")?)?;
            recs.push((key, off, msg));
            match r.strip_prefix(b"}")?.split_first()? {
                (b',', r) => rest = r,
                (b']', r) => {
                    rest = r;
                    break;
                }
                _ => return None,
            }
        }
    }
    let mut rest = rest.strip_prefix(b",\"partitions\":[")?;
    if let Some(r) = rest.strip_prefix(b"]") {
        rest = r;
    } else {
        loop {
            let (_, r) = digits(rest)?;
            match r.split_first()? {
                (b',', r) => rest = r,
                (b']', r) => {
                    rest = r;
                    break;
                }
                _ => return None,
            }
        }
    }
    let (_, rest) = digits(rest.strip_prefix(b",\"generation\":")?)?;
    rest.is_empty().then_some(())
}

/// A JSON non-negative integer of 1 to 19 digits (no leading zero) and what follows it.
#[inline]
pub(super) fn digits(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    let mut n = 0;
    while n < s.len() && n < 20 {
        let d = s[n].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        // No overflow: at most 19 digits are accepted, and 10^19 - 1 < u64::MAX; a 20th digit
        // is rejected below (wrapping keeps that case from panicking in debug builds).
        v = v.wrapping_mul(10).wrapping_add(u64::from(d));
        n += 1;
    }
    if n == 0 || n > 19 || (n > 1 && s[0] == b'0') {
        return None;
    }
    Some((v, &s[n..]))
}

/// The same, at the end of `s`: the integer and what precedes it.
#[inline]
fn digits_back(s: &[u8]) -> Option<(u64, &[u8])> {
    let n = s
        .iter()
        .rev()
        .take(20)
        .take_while(|b| b.is_ascii_digit())
        .count();
    let at = s.len() - n;
    if n == 0 || n > 19 || (n > 1 && s[at] == b'0') {
        return None;
    }
    Some((number(&s[at..]), &s[..at]))
}

#[inline]
fn number(d: &[u8]) -> u64 {
    d.iter().fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use kgroups::broker::Config;
    use kgroups::maelstrom::wire::{self, Field};
    use kgroups::maelstrom::Node;

    /// The node's real replies to `requests` (after an init), one per line.
    fn replies(requests: &[String]) -> Vec<String> {
        let node = Node::new(Config::default());
        let mut out = Vec::new();
        node.handle(
            br#"{"src":"c99","dest":"n0","body":{"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0"]}}"#,
            &mut out,
        );
        out.clear();
        for r in requests {
            node.handle(r.as_bytes(), &mut out);
        }
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn send(c: usize, id: u64, key: u64, msg: u64) -> String {
        format!(
            r#"{{"src":"c{c}","dest":"n0","body":{{"type":"send","msg_id":{id},"key":"{key}","msg":{msg}}}}}"#
        )
    }

    /// The general scanner's reading of a group poll_ok: (key, offset, msg) of every record.
    fn general_group(line: &str) -> Vec<(u64, u64, u64)> {
        let m = wire::decode(line.as_bytes()).unwrap();
        m.body
            .array(Field::Msgs)
            .unwrap()
            .items()
            .map(|rec| {
                let (mut k, mut o, mut v) = (None, None, None);
                for (name, val) in rec.entries() {
                    match name.raw() {
                        "key" => k = val.as_str().and_then(|s| s.raw().parse().ok()),
                        "offset" => o = val.as_u64(),
                        "msg" => v = val.as_u64(),
                        _ => {}
                    }
                }
                (k.unwrap(), o.unwrap(), v.unwrap())
            })
            .collect()
    }

    /// The general scanner's reading of a kafka poll_ok.
    fn general_kafka(line: &str) -> Vec<(u64, u64, u64)> {
        let m = wire::decode(line.as_bytes()).unwrap();
        let mut out = Vec::new();
        for (k, recs) in m.body.object(Field::Msgs).unwrap().entries() {
            for rec in recs.items() {
                let mut it = rec.items();
                out.push((
                    k.raw().parse().unwrap(),
                    it.next().unwrap().as_u64().unwrap(),
                    it.next().unwrap().as_u64().unwrap(),
                ));
            }
        }
        out
    }

    fn general_head(line: &str) -> (String, u64, String) {
        let m = wire::decode(line.as_bytes()).unwrap();
        (
            m.dest.unwrap().raw().to_string(),
            m.body.u64(Field::InReplyTo).unwrap(),
            m.body.str(Field::Type).unwrap().raw().to_string(),
        )
    }

    fn fast_head(line: &str) -> (String, u64, String) {
        let h = head(line.as_bytes(), "n0").unwrap_or_else(|| panic!("no fast head: {line}"));
        (
            format!("c{}", h.client),
            h.in_reply_to,
            String::from_utf8(h.ty.to_vec()).unwrap(),
        )
    }

    #[test]
    fn group_poll_of_the_real_node_reads_as_the_general_scanner_reads_it() {
        let mut reqs: Vec<String> = (0..300).map(|i| send(1, i + 1, i % 7, 1000 + i)).collect();
        for id in 1..=4 {
            reqs.push(format!(
                r#"{{"src":"c2","dest":"n0","body":{{"type":"poll","msg_id":{id},"group":"g0","consumer":"c2","max_messages":100}}}}"#
            ));
        }
        let lines = replies(&reqs);
        let polls = &lines[300..];
        assert_eq!(polls.len(), 4);
        let mut total = 0;
        for line in polls {
            let h = head(line.as_bytes(), "n0").unwrap();
            assert_eq!(fast_head(line), general_head(line));
            assert_eq!(h.ty, b"poll_ok");
            let mut recs = Vec::new();
            assert_eq!(group_poll(h.body, &mut recs), Some(()), "{line}");
            assert_eq!(recs, general_group(line), "{line}");
            total += recs.len();
        }
        // 300 records in batches of at most 100, the last poll empty.
        assert_eq!(total, 300);
        assert!(polls[3].contains(r#""msgs":[]"#), "{}", polls[3]);
        // And the sends: offset and in_reply_to as the general scanner reads them.
        for line in &lines[..300] {
            let h = head(line.as_bytes(), "n0").unwrap();
            assert_eq!(fast_head(line), general_head(line));
            let m = wire::decode(line.as_bytes()).unwrap();
            assert_eq!(send_ok(h.body), Some(m.body.u64(Field::Offset).unwrap()));
        }
    }

    #[test]
    fn kafka_poll_and_commit_of_the_real_node_read_as_the_general_scanner_reads_them() {
        let mut reqs: Vec<String> = (0..50).map(|i| send(1, i + 1, i % 3, 7 * i)).collect();
        for (id, (key, from)) in [(0, 0), (1, 5), (2, 0), (2, 1_000_000)].iter().enumerate() {
            reqs.push(format!(
                r#"{{"src":"c3","dest":"n0","body":{{"type":"poll","msg_id":{},"offsets":{{"{key}":{from}}}}}}}"#,
                id + 1
            ));
        }
        reqs.push(
            r#"{"src":"c3","dest":"n0","body":{"type":"commit_offsets","msg_id":9,"offsets":{"1":3}}}"#
                .to_string(),
        );
        let lines = replies(&reqs);
        let (polls, commit) = (&lines[50..54], &lines[54]);
        let mut counts = Vec::new();
        for line in polls {
            let h = head(line.as_bytes(), "n0").unwrap();
            assert_eq!(fast_head(line), general_head(line));
            let mut recs = Vec::new();
            let key = kafka_poll(h.body, &mut recs).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(recs, general_kafka(line), "{line}");
            assert_eq!(key, recs.first().map(|r| r.0));
            counts.push(recs.len());
        }
        // Every key has records from 0; none is past its end.
        assert!(counts[0] > 1 && counts[2] > 1, "{counts:?}");
        assert_eq!(counts[3], 0);
        let h = head(commit.as_bytes(), "n0").unwrap();
        assert_eq!(fast_head(commit), general_head(commit));
        assert_eq!((h.ty, h.body), (&b"commit_offsets_ok"[..], &b""[..]));
    }

    #[test]
    fn digits_read_json_integers_of_up_to_19_digits() {
        assert_eq!(digits(b"0,"), Some((0, &b","[..])));
        assert_eq!(digits(b"907}"), Some((907, &b"}"[..])));
        let max = b"9999999999999999999";
        assert_eq!(digits(max), Some((9_999_999_999_999_999_999, &b""[..])));
        assert_eq!(
            digits_back(b"x9999999999999999999"),
            Some((9_999_999_999_999_999_999, &b"x"[..]))
        );
        assert_eq!(digits(b"99999999999999999999"), None); // 20 digits
        assert_eq!(digits_back(b"99999999999999999999"), None);
        assert_eq!(digits(b"01"), None);
        assert_eq!(digits_back(b"x01"), None);
        assert_eq!(digits(b"-1"), None);
        assert_eq!(digits(b""), None);
        assert_eq!(digits_back(b"x"), None);
    }

    #[test]
    fn another_layout_falls_back() {
        let reordered_group = r#"{"src":"n0","dest":"c2","body":{"type":"poll_ok","msgs":[{"partition":7,"topic":"default","offset":0,"key":"3","msg":7}],"partitions":[7],"generation":1,"in_reply_to":1,"msg_id":3}}"#;
        let h = head(reordered_group.as_bytes(), "n0").unwrap();
        assert_eq!(group_poll(h.body, &mut Vec::new()), None);
        // The general scanner reads it.
        assert_eq!(general_group(reordered_group), [(3, 0, 7)]);
        for line in [
            // in_reply_to before type
            r#"{"src":"n0","dest":"c1","body":{"in_reply_to":1,"type":"send_ok","offset":0,"msg_id":1}}"#,
            // dest before src
            r#"{"dest":"c1","src":"n0","body":{"type":"send_ok","offset":0,"in_reply_to":1,"msg_id":1}}"#,
            // whitespace
            r#"{"src":"n0","dest":"c1","body":{"type":"send_ok","offset":0,"in_reply_to":1, "msg_id":1}}"#,
            // another node id, a client name not c<digits>
            r#"{"src":"n1","dest":"c1","body":{"type":"send_ok","offset":0,"in_reply_to":1,"msg_id":1}}"#,
            r#"{"src":"n0","dest":"x1","body":{"type":"send_ok","offset":0,"in_reply_to":1,"msg_id":1}}"#,
            // a leading zero
            r#"{"src":"n0","dest":"c1","body":{"type":"send_ok","offset":0,"in_reply_to":01,"msg_id":1}}"#,
        ] {
            assert_eq!(head(line.as_bytes(), "n0"), None, "{line}");
        }
        // A well-framed body in another order or with other values.
        for body in [
            &b",\"offset\":\"0\""[..],
            b",\"offset\":0,\"x\":1",
            b",\"offset\":-1",
        ] {
            assert_eq!(send_ok(body), None);
        }
        let mut recs = Vec::new();
        for body in [
            &b",\"msgs\":{\"1\":[[0,7]],\"2\":[[0,8]]}"[..], // two keys
            b",\"msgs\":{\"1\":[[0,\"a\"]]}",                // a string msg
            b",\"msgs\":{\"k\":[[0,7]]}",                    // a key that is not a number
            b",\"msgs\":{\"1\":[[0,7]]},\"more\":1",
        ] {
            assert_eq!(kafka_poll(body, &mut recs), None);
        }
        for body in [
            &b",\"msgs\":[{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"key\":\"a\",\"msg\":1}],\"partitions\":[],\"generation\":1"[..],
            b",\"msgs\":[{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"key\":\"1\",\"msg\":1}],\"generation\":1,\"partitions\":[]",
            b",\"msgs\":[{\"topic\":\"t\\\"\",\"partition\":0,\"offset\":0,\"key\":\"1\",\"msg\":1}],\"partitions\":[],\"generation\":1",
            b",\"msgs\":[],\"partitions\":[],\"generation\":1,\"x\":2",
        ] {
            assert_eq!(group_poll(body, &mut recs), None);
        }
    }
}
