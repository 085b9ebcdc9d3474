//! `--describe`: offsets and owners (default), `--members`, or `--state`.

use super::client::{self, GroupInfo, LATEST};
use super::conn::Conn;
use super::render::{cell, num, opt_str, table, text};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's tool's words for a group the coordinator does not know (state Dead, nothing
/// committed).
fn missing(group: &str) -> String {
    format!("Consumer group '{group}' does not exist.")
}

/// One row of the default describe output.
struct Row {
    topic: String,
    partition: i32,
    current: Option<i64>,
    end: Option<i64>,
    owner: Option<(String, String, String)>,
}

/// Offsets, log end offsets, lag and owner of every partition the group committed or owns.
pub fn offsets(c: &mut Conn, group: &str, json: bool) -> Result<String, String> {
    let info = client::describe_group(c, group)?;
    let committed = client::fetch_offsets(c, group)?;
    if info.state == "Dead" && committed.is_empty() {
        return Err(missing(group));
    }
    let mut owners: BTreeMap<(String, i32), (String, String, String)> = BTreeMap::new();
    for m in &info.members {
        for tp in &m.partitions {
            owners.insert(
                tp.clone(),
                (m.id.clone(), m.host.clone(), m.client_id.clone()),
            );
        }
    }
    let parts: BTreeSet<(String, i32)> = committed.keys().chain(owners.keys()).cloned().collect();
    let parts: Vec<(String, i32)> = parts.into_iter().collect();
    let ends = if parts.is_empty() {
        BTreeMap::new()
    } else {
        client::list_offsets(c, &parts, LATEST)?
    };
    let rows: Vec<Row> = parts
        .iter()
        .map(|tp| Row {
            topic: tp.0.clone(),
            partition: tp.1,
            current: committed.get(tp).copied().filter(|&o| o >= 0),
            end: ends.get(tp).copied().filter(|&o| o >= 0),
            owner: owners.get(tp).cloned(),
        })
        .collect();
    let lag = |r: &Row| match (r.current, r.end) {
        (Some(c), Some(e)) => Some((e - c).max(0)),
        _ => None,
    };
    if json {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| {
                let (id, host, client) = r.owner.clone().unwrap_or_default();
                json!({
                    "group": group,
                    "topic": r.topic,
                    "partition": r.partition,
                    "current_offset": num(r.current),
                    "log_end_offset": num(r.end),
                    "lag": num(lag(r)),
                    "consumer_id": opt_str(&id),
                    "host": opt_str(&host),
                    "client_id": opt_str(&client),
                })
            })
            .collect();
        return Ok(pretty(&Value::from(v)));
    }
    let mut out = String::new();
    if info.members.is_empty() {
        out.push_str(&format!(
            "\nConsumer group '{group}' has no active members.\n\n"
        ));
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let (id, host, client) = r.owner.clone().unwrap_or_default();
            vec![
                group.to_string(),
                r.topic.clone(),
                r.partition.to_string(),
                cell(r.current),
                cell(r.end),
                cell(lag(r)),
                text(&id),
                text(&host),
                text(&client),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &cells,
    ));
    Ok(out)
}

/// `--members`: CONSUMER-ID HOST CLIENT-ID #PARTITIONS.
pub fn members(c: &mut Conn, group: &str, json: bool) -> Result<String, String> {
    let info = client::describe_group(c, group)?;
    if info.state == "Dead" {
        return Err(missing(group));
    }
    if json {
        let v: Vec<Value> = info
            .members
            .iter()
            .map(|m| {
                json!({
                    "group": group,
                    "consumer_id": m.id,
                    "host": opt_str(&m.host),
                    "client_id": opt_str(&m.client_id),
                    "partitions": m.partitions.len(),
                })
            })
            .collect();
        return Ok(pretty(&Value::from(v)));
    }
    let rows: Vec<Vec<String>> = info
        .members
        .iter()
        .map(|m| {
            vec![
                group.to_string(),
                text(&m.id),
                text(&m.host),
                text(&m.client_id),
                m.partitions.len().to_string(),
            ]
        })
        .collect();
    Ok(table(
        &["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"],
        &rows,
    ))
}

/// `--state`: GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS.
pub fn state(
    c: &mut Conn,
    group: &str,
    coordinator: &(i32, String),
    json: bool,
) -> Result<String, String> {
    let info: GroupInfo = client::describe_group(c, group)?;
    if json {
        return Ok(pretty(&json!({
            "group": group,
            "coordinator": {"id": coordinator.0, "address": coordinator.1},
            "protocol_type": opt_str(&info.protocol_type),
            "assignment_strategy": opt_str(&info.protocol),
            "state": info.state,
            "members": info.members.len(),
        })));
    }
    Ok(table(
        &[
            "GROUP",
            "COORDINATOR (ID)",
            "ASSIGNMENT-STRATEGY",
            "STATE",
            "#MEMBERS",
        ],
        &[vec![
            group.to_string(),
            format!("{} ({})", coordinator.1, coordinator.0),
            text(&info.protocol),
            info.state.clone(),
            info.members.len().to_string(),
        ]],
    ))
}

/// `v` as indented JSON with a final newline.
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()) + "\n"
}
