//! Decoding one input line into a [`Message`] borrowed from the line.
//!
//! One pass of the [`Scanner`] validates the whole line and files every body
//! field it knows (aliases included) as a packed span of the line, by [`Field`]. Unknown fields and
//! unknown envelope keys (Maelstrom's integer `id`) are validated and ignored. The typed accessors of
//! [`Body`] then read single tokens, and a missing or ill-typed field becomes a [`FieldError`] that
//! names the field (Maelstrom error 12).

use super::scan::{word, word_const, Raw, Scanner, Str, SyntaxError};
use std::fmt;

mod fast;

/// Why a line cannot be served at all. Such a line is logged and skipped; it gets no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
        #[non_exhaustive]
        pub enum Field { $( $(#[$doc])* $v, )* }

        /// How many [`Field`]s there are.
        pub const FIELD_COUNT: usize = [$( $name, )*].len();

        /// Every [`Field`], in declaration order (`ALL_FIELDS[f as usize] == f`).
        pub const ALL_FIELDS: [Field; FIELD_COUNT] = [$( Field::$v, )*];

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
            pub const fn spellings(self) -> &'static [&'static str] {
                match self { $( Field::$v => &[$name $(, $alias)*], )* }
            }

            /// The field a body key names, with that key as a static string.
            #[inline]
            pub fn from_key(key: &str) -> Option<(Field, &'static str)> {
                Field::lookup(key).map(|(f, i)| (f, f.spellings()[usize::from(i)]))
            }

            /// The field a body key names, with the index of the key in [`Field::spellings`].
            #[inline]
            fn lookup(key: &str) -> Option<(Field, u8)> {
                // Keys of up to 8 bytes (nearly all): one hash probe and one word compare.
                match word(key.as_bytes()) {
                    Some(w) => Field::lookup_word(w),
                    None => Field::lookup_long(key),
                }
            }

            /// [`Field::lookup`] of a key of at most 8 bytes, given as its [`word`].
            #[inline(always)]
            fn lookup_word(w: u64) -> Option<(Field, u8)> {
                let e = SHORT_KEYS[short_slot(w)];
                (e.0 == w && e.2 != u8::MAX).then_some((e.1, e.2))
            }

            /// [`Field::lookup`] of a key longer than 8 bytes.
            #[inline(never)]
            fn lookup_long(key: &str) -> Option<(Field, u8)> {
                let f = match key {
                    $( $name => Field::$v, $( $alias => Field::$v, )* )*
                    _ => return None,
                };
                let i = f.spellings().iter().position(|s| *s == key)?;
                Some((f, i as u8))
            }
        }

        /// Every spelling of every field, with its index in [`Field::spellings`].
        const SPELLINGS: &[(Field, &str, u8)] = &[ $( (Field::$v, $name, 0), $( (Field::$v, $alias, alias_index(Field::$v.spellings(), $alias)), )* )* ];
    };
}

/// The index of `name` in `spellings`, at compile time.
const fn alias_index(spellings: &[&str], name: &str) -> u8 {
    let mut i = 0;
    while i < spellings.len() {
        let s = spellings[i].as_bytes();
        let n = name.as_bytes();
        if s.len() == n.len() {
            let mut j = 0;
            while j < s.len() && s[j] == n[j] {
                j += 1;
            }
            if j == s.len() {
                return i as u8;
            }
        }
        i += 1;
    }
    panic!("not a spelling of the field")
}

/// Slots of [`SHORT_KEYS`]: a power of two.
const SHORT_SLOTS: usize = 128;

/// The slot of a short key's [`word`]: multiplicative hashing by an odd multiplier found by search,
/// checked collision-free at compile time by [`short_keys`].
#[inline(always)]
const fn short_slot(w: u64) -> usize {
    (w.wrapping_mul(0x7301_1544_3C7B_C0FD) >> 57) as usize
}

/// Spellings of at most 8 bytes by the slot of their word: `(word, field, index in
/// Field::spellings)`; index `u8::MAX` marks a free slot.
static SHORT_KEYS: [(u64, Field, u8); SHORT_SLOTS] = short_keys();

