//! `kgroups groups …`: a `kafka-consumer-groups.sh`-style tool over the Kafka protocol, so it
//! works against kgroups' broker and any Kafka broker (blocking sockets, `kafka-protocol`'s client
//! side). Group requests go to the group's coordinator (FindCoordinator v4); ListOffsets and
//! Metadata go to the bootstrap server, so on a multi-broker cluster offsets of partitions led
//! elsewhere are answered with NOT_LEADER_OR_FOLLOWER.

pub mod args;
pub mod client;
pub mod conn;
pub mod describe;
pub mod render;
pub mod reset;

use args::{Args, Format};
use clap::Parser;
use conn::Conn;
use serde_json::Value;
use std::ffi::OsString;

/// Runs the tool on `args` (after `groups`); returns the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let argv = std::iter::once(OsString::from("kgroups groups")).chain(args);
    let a = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match run(&a) {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

fn run(a: &Args) -> Result<String, String> {
    let json = a.output == Format::Json;
    let mut boot = Conn::open(&a.bootstrap_server)?;
    if a.list {
        let ids = client::list_groups(&mut boot)?;
        return Ok(if json {
            describe::pretty(&Value::from(ids))
        } else {
            ids.iter().map(|g| format!("{g}\n")).collect()
        });
    }
    let group = a.group.as_deref().ok_or("--group is required")?;
    let coordinator = client::find_coordinator(&mut boot, group)?;
    let mut co = Conn::open(&coordinator.1)?;
    if a.describe {
        if a.members {
            describe::members(&mut co, group, json)
        } else if a.state {
            describe::state(&mut co, group, &coordinator, json)
        } else {
            describe::offsets(&mut co, group, json)
        }
    } else if a.reset_offsets {
        let topic = a.topic.as_deref().ok_or("--topic is required")?;
        reset::run(&mut co, a, group, topic)
    } else if a.delete {
        client::delete_group(&mut co, group)?;
        Ok(if json {
            describe::pretty(&serde_json::json!({ "deleted": [group] }))
        } else {
            format!("Deletion of requested consumer groups ('{group}') was successful.\n")
        })
    } else {
        Err("one of --list, --describe, --reset-offsets, --delete is required".into())
    }
}
