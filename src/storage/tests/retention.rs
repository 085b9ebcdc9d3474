//! Retention by size and time, DeleteRecords.