const fn short_keys() -> [(u64, Field, u8); SHORT_SLOTS] {
    let mut t = [(0u64, Field::Type, u8::MAX); SHORT_SLOTS];
    let mut i = 0;
    while i < SPELLINGS.len() {
        let (f, name, index) = SPELLINGS[i];
        if name.len() <= 8 {
            let w = word_const(name);
            let slot = short_slot(w);
            assert!(
                t[slot].2 == u8::MAX,
                "two short keys share a slot: change the multiplier"
            );
            t[slot] = (w, f, index);
        }
        i += 1;
    }
    t
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
    Group = "group" | "group_id" | "groupId";
    Consumer = "consumer" | "consumer_id" | "member_id" | "consumerId" | "memberId";
    Partition = "partition";
    Offset = "offset";
    Max = "max_messages" | "max" | "max_records" | "maxMessages" | "maxRecords";
    SessionTimeoutMs = "session_timeout_ms" | "sessionTimeoutMs";
    Assignor = "assignor";
    AutoCommit = "auto_commit" | "autoCommit";
    To = "to";
    Partitions = "partitions";
    Msgs = "msgs";
    Echo = "echo";
    Code = "code";
    Text = "text";
    /// Node to node: a forwarded batch's sequence number.
    Seq = "seq";
    /// Node to node: a `sync`'s partitions of records.
    Records = "records";
    /// Node to node: a `sync`'s per-key commits (Maelstrom's kafka workload).
    Commits = "commits";
    /// Node to node: the commit version a `sync` carries and its answer acknowledges.
    Version = "version";
    /// Node to node: a `sync`'s topic list, and in its answer how many of them are known.
    Topics = "topics";
    /// Node to node: a `sync` answer's log end per partition.
    Ends = "ends";
    /// Node to node: whether a `topic_meta` may create the topic (a producer's question).
    Create = "create";
}

/// One field as it appeared: the key's spelling and the value.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    /// The key as the request spelled it (an alias, or the canonical name).
    pub name: &'static str,
    pub value: Raw<'a>,
}

/// How many distinct known fields a body may carry; a body with more is refused as malformed
/// (error 12). The largest request (`subscribe`) has 8.
pub const MAX_FIELDS: usize = 12;

/// A request or reply body: its known fields, each borrowed from the line.
///
/// The fields are kept as packed spans of the line (8 bytes each), so a body is small to build
/// and to move; a lookup scans at most [`MAX_FIELDS`] words.
#[derive(Debug, Clone)]
pub struct Body<'a> {
    text: &'a str,
    /// Packed entries, see [`Body::pack`].
    entries: [u64; MAX_FIELDS],
    count: u8,
    overflow: bool,
    /// The first body key that names no [`Field`]: its span in `text` (the key's wire form,
    /// without quotes) as `start | len << 32`, or 0 when every key is known.
    unknown: u64,
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
///
/// The layouts Maelstrom and the lab write are read by an exact-layout fast path; every other
/// line by the general validating scanner, with the same result (see `request/fast.rs`).
#[inline]
pub fn decode_str(text: &str) -> Result<Message<'_>, LineError> {
    let m = fast::decode(text);
    if m.is_ok() {
        return m;
    }
    decode_general(text)
}

