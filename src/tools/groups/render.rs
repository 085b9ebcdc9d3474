//! Kafka-style tables (left-aligned columns, `-` for nothing) and JSON values.

use serde_json::Value;

/// Rows under `header`, each column as wide as its widest cell plus one space.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (c, w) in cells.iter().zip(&width) {
            s.push_str(&format!("{c:<w$} ", w = *w));
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// `n` as text, `-` for `None`.
pub fn cell(n: Option<i64>) -> String {
    n.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// `s`, or `-` when empty.
pub fn text(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

/// `Some(n)` as a JSON number, `None` as null.
pub fn num(n: Option<i64>) -> Value {
    n.map_or(Value::Null, Value::from)
}

/// A string, null when empty.
pub fn opt_str(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::from(s)
    }
}
