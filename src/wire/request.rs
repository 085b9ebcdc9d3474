//! Decoding one input line into a [`Message`] borrowed from the line.
//!
//! One pass of the [`Scanner`](super::scan::Scanner) validates the whole line and files every body
//! field it knows (aliases included) into a fixed table indexed by [`Field`]. Unknown fields and
//! unknown envelope keys (Maelstrom's integer `id`) are validated and ignored. The typed accessors of
//! [`Body`] then read single tokens, and a missing or ill-typed field becomes a [`FieldError`] that
//! names the field (Maelstrom error 12).

use super::scan::{Raw, Scanner, Str, SyntaxError};
use std::fmt;

/// Why a line cannot be served at all. Such a line is logged and skipped; it gets no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// The line is not UTF-8.
    NotUtf8,
    /// The line is not JSON (or nests deeper than [`super::scan::MAX_DEPTH`]).
    Syntax(SyntaxError),
    /// The line is JSON but not an object with a string `src`.
    NoSrc,
    /// The message has no `body` object.
    NoBody,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::NotUtf8 => f.write_str("not utf-8"),
            LineError::Syntax(e) => write!(f, "not json: {e}"),
            LineError::NoSrc => f.write_str("no string src"),
            LineError::NoBody => f.write_str("no body object"),
        }
    }
}

impl std::error::Error for LineError {}

/// A missing or ill-typed field of a request body: Maelstrom error 12 (malformed-request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name as the request spelled it (or its canonical name when it is missing).
    pub field: &'static str,
    /// `None` when the field is missing; else what it should have been.
    pub expected: Option<&'static str>,
}

impl FieldError {
    /// The field is required and absent.
    pub fn missing(field: Field) -> Self {
        FieldError {
            field: field.name(),
            expected: None,
        }
    }

    /// The field (as spelled `name`) is present with the wrong type or range.
    pub fn invalid(name: &'static str, expected: &'static str) -> Self {
        FieldError {
            field: name,
            expected: Some(expected),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            None => {
                write!(f, "missing field `{}`", self.field)?;
                match Field::from_key(self.field).map(|(fld, _)| fld.aliases()) {
                    Some(a) if !a.is_empty() => write!(f, " (or {a})"),
                    _ => Ok(()),
                }
            }
            Some(e) => write!(f, "field `{}` must be {e}", self.field),
        }
    }
}

impl std::error::Error for FieldError {}

macro_rules! fields {
    ($( $(#[$doc:meta])* $v:ident = $name:literal $(| $alias:literal)* ;)*) => {
        /// The body fields the node reads. Aliases map to one field.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Field { $( $(#[$doc])* $v, )* }

        /// How many [`Field`]s there are.
        pub const FIELD_COUNT: usize = [$( $name, )*].len();

        impl Field {
            /// The canonical name.
            pub fn name(self) -> &'static str {
                match self { $( Field::$v => $name, )* }
            }

            /// The accepted aliases, for error texts (e.g. "`group_id`").
            pub fn aliases(self) -> &'static str {
                match self { $( Field::$v => concat!("" $(, "`", $alias, "`, ")*), )* }
                    .trim_end_matches(", ")
            }

            /// Every spelling of the field: the canonical name first, then the aliases.
            pub fn spellings(self) -> &'static [&'static str] {
                match self { $( Field::$v => &[$name $(, $alias)*], )* }
            }

            /// The field a body key names, with that key as a static string.
            #[inline]
            pub fn from_key(key: &str) -> Option<(Field, &'static str)> {
                match key {
                    $( $name => Some((Field::$v, $name)), $( $alias => Some((Field::$v, $alias)), )* )*
                    _ => None,
                }
            }
        }
    };
}

fields! {
    Type = "type";
    MsgId = "msg_id";
    InReplyTo = "in_reply_to";
    NodeId = "node_id";
    NodeIds = "node_ids";
    Key = "key";
    Msg = "msg" | "message" | "value";
    Offsets = "offsets";
    Keys = "keys";
    Topic = "topic";
    Group = "group" | "group_id";
    Consumer = "consumer" | "consumer_id" | "member_id";
    Partition = "partition";
    Offset = "offset";
    Max = "max_messages" | "max" | "max_records";
    SessionTimeoutMs = "session_timeout_ms";
    Assignor = "assignor";
    AutoCommit = "auto_commit";
    To = "to";
    Partitions = "partitions";
    Msgs = "msgs";
    Echo = "echo";
    Code = "code";
    Text = "text";
}