/// [`decode_str`] by the general validating scanner alone.
#[inline(never)]
pub fn decode_general(text: &str) -> Result<Message<'_>, LineError> {
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
    const SRC: u64 = word_const("src");
    const DEST: u64 = word_const("dest");
    const BODY: u64 = word_const("body");
    let scanned = sc.object(0, |sc, key| {
        // An escaped envelope key is not one of ours (Maelstrom never escapes them).
        let w = if key.is_escaped() {
            None
        } else {
            word(key.raw().as_bytes())
        };
        match w {
            Some(SRC) => src = sc.value_opt(1)?.as_str(),
            Some(DEST) => dest = sc.value_opt(1)?.as_str(),
            Some(BODY) => {
                sc.skip_ws();
                if sc.peek() == Some(b'{') {
                    let mut b = Body::empty(text);
                    sc.object(1, |sc, key| {
                        let v = sc.value_opt(2)?;
                        let found = if key.is_escaped() {
                            Field::lookup(&key.decode())
                        } else {
                            Field::lookup(key.raw())
                        };
                        match found {
                            Some((f, spelling)) => b.put(f, spelling, v),
                            None => {
                                let start = key.raw().as_ptr() as usize - text.as_ptr() as usize;
                                b.note_unknown(start, key.raw().len());
                            }
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
/// `{"src":"…"` or `{"id":<digits>,"src":"…"` (Maelstrom's layouts) without scanning the rest; any
/// other layout falls back to a full decode. Returns the raw (escaped) text of the `src` string.
#[inline]
pub fn peek_src(line: &[u8]) -> Option<&[u8]> {
    const HEAD: &[u8] = b"{\"src\":\"";
    const ID: &[u8] = b"{\"id\":";
    let rest = match line.strip_prefix(ID) {
        Some(r) => {
            let digits = r
                .iter()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(r.len());
            r[digits..].strip_prefix(b",\"src\":\"")
        }
        None => line.strip_prefix(HEAD),
    };
    if let Some(rest) = rest {
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
            entries: [0; MAX_FIELDS],
            count: 0,
            overflow: false,
            unknown: 0,
        }
    }

    /// Notes the key `self.text[start..start + len]`, which names no field (the first one only).
    #[inline]
    pub(super) fn note_unknown(&mut self, start: usize, len: usize) {
        if self.unknown == 0 {
            self.unknown = start as u64 | (len as u64) << 32 | 1 << 63;
        }
    }

    /// The first body key that names no field the node reads, in its wire (escaped) form.
    pub fn unknown_key(&self) -> Option<&'a str> {
        if self.unknown == 0 {
            return None;
        }
        let start = (self.unknown & 0xffff_ffff) as usize;
        let len = ((self.unknown >> 32) & 0x7fff_ffff) as usize;
        self.text.get(start..start + len)
    }

    /// The fields present with a value other than `null`, as bits `1 << field` (a `null` field
    /// counts as absent everywhere).
    #[inline]
    pub fn present(&self) -> u64 {
        let mut bits = 0;
        for &e in &self.entries[..usize::from(self.count)] {
            // The packed kind (bits 12..16) is `kind << 1 | flag`; `Kind::Null` is 0.
            if (e >> 13) & 7 != 0 {
                bits |= 1u64 << (e as u8);
            }
        }
        bits
    }

    /// An entry: field (bits 0..8), spelling index (8..12), packed kind (12..16), start (16..40),
    /// length (40..64). Spans beyond 16 MiB do not fit (the reader's lines are at most 1 MiB).
    #[inline(always)]
    fn pack(f: Field, spelling: usize, kind: u8, start: usize, len: usize) -> Option<u64> {
        const SPAN: usize = 1 << 24;
        (start < SPAN && len < SPAN && spelling < 16).then(|| {
            u64::from(f as u8)
                | (spelling as u64) << 8
                | u64::from(kind & 15) << 12
                | (start as u64) << 16
                | (len as u64) << 40
        })
    }

    /// Files `v` (a slice of `self.text`) under `f`, spelled as `f.spellings()[spelling]`. A
    /// repeated field is filed again; lookups take the last one.
    #[inline]
    fn put(&mut self, f: Field, spelling: u8, v: Raw<'a>) {
        let start = v.text().as_ptr() as usize - self.text.as_ptr() as usize;
        self.put_span(f, spelling, v.pack(), start, v.text().len());
    }

    /// [`Body::put`] of the value `self.text[start..start + len]`, whose [`Raw::pack`] is `packed`.
    #[inline(always)]
    fn put_span(&mut self, f: Field, spelling: u8, packed: u8, start: usize, len: usize) {
        let n = usize::from(self.count);
        match Self::pack(f, usize::from(spelling), packed, start, len) {
            Some(e) if n < MAX_FIELDS => {
                self.entries[n] = e;
                self.count += 1;
            }
            _ => self.overflow = true,
        }
    }

    /// The whole line this body was decoded from (to forward a request as it came).
    pub fn line(&self) -> &'a str {
        self.text
    }

    /// Whether the body had more known fields than [`MAX_FIELDS`] (or a span too long to keep).
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// The field as it came, `null` included.
    #[inline]
    fn slot(&self, f: Field) -> Option<Slot<'a>> {
        let e = *self.entries[..usize::from(self.count)]
            .iter()
            .rev()
            .find(|e| **e as u8 == f as u8)?;
        let start = (e >> 16) as usize & 0xff_ffff;
        let len = (e >> 40) as usize;
        let text = self.text.get(start..start + len)?;
        Some(Slot {
            name: f.spellings()[(e >> 8) as usize & 15],
            value: Raw::unpack(text, (e >> 12) as u8 & 15),
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

    /// A required field whose value may be any JSON value, `null` included (a message, an echo):
    /// only its absence is an error.
    #[inline]
    pub fn value(&self, f: Field) -> Result<Raw<'a>, FieldError> {
        self.slot(f)
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

#[cfg(all(test, not(loom)))]
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
            "missing field `consumer` (or `consumer_id`, `member_id`, `consumerId`, `memberId`)"
        );
    }

    #[test]
    fn every_spelling_finds_its_field() {
        for &(f, name, _) in SPELLINGS {
            assert_eq!(Field::from_key(name), Some((f, name)));
            assert!(f.spellings().contains(&name));
        }
        for other in [
            "",
            "x",
            "typ",
            "types",
            "msg_ids",
            "groupid",
            "partitionz",
            "session_timeout",
        ] {
            assert_eq!(Field::from_key(other), None, "{other}");
        }
    }

    #[test]
    fn too_many_fields_overflow() {
        let many = r#"{"src":"c","body":{"type":"t","msg_id":1,"node_id":"a","node_ids":[],"key":1,
            "msg":1,"offsets":{},"keys":[],"topic":"t","group":"g","consumer":"c","partition":1,"offset":2}}"#;
        let m = decode(many.as_bytes()).unwrap();
        assert!(m.body.overflowed());
        let m = decode(br#"{"src":"c","body":{"type":"t","type":"u","x":1}}"#).unwrap();
        assert!(!m.body.overflowed());
        assert_eq!(
            m.body.str(Field::Type).unwrap().raw(),
            "u",
            "the last of a repeated field wins"
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
