//! `--reset-offsets`: new committed offsets for every partition of a topic, clamped to the log,
//! printed (`--dry-run`, the default) or committed (`--execute`); refused while the group has
//! live members.

use super::args::{parse_datetime, Args};
use super::client::{self, EARLIEST, LATEST};
use super::conn::Conn;
use super::describe::pretty;
use super::render::table;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// How the new offset is chosen.
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Shift(i64),
    Time(i64),
}

fn target(a: &Args) -> Result<Target, String> {
    Ok(if a.to_earliest {
        Target::Earliest
    } else if a.to_latest {
        Target::Latest
    } else if let Some(n) = a.to_offset {
        Target::Offset(n)
    } else if let Some(n) = a.shift_by {
        Target::Shift(n)
    } else if let Some(t) = &a.to_datetime {
        Target::Time(parse_datetime(t)?)
    } else {
        return Err("--reset-offsets needs one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime".into());
    })
}

/// Computes (and with `--execute` commits) the new offsets of `topic` for `group`.
pub fn run(c: &mut Conn, a: &Args, group: &str, topic: &str) -> Result<String, String> {
    let how = target(a)?;
    let info = client::describe_group(c, group)?;
    if !matches!(info.state.as_str(), "Empty" | "Dead") {
        return Err(format!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
            info.state
        ));
    }
    let counts = client::partitions(c, &[topic.to_string()])?;
    let n = counts.get(topic).copied().unwrap_or(0);
    let parts: Vec<(String, i32)> = (0..n).map(|p| (topic.to_string(), p)).collect();
    if parts.is_empty() {
        return Err(format!("topic {topic} has no partitions"));
    }
    let start = client::list_offsets(c, &parts, EARLIEST)?;
    let end = client::list_offsets(c, &parts, LATEST)?;
    let by_time = match how {
        Target::Time(ms) => client::list_offsets(c, &parts, ms)?,
        _ => BTreeMap::new(),
    };
    let committed = match how {
        Target::Shift(_) => client::fetch_offsets(c, group)?,
        _ => BTreeMap::new(),
    };
    let mut new = BTreeMap::new();
    for tp in &parts {
        let lo = start.get(tp).copied().unwrap_or(0).max(0);
        let hi = end.get(tp).copied().unwrap_or(lo).max(lo);
        let want = match how {
            Target::Earliest => lo,
            Target::Latest => hi,
            Target::Offset(n) => n,
            Target::Shift(d) => match committed.get(tp).copied().filter(|&o| o >= 0) {
                Some(cur) => cur.saturating_add(d),
                None => {
                    return Err(format!(
                        "no committed offset for {}-{} to shift by",
                        tp.0, tp.1
                    ))
                }
            },
            // No record at or after the time: the log end, as Kafka's tool does.
            Target::Time(_) => by_time.get(tp).copied().filter(|&o| o >= 0).unwrap_or(hi),
        };
        new.insert(tp.clone(), want.clamp(lo, hi));
    }
    if a.execute {
        client::commit_offsets(c, group, &new)?;
    }
    if a.output == super::args::Format::Json {
        let v: Vec<Value> = new
            .iter()
            .map(|((t, p), o)| json!({"group": group, "topic": t, "partition": p, "new_offset": o}))
            .collect();
        return Ok(pretty(&Value::from(v)));
    }
    let rows: Vec<Vec<String>> = new
        .iter()
        .map(|((t, p), o)| vec![group.to_string(), t.clone(), p.to_string(), o.to_string()])
        .collect();
    Ok(table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows))
}
