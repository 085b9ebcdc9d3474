//! Maelstrom messages: decoding requests, encoding replies, error codes.
//!
//! The wire layer is kept apart from the engine: the engine never sees JSON, and this module never
//! touches partitions or groups.
//!
//! - [`scan`]: a validating JSON scanner that borrows from the line ([`Raw`] values, [`Str`] strings).
//! - [`request`]: one line → a [`Message`] with the body's fields filed by [`Field`] (aliases
//!   included); typed accessors whose errors name the field.
//! - [`reply`]: writing messages straight into a byte buffer in Maelstrom's key order.
//! - [`error`]: Maelstrom error [`Code`]s and [`WireError`], the node's error replies.
//! - [`head`]: the sender and `msg_id` read from the start of a line refused whole (too long,
//!   too deep, not JSON), so that it can still be answered.
//!
//! Decoding a typical `send` takes one pass over the line and no allocation: the compact layouts
//! Maelstrom and the lab write are read by an exact-layout fast path (`request/fast.rs`) that
//! falls back to the general scanner on anything else, with the same result. See `benches/node.rs`
//! for the cost beside the general scanner and serde_json.

pub mod error;
pub mod head;
pub mod reply;
pub mod request;
pub mod scan;

pub use error::{Code, WireError};
pub use reply::JsonOut;
pub use request::{decode, peek_src, Body, Field, FieldError, LineError, Message};
pub use scan::{Kind, Raw, Str};