/// One field as it appeared: the key's spelling and the value.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    /// The key as the request spelled it (an alias, or the canonical name).
    pub name: &'static str,
    pub value: Raw<'a>,
}

/// Where a field's value lies in the line: 12 bytes, so a whole [`Body`] stays small to build
/// and to move.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
    /// The [`Raw`] kind and flag, packed by [`Raw::pack`].
    kind: u8,
    /// 0: absent; else 1 + the index of the key's spelling in [`Field::spellings`].
    spelling: u8,
}

/// A request or reply body: its known fields, each borrowed from the line.
#[derive(Debug, Clone)]
pub struct Body<'a> {
    text: &'a str,
    slots: [Span; FIELD_COUNT],
}

/// A decoded line.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The sender; replies go to it.
    pub src: Str<'a>,
    /// The node the message was sent to, if the envelope names one.
    pub dest: Option<Str<'a>>,
    pub body: Body<'a>,
}

/// Decodes one line (without its newline).
pub fn decode(line: &[u8]) -> Result<Message<'_>, LineError> {
    let text = std::str::from_utf8(line).map_err(|_| LineError::NotUtf8)?;
    decode_str(text)
}

/// Decodes one line of text (without its newline).
pub fn decode_str(text: &str) -> Result<Message<'_>, LineError> {
    let mut sc = Scanner::new(text);
    let mut src = None;
    let mut dest = None;
    let mut body = None;
    sc.skip_ws();
    if sc.peek() != Some(b'{') {
        // Not an object: still tell garbage from JSON for the log.
        sc.value(0).map_err(LineError::Syntax)?;
        sc.finish().map_err(LineError::Syntax)?;
        return Err(LineError::NoSrc);
    }
    let scanned = sc.object(0, |sc, key| {
        match key.raw() {
            "src" => src = sc.value_opt(1)?.as_str(),
            "dest" => dest = sc.value_opt(1)?.as_str(),
            "body" => {
                sc.skip_ws();
                if sc.peek() == Some(b'{') {
                    let mut b = Body::empty(text);
                    sc.object(1, |sc, key| {
                        let v = sc.value_opt(2)?;
                        let found = if key.is_escaped() {
                            Field::from_key(&key.decode())
                        } else {
                            Field::from_key(key.raw())
                        };
                        if let Some((f, name)) = found {
                            b.put(f, name, v);
                        }
                        Some(())
                    })?;
                    body = Some(b);
                } else {
                    sc.value_opt(1)?;
                    body = None;
                }
            }
            _ => {
                sc.value_opt(1)?;
            }
        }
        Some(())
    });
    if scanned.is_none() {
        return Err(LineError::Syntax(sc.error()));
    }
    sc.finish().map_err(LineError::Syntax)?;
    let src = src.ok_or(LineError::NoSrc)?;
    let body = body.ok_or(LineError::NoBody)?;
    Ok(Message { src, dest, body })
}

/// Finds the `src` of a line cheaply, for sharding: the fast path reads a line that starts with
/// `{"src":"…"` (Maelstrom's own layout) without scanning the rest; any other layout falls back to a
/// full decode. Returns the raw (escaped) text of the `src` string.
#[inline]
pub fn peek_src(line: &[u8]) -> Option<&[u8]> {
    const HEAD: &[u8] = b"{\"src\":\"";
    if let Some(rest) = line.strip_prefix(HEAD) {
        if let Some(end) = memchr::memchr2(b'"', b'\\', rest) {
            if rest[end] == b'"' {
                return Some(&rest[..end]);
            }
        }
    }
    let m = decode(line).ok()?;
    let raw = m.src.raw();
    // Point into `line` so the caller's lifetime holds.
    let start = raw.as_ptr() as usize - line.as_ptr() as usize;
    Some(&line[start..start + raw.len()])
}

