//! Command-line flags, with the names of Kafka's `kafka-consumer-groups.sh`.

use clap::{ArgGroup, Parser, ValueEnum};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "kgroups groups",
    about = "List, describe, reset and delete consumer groups over the Kafka protocol",
    group(ArgGroup::new("action").required(true).args(["list", "describe", "reset_offsets", "delete"])),
    group(ArgGroup::new("reset").args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime"])),
)]
pub struct Args {
    /// Broker to connect to (HOST:PORT).
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: String,
    /// List all groups.
    #[arg(long)]
    pub list: bool,
    /// Describe a group (offsets and owners; see --members and --state).
    #[arg(long, requires = "group")]
    pub describe: bool,
    /// Reset a group's committed offsets of --topic.
    #[arg(long, requires_all = ["group", "topic", "reset"])]
    pub reset_offsets: bool,
    /// Delete a group.
    #[arg(long, requires = "group")]
    pub delete: bool,
    /// The group.
    #[arg(long)]
    pub group: Option<String>,
    /// The topic whose offsets --reset-offsets moves.
    #[arg(long)]
    pub topic: Option<String>,
    /// With --describe: the members.
    #[arg(long, requires = "describe", conflicts_with = "state")]
    pub members: bool,
    /// With --describe: the group's state.
    #[arg(long, requires = "describe")]
    pub state: bool,
    /// Reset to the log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// Reset to the log end offset.
    #[arg(long)]
    pub to_latest: bool,
    /// Reset to this offset.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub to_offset: Option<i64>,
    /// Move the committed offsets by N (may be negative).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Reset to the first offset at or after this time (`YYYY-MM-DDTHH:MM:SS[.sss][Z|±HH:MM]`; UTC
    /// without a zone).
    #[arg(long, value_name = "T")]
    pub to_datetime: Option<String>,
    /// Print the new offsets without committing them (the default).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    pub execute: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub output: Format,
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]` (UTC without a zone).
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let bad = || format!("bad --to-datetime {s:?} (want YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM])");
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let t = s.get(r).ok_or_else(bad)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        let f = &frac[..digits];
        let first3: String = f.chars().chain("000".chars()).take(3).collect();
        ms = first3.parse().map_err(|_| bad())?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(bad()),
            };
            let z = rest[1..].replace(':', "");
            if z.len() != 4 || !z.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            let hh: i64 = z[..2].parse().map_err(|_| bad())?;
            let mm: i64 = z[2..].parse().map_err(|_| bad())?;
            sign * (hh * 60 + mm)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Ok(secs * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::parse_datetime;

    #[test]
    fn datetimes_parse_as_utc_milliseconds() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(
            parse_datetime("2023-11-14T22:13:20.123Z").unwrap(),
            1_700_000_000_123
        );
        assert_eq!(
            parse_datetime("2023-11-15T00:13:20+02:00").unwrap(),
            1_700_000_000_000
        );
        assert!(parse_datetime("2023-13-01T00:00:00").is_err());
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2023-11-14T22:13:20.").is_err());
    }
}
