//! The checks that need the whole run: every acknowledged record read back at the end, and every
//! group's deliveries covering every acknowledged record.

use super::*;

/// Reads every key back from offset 0 with Maelstrom `poll`s (as client `c<clients>`) and checks
/// that every acknowledged send is there with its value, offsets ascending per key.
pub fn read_back<W: Write, R: Read>(
    plan: &Plan,
    fin: &mut Finished,
    input: &mut W,
    lines: &mut LineReader<R>,
) {
    let me = format!("c{}", plan.total_clients());
    let k = plan.keys;
    let mut from = vec![0u64; k];
    let mut open: Vec<usize> = (0..k).collect();
    let mut got: Vec<Vec<(u64, u64)>> = vec![Vec::new(); k];
    let mut id = 0u64;
    let max_acked: Vec<u64> = fin
        .acks
        .iter()
        .map(|a| a.iter().map(|r| r.0).max().unwrap_or(0))
        .collect();
    let an = &mut fin.outcome.anomalies;
    while !open.is_empty() {
        id += 1;
        let mut req = Vec::with_capacity(64 + open.len() * 16);
        req.extend_from_slice(b"{\"src\":\"");
        req.extend_from_slice(me.as_bytes());
        req.extend_from_slice(b"\",\"dest\":\"");
        req.extend_from_slice(plan.node.as_bytes());
        req.extend_from_slice(b"\",\"body\":{\"type\":\"poll\",\"msg_id\":");
        req.uint(id).extend_from_slice(b",\"offsets\":{");
        for (i, &key) in open.iter().enumerate() {
            if i > 0 {
                req.push(b',');
            }
            req.push(b'"');
            req.uint(key as u64).extend_from_slice(b"\":");
            req.uint(from[key]);
        }
        req.extend_from_slice(b"}}}\n");
        if input.write_all(&req).and_then(|()| input.flush()).is_err() {
            an.add("node-exited", || "stdin closed during the read-back".into());
            return;
        }
        // Read until our reply; other lines (late replies of the load) are skipped.
        let mut advanced = vec![false; k];
        'wait: loop {
            while let Some(line) = lines.next_line() {
                let Ok(m) = wire::decode(line) else { continue };
                if m.dest.map(|d| d.raw()) != Some(me.as_str())
                    || m.body.opt_u64(Field::InReplyTo).ok().flatten() != Some(id)
                {
                    continue;
                }
                let Ok(msgs) = m.body.object(Field::Msgs) else {
                    an.add("malformed-reply", || String::from_utf8_lossy(line).into());
                    return;
                };
                for (key, recs) in msgs.entries() {
                    let Some(key) = key.raw().parse::<usize>().ok().filter(|&x| x < k) else {
                        an.add("poll-wrong-key", || key.raw().to_string());
                        continue;
                    };
                    for rec in recs.items() {
                        let mut it = rec.items();
                        let off = it.next().and_then(|o| o.as_u64());
                        let msg = it.next().filter(|m| m.kind() == Kind::Int);
                        let (Some(off), Some(msg)) = (off, msg.and_then(|m| m.as_u64())) else {
                            an.add("malformed-reply", || rec.text().to_string());
                            continue;
                        };
                        if off < from[key] {
                            an.add("non-monotonic-poll", || {
                                format!("key {key}: read-back from {} got {off}", from[key])
                            });
                            continue;
                        }
                        got[key].push((off, msg));
                        from[key] = off + 1;
                        advanced[key] = true;
                    }
                }
                break 'wait;
            }
            match lines.fill() {
                Ok(0) | Err(_) => {
                    an.add("node-exited", || {
                        "stdout closed during the read-back".into()
                    });
                    return;
                }
                Ok(_) => {}
            }
        }
        // A key is done when a poll returned nothing more, or once it is past every acknowledged
        // offset of that key (a node may hold more; only acknowledged records are checked).
        open.retain(|&key| advanced[key] && from[key] <= max_acked[key]);
    }
    for (key, acks) in fin.acks.iter_mut().enumerate() {
        check_covered(an, "lost-write", key, acks, &mut got[key], |_| {});
    }
}

/// Every acknowledged `(offset, msg)` of `acks` is in `got` with the same msg. Sorts both; counts
/// entries of `got` seen more than once through `dup`.
pub(super) fn check_covered(
    an: &mut Anomalies,
    missing: &'static str,
    key: usize,
    acks: &mut [(u64, u64)],
    got: &mut Vec<(u64, u64)>,
    mut dup: impl FnMut(u64),
) {
    acks.sort_unstable();
    for w in acks.windows(2) {
        if w[0].0 == w[1].0 {
            an.add("duplicate-offset", || {
                format!("key {key}: offset {} acknowledged twice", w[0].0)
            });
        }
    }
    got.sort_unstable();
    let before = got.len();
    got.dedup();
    dup((before - got.len()) as u64);
    let mut j = 0;
    for &(off, msg) in acks.iter() {
        while j < got.len() && got[j].0 < off {
            j += 1;
        }
        match got.get(j) {
            Some(&(o, m)) if o == off && m == msg => {}
            Some(&(o, m)) if o == off => an.add("wrong-value", || {
                format!("key {key} offset {off}: acknowledged {msg}, read {m}")
            }),
            _ => an.add(missing, || {
                format!("key {key}: acknowledged offset {off} (msg {msg}) never read")
            }),
        }
    }
}

/// groups: every group received every acknowledged record. Returns the re-deliveries.
pub fn check_groups(plan: &Plan, fin: &mut Finished) -> u64 {
    let mut redelivered = 0;
    let an = &mut fin.outcome.anomalies;
    for g in 0..plan.groups {
        for key in 0..plan.keys {
            check_covered(
                an,
                "group-missed-record",
                key,
                &mut fin.acks[key],
                &mut fin.recv[g][key],
                |d| redelivered += d,
            );
        }
    }
    redelivered
}