impl<'a> Body<'a> {
    fn empty(text: &'a str) -> Self {
        Body {
            text,
            slots: [Span::default(); FIELD_COUNT],
        }
    }

    /// Files `v` (a slice of `self.text`) under `f`, spelled `name`.
    #[inline]
    fn put(&mut self, f: Field, name: &'static str, v: Raw<'a>) {
        let spelling = f.spellings().iter().position(|s| *s == name).unwrap_or(0);
        self.slots[f as usize] = Span {
            start: (v.text().as_ptr() as usize - self.text.as_ptr() as usize) as u32,
            len: v.text().len() as u32,
            kind: v.pack(),
            spelling: spelling as u8 + 1,
        };
    }

    /// The field as it came, `null` included.
    #[inline]
    fn slot(&self, f: Field) -> Option<Slot<'a>> {
        let s = self.slots[f as usize];
        if s.spelling == 0 {
            return None;
        }
        let start = s.start as usize;
        let text = self.text.get(start..start + s.len as usize)?;
        Some(Slot {
            name: f.spellings()[usize::from(s.spelling - 1)],
            value: Raw::unpack(text, s.kind),
        })
    }

    /// The field as it came, unless absent or `null`.
    #[inline]
    pub fn get(&self, f: Field) -> Option<Slot<'a>> {
        self.slot(f).filter(|s| !s.value.is_null())
    }

    /// A required field of any JSON type.
    #[inline]
    pub fn raw(&self, f: Field) -> Result<Raw<'a>, FieldError> {
        self.get(f)
            .map(|s| s.value)
            .ok_or_else(|| FieldError::missing(f))
    }

    /// A required string field.
    #[inline]
    pub fn str(&self, f: Field) -> Result<Str<'a>, FieldError> {
        self.opt_str(f)?.ok_or_else(|| FieldError::missing(f))
    }

    /// An optional string field.
    #[inline]
    pub fn opt_str(&self, f: Field) -> Result<Option<Str<'a>>, FieldError> {
        match self.get(f) {
            None => Ok(None),
            Some(s) => s
                .value
                .as_str()
                .map(Some)
                .ok_or_else(|| FieldError::invalid(s.name, "a string")),
        }
    }

    /// A required non-negative integer field.
    #[inline]
    pub fn u64(&self, f: Field) -> Result<u64, FieldError> {
        self.opt_u64(f)?.ok_or_else(|| FieldError::missing(f))
    }

    /// An optional non-negative integer field.
    #[inline]
    pub fn opt_u64(&self, f: Field) -> Result<Option<u64>, FieldError> {
        match self.get(f) {
            None => Ok(None),
            Some(s) => s
                .value
                .as_u64()
                .map(Some)
                .ok_or_else(|| FieldError::invalid(s.name, "a non-negative integer")),
        }
    }

    /// A required integer field that fits a `u32`.
    pub fn u32(&self, f: Field) -> Result<u32, FieldError> {
        self.opt_u32(f)?.ok_or_else(|| FieldError::missing(f))
    }

    /// An optional integer field that fits a `u32`.
    pub fn opt_u32(&self, f: Field) -> Result<Option<u32>, FieldError> {
        match self.get(f) {
            None => Ok(None),
            Some(s) => s
                .value
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .map(Some)
                .ok_or_else(|| FieldError::invalid(s.name, "an integer from 0 to 4294967295")),
        }
    }

    /// An optional boolean field.
    pub fn opt_bool(&self, f: Field) -> Result<Option<bool>, FieldError> {
        match self.get(f) {
            None => Ok(None),
            Some(s) => s
                .value
                .as_bool()
                .map(Some)
                .ok_or_else(|| FieldError::invalid(s.name, "true or false")),
        }
    }

    /// A required object field.
    pub fn object(&self, f: Field) -> Result<Raw<'a>, FieldError> {
        let s = self.get(f).ok_or_else(|| FieldError::missing(f))?;
        if s.value.kind() == super::scan::Kind::Object {
            Ok(s.value)
        } else {
            Err(FieldError::invalid(s.name, "an object"))
        }
    }

    /// A required array field.
    pub fn array(&self, f: Field) -> Result<Raw<'a>, FieldError> {
        let s = self.get(f).ok_or_else(|| FieldError::missing(f))?;
        if s.value.kind() == super::scan::Kind::Array {
            Ok(s.value)
        } else {
            Err(FieldError::invalid(s.name, "an array"))
        }
    }

    /// The name the request used for `f` (its canonical name when absent).
    pub fn name_of(&self, f: Field) -> &'static str {
        self.slot(f).map_or(f.name(), |s| s.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_maelstrom_send() {
        let line = br#"{"id":3,"src":"c1","dest":"n1","body":{"type":"send","msg_id":7,"key":"k","msg":[1, 2]}}"#;
        let m = decode(line).unwrap();
        assert_eq!(m.src.raw(), "c1");
        assert_eq!(m.dest.unwrap().raw(), "n1");
        assert_eq!(m.body.str(Field::Type).unwrap().raw(), "send");
        assert_eq!(m.body.opt_u64(Field::MsgId).unwrap(), Some(7));
        assert_eq!(m.body.raw(Field::Msg).unwrap().text(), "[1, 2]");
        assert_eq!(&*m.body.raw(Field::Msg).unwrap().compact(), b"[1,2]");
    }

    #[test]
    fn aliases_and_names() {
        let m = decode(
            br#"{"src":"c1","body":{"type":"x","group_id":"g","member_id":"m","value":1,"max":3}}"#,
        )
        .unwrap();
        assert_eq!(m.body.str(Field::Group).unwrap().raw(), "g");
        assert_eq!(m.body.str(Field::Consumer).unwrap().raw(), "m");
        assert_eq!(m.body.raw(Field::Msg).unwrap().text(), "1");
        assert_eq!(m.body.u64(Field::Max).unwrap(), 3);
        assert_eq!(m.body.name_of(Field::Group), "group_id");
        let e = m.body.u64(Field::Group).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field `group_id` must be a non-negative integer"
        );
        let e = m.body.str(Field::Topic).unwrap_err();
        assert_eq!(e.to_string(), "missing field `topic`");
        let e = m.body.str(Field::Offsets).unwrap_err();
        assert_eq!(e, FieldError::missing(Field::Offsets));
        assert_eq!(
            FieldError::missing(Field::Consumer).to_string(),
            "missing field `consumer` (or `consumer_id`, `member_id`)"
        );
    }

    #[test]
    fn null_is_absent_and_escaped_keys_match() {
        let m = decode(br#"{"src":"c1","body":{"\u0074ype":"send","topic":null}}"#).unwrap();
        assert_eq!(m.body.str(Field::Type).unwrap().raw(), "send");
        assert_eq!(m.body.opt_str(Field::Topic).unwrap(), None);
    }

    #[test]
    fn line_errors() {
        assert_eq!(decode(b"\xff\xfe").unwrap_err(), LineError::NotUtf8);
        assert!(matches!(
            decode(b"{\"src\":").unwrap_err(),
            LineError::Syntax(_)
        ));
        assert_eq!(decode(b"[1]").unwrap_err(), LineError::NoSrc);
        assert_eq!(
            decode(br#"{"src":1,"body":{}}"#).unwrap_err(),
            LineError::NoSrc
        );
        assert_eq!(
            decode(br#"{"src":"c","body":3}"#).unwrap_err(),
            LineError::NoBody
        );
        assert_eq!(decode(br#"{"src":"c"}"#).unwrap_err(), LineError::NoBody);
        assert!(matches!(
            decode(br#"{"src":"c","body":{}} x"#).unwrap_err(),
            LineError::Syntax(_)
        ));
    }

    #[test]
    fn peek_src_agrees_with_decode() {
        assert_eq!(
            peek_src(br#"{"src":"c12","dest":"n1","body":{}}"#),
            Some(&b"c12"[..])
        );
        assert_eq!(
            peek_src(br#"{ "dest":"n1", "src" : "c7", "body":{}}"#),
            Some(&b"c7"[..])
        );
        assert_eq!(
            peek_src(br#"{"src":"a\"b","body":{}}"#),
            Some(&br#"a\"b"#[..])
        );
        assert_eq!(peek_src(b"garbage"), None);
    }
}
