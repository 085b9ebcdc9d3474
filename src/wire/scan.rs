//! A validating JSON scanner that borrows from its input.
//!
//! Maelstrom lines are small, flat and compact. Building a tree for them (or even running serde's
//! visitor machinery) costs more than the request itself, so the wire layer scans each line once with
//! this scanner: every value comes back as a [`Raw`] — the exact slice of input text it spans, its
//! [`Kind`], and two flags (a string has escapes; a compound value contains whitespace). Callers then
//! read the few tokens they need (an integer, a string) from those slices, and store or echo payloads
//! (`msg`) as the very bytes that came in.
//!
//! The scanner accepts exactly RFC 8259 JSON on text that is already known to be UTF-8 (the caller
//! validates the whole line once with `std::str::from_utf8`). Nesting deeper than [`MAX_DEPTH`] is an
//! error, so a hostile line cannot exhaust the stack. Numbers keep their text; an integer is read by
//! [`Raw::as_u64`] with overflow checks.

use std::borrow::Cow;
use std::fmt;

/// How deep arrays and objects may nest (serde_json's default recursion limit is also 128).
pub const MAX_DEPTH: u32 = 128;

/// Why a line is not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError {
    /// The byte offset where scanning stopped.
    pub at: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

impl std::error::Error for SyntaxError {}

/// The kind of a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    /// A number with neither fraction nor exponent.
    Int,
    /// A number with a fraction or an exponent.
    Float,
    Str,
    Array,
    Object,
}

/// A JSON string, borrowed in its escaped (wire) form, without the quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Str<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> Str<'a> {
    /// The escaped text between the quotes, exactly as it came: valid to write back between quotes.
    #[inline]
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the wire form contains escapes (so [`Str::raw`] differs from the value).
    #[inline]
    pub fn is_escaped(&self) -> bool {
        self.escaped
    }

    /// The string's value. Borrowed unless it has escapes.
    #[inline]
    pub fn decode(&self) -> Cow<'a, str> {
        if self.escaped {
            Cow::Owned(unescape(self.raw))
        } else {
            Cow::Borrowed(self.raw)
        }
    }
}

/// One scanned JSON value: the exact input text it spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a> {
    text: &'a str,
    kind: Kind,
    /// For a string: it contains escapes. For an array or object: it contains whitespace between
    /// tokens (so its text is not compact). Otherwise false.
    flag: bool,
}

impl<'a> Raw<'a> {
    /// The value's text as it came, e.g. `"a\"b"`, `12`, `{"x": 1}`.
    #[inline]
    pub fn text(&self) -> &'a str {
        self.text
    }

    #[inline]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    #[inline]
    pub fn is_null(&self) -> bool {
        self.kind == Kind::Null
    }

    /// The string, if this is one.
    #[inline]
    pub fn as_str(&self) -> Option<Str<'a>> {
        (self.kind == Kind::Str).then(|| Str {
            raw: &self.text[1..self.text.len() - 1],
            escaped: self.flag,
        })
    }

    /// The value as a non-negative integer that fits a `u64`.
    #[inline]
    pub fn as_u64(&self) -> Option<u64> {
        if self.kind != Kind::Int {
            return None;
        }
        parse_u64(self.text.as_bytes())
    }

    /// The boolean, if this is one.
    #[inline]
    pub fn as_bool(&self) -> Option<bool> {
        (self.kind == Kind::Bool).then(|| self.text == "true")
    }

    /// The value's compact JSON text: borrowed unless the input had whitespace inside it.
    #[inline]
    pub fn compact(&self) -> Cow<'a, [u8]> {
        if self.flag && matches!(self.kind, Kind::Array | Kind::Object) {
            Cow::Owned(compact(self.text))
        } else {
            Cow::Borrowed(self.text.as_bytes())
        }
    }

    /// The entries of an object, in input order (empty for any other kind).
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            sc: Scanner::new(self.text),
            state: if self.kind == Kind::Object { 0 } else { 2 },
        }
    }

    /// The items of an array, in input order (empty for any other kind).
    pub fn items(&self) -> Items<'a> {
        Items {
            sc: Scanner::new(self.text),
            state: if self.kind == Kind::Array { 0 } else { 2 },
        }
    }
}

/// Reads the decimal digits of a non-negative JSON integer (rejects a sign and overflow).
#[inline]
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(v)
}

/// Iterator over an already scanned object's entries (see [`Raw::entries`]).
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    sc: Scanner<'a>,
    /// 0: before `{`; 1: inside; 2: done.
    state: u8,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (Str<'a>, Raw<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let sc = &mut self.sc;
        let step = |sc: &mut Scanner<'a>,
                    first: bool|
         -> Result<Option<(Str<'a>, Raw<'a>)>, SyntaxError> {
            sc.skip_ws();
            if first {
                sc.expect(b'{')?;
                sc.skip_ws();
            }
            match sc.peek() {
                Some(b'}') => return Ok(None),
                Some(b',') if !first => {
                    sc.pos += 1;
                    sc.skip_ws();
                }
                _ if first => {}
                _ => return Err(sc.err("expected , or }")),
            }
            sc.expect(b'"')?;
            let key = sc.string_rest()?;
            sc.skip_ws();
            sc.expect(b':')?;
            let v = sc.value(1)?;
            Ok(Some((key, v)))
        };
        let first = match self.state {
            0 => true,
            1 => false,
            _ => return None,
        };
        match step(sc, first) {
            Ok(Some(kv)) => {
                self.state = 1;
                Some(kv)
            }
            // The text was validated when it was first scanned, so an error cannot happen here;
            // stop quietly rather than panic if it ever did.
            Ok(None) | Err(_) => {
                self.state = 2;
                None
            }
        }
    }
}

/// Iterator over an already scanned array's items (see [`Raw::items`]).
#[derive(Debug, Clone)]
pub struct Items<'a> {
    sc: Scanner<'a>,
    /// 0: before `[`; 1: inside; 2: done.
    state: u8,
}

impl<'a> Iterator for Items<'a> {
    type Item = Raw<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let sc = &mut self.sc;
        let step = |sc: &mut Scanner<'a>, first: bool| -> Result<Option<Raw<'a>>, SyntaxError> {
            sc.skip_ws();
            if first {
                sc.expect(b'[')?;
                sc.skip_ws();
            }
            match sc.peek() {
                Some(b']') => return Ok(None),
                Some(b',') if !first => sc.pos += 1,
                _ if first => {}
                _ => return Err(sc.err("expected , or ]")),
            }
            sc.value(1).map(Some)
        };
        let first = match self.state {
            0 => true,
            1 => false,
            _ => return None,
        };
        match step(sc, first) {
            Ok(Some(v)) => {
                self.state = 1;
                Some(v)
            }
            Ok(None) | Err(_) => {
                self.state = 2;
                None
            }
        }
    }
}

/// A cursor over JSON text.
#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    #[inline]
    pub fn new(text: &'a str) -> Self {
        Scanner { text, pos: 0 }
    }

    /// The current byte offset.
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn err(&self, what: &'static str) -> SyntaxError {
        SyntaxError { at: self.pos, what }
    }

    /// Skips whitespace; returns whether there was any.
    #[inline]
    pub fn skip_ws(&mut self) -> bool {
        let b = self.bytes();
        let start = self.pos;
        while let Some(&c) = b.get(self.pos) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.pos != start
    }

    #[inline]
    pub(crate) fn expect(&mut self, c: u8) -> Result<(), SyntaxError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(match c {
                b'{' => "expected {",
                b'[' => "expected [",
                b':' => "expected :",
                b'"' => "expected a string",
                _ => "unexpected character",
            }))
        }
    }

    /// Fails unless only whitespace remains.
    pub fn finish(&mut self) -> Result<(), SyntaxError> {
        self.skip_ws();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(self.err("trailing characters"))
        }
    }

    /// Scans one value after optional whitespace. `depth` is the nesting depth of the value.
    #[inline]
    pub fn value(&mut self, depth: u32) -> Result<Raw<'a>, SyntaxError> {
        self.skip_ws();
        self.value_here(depth)
    }

    /// Scans one value that starts exactly at the cursor.
    fn value_here(&mut self, depth: u32) -> Result<Raw<'a>, SyntaxError> {
        let start = self.pos;
        let (kind, flag) = match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                let s = self.string_rest()?;
                (Kind::Str, s.escaped)
            }
            Some(b'{') => (Kind::Object, self.skip_object(depth)?),
            Some(b'[') => (Kind::Array, self.skip_array(depth)?),
            Some(b't') => (Kind::Bool, self.literal("true")?),
            Some(b'f') => (Kind::Bool, self.literal("false")?),
            Some(b'n') => (Kind::Null, self.literal("null")?),
            Some(b'-' | b'0'..=b'9') => {
                if self.number()? {
                    (Kind::Int, false)
                } else {
                    (Kind::Float, false)
                }
            }
            None => return Err(self.err("unexpected end of input")),
            Some(_) => return Err(self.err("expected a value")),
        };
        Ok(Raw {
            text: &self.text[start..self.pos],
            kind,
            flag,
        })
    }

    fn literal(&mut self, word: &'static str) -> Result<bool, SyntaxError> {
        if self.bytes()[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(false)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    /// Scans a number; returns whether it is an integer (no fraction, no exponent).
    fn number(&mut self) -> Result<bool, SyntaxError> {
        let b = self.bytes();
        if b.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match b.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while matches!(b.get(self.pos), Some(b'0'..=b'9')) {
                    self.pos += 1;
                }
            }
            _ => return Err(self.err("invalid number")),
        }
        let mut int = true;
        if b.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            int = false;
            self.digits()?;
        }
        if matches!(b.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            int = false;
            if matches!(b.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits()?;
        }
        Ok(int)
    }

    fn digits(&mut self) -> Result<(), SyntaxError> {
        let b = self.bytes();
        let start = self.pos;
        while matches!(b.get(self.pos), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        if self.pos == start {
            Err(self.err("invalid number"))
        } else {
            Ok(())
        }
    }

    /// Scans the rest of a string whose opening quote was consumed; leaves the cursor after the
    /// closing quote.
    #[inline]
    pub(crate) fn string_rest(&mut self) -> Result<Str<'a>, SyntaxError> {
        let b = self.bytes();
        let start = self.pos;
        let mut escaped = false;
        loop {
            match b.get(self.pos) {
                Some(b'"') => {
                    let raw = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Str { raw, escaped });
                }
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 1;
                    match b.get(self.pos) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            let hex = b.get(self.pos + 1..self.pos + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.err("invalid \\u escape"));
                            }
                            self.pos += 5;
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(&c) if c < 0x20 => return Err(self.err("control character in string")),
                Some(_) => self.pos += 1,
                None => return Err(self.err("unterminated string")),
            }
        }
    }

    /// Scans an object at the cursor; returns whether it had whitespace inside.
    fn skip_object(&mut self, depth: u32) -> Result<bool, SyntaxError> {
        if depth >= MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.pos += 1;
        let mut spaced = self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(spaced);
        }
        loop {
            self.expect(b'"')?;
            self.string_rest()?;
            spaced |= self.skip_ws();
            self.expect(b':')?;
            spaced |= self.skip_ws();
            let v = self.value_here(depth + 1)?;
            spaced |= v.flag && matches!(v.kind, Kind::Array | Kind::Object);
            spaced |= self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    spaced |= self.skip_ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(spaced);
                }
                _ => return Err(self.err("expected , or }")),
            }
        }
    }

    /// Scans an array at the cursor; returns whether it had whitespace inside.
    fn skip_array(&mut self, depth: u32) -> Result<bool, SyntaxError> {
        if depth >= MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.pos += 1;
        let mut spaced = self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(spaced);
        }
        loop {
            let v = self.value_here(depth + 1)?;
            spaced |= v.flag && matches!(v.kind, Kind::Array | Kind::Object);
            spaced |= self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    spaced |= self.skip_ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(spaced);
                }
                _ => return Err(self.err("expected , or ]")),
            }
        }
    }

    /// Scans an object at the cursor (after optional whitespace), calling `f` with each key; `f` must
    /// consume exactly the entry's value with [`Scanner::value`] (at depth `depth + 1`).
    pub fn object(
        &mut self,
        depth: u32,
        mut f: impl FnMut(&mut Self, Str<'a>) -> Result<(), SyntaxError>,
    ) -> Result<(), SyntaxError> {
        if depth >= MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.skip_ws();
        self.expect(b'{')?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.expect(b'"')?;
            let key = self.string_rest()?;
            self.skip_ws();
            self.expect(b':')?;
            f(self, key)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected , or }")),
            }
        }
    }
}

/// Removes the whitespace between the tokens of valid JSON text.
pub fn compact(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut in_str = false;
    let mut esc = false;
    for &c in text.as_bytes() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
            if c == b'"' {
                in_str = true;
            }
            out.push(c);
        }
    }
    out
}

/// Decodes the escapes of a valid JSON string body. Unpaired surrogates become U+FFFD.
pub fn unescape(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    let mut run = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&raw[run..i]);
        let Some(&e) = b.get(i + 1) else { break };
        i += 2;
        match e {
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let hi = hex4(b, i);
                i += 4;
                let c = match hi {
                    Some(h @ 0xD800..=0xDBFF) => {
                        let lo = (b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u'))
                            .then(|| hex4(b, i + 2))
                            .flatten();
                        match lo {
                            Some(l @ 0xDC00..=0xDFFF) => {
                                i += 6;
                                char::from_u32(0x10000 + ((h - 0xD800) << 10) + (l - 0xDC00))
                            }
                            _ => None,
                        }
                    }
                    Some(h) => char::from_u32(h),
                    None => None,
                };
                out.push(c.unwrap_or('\u{FFFD}'));
            }
            other => out.push(other as char),
        }
        run = i;
    }
    if run < b.len() {
        out.push_str(&raw[run.min(raw.len())..]);
    }
    out
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let h = b.get(at..at + 4)?;
    let s = std::str::from_utf8(h).ok()?;
    u32::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &str) -> Result<Raw<'_>, SyntaxError> {
        let mut sc = Scanner::new(s);
        let v = sc.value(0)?;
        sc.finish()?;
        Ok(v)
    }

    #[test]
    fn accepts_every_kind() {
        assert_eq!(scan("null").unwrap().kind(), Kind::Null);
        assert_eq!(scan(" true ").unwrap().as_bool(), Some(true));
        assert_eq!(scan("false").unwrap().as_bool(), Some(false));
        assert_eq!(scan("0").unwrap().as_u64(), Some(0));
        assert_eq!(
            scan("18446744073709551615").unwrap().as_u64(),
            Some(u64::MAX)
        );
        assert_eq!(scan("18446744073709551616").unwrap().as_u64(), None);
        assert_eq!(scan("-3").unwrap().kind(), Kind::Int);
        assert_eq!(scan("-3").unwrap().as_u64(), None);
        assert_eq!(scan("1.0").unwrap().kind(), Kind::Float);
        assert_eq!(scan("1e3").unwrap().kind(), Kind::Float);
        assert_eq!(scan("1.5E-3").unwrap().as_u64(), None);
        assert_eq!(
            scan(r#""a\"b""#).unwrap().as_str().unwrap().decode(),
            "a\"b"
        );
        assert_eq!(scan("[1, [2], {}]").unwrap().kind(), Kind::Array);
        assert_eq!(
            scan(r#"{"a": {"b": [null]}}"#).unwrap().kind(),
            Kind::Object
        );
    }

    #[test]
    fn rejects_what_json_rejects() {
        for bad in [
            "",
            "nul",
            "01",
            "1.",
            "-",
            "1e",
            "+1",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "[1 2]",
            "\"abc",
            "\"a\\x\"",
            "\"\\u12G4\"",
            "\"tab\there\"",
            "{a:1}",
            "[1]]",
            "{\"a\":1}}",
            "'x'",
            "NaN",
        ] {
            assert!(scan(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn nesting_is_capped() {
        let ok = "[".repeat(MAX_DEPTH as usize) + &"]".repeat(MAX_DEPTH as usize);
        assert!(scan(&ok).is_ok());
        let deep = "[".repeat(MAX_DEPTH as usize + 1) + &"]".repeat(MAX_DEPTH as usize + 1);
        assert_eq!(scan(&deep).unwrap_err().what, "nesting too deep");
        let hostile = "{\"a\":".repeat(100_000);
        assert!(scan(&hostile).is_err());
    }

    #[test]
    fn compaction_keeps_strings_and_drops_layout() {
        let v = scan("{ \"a b\" : [ 1 , \"x \\\" y\" ] }").unwrap();
        assert_eq!(&*v.compact(), br#"{"a b":[1,"x \" y"]}"#);
        let tight = scan(r#"{"a":[1,2]}"#).unwrap();
        assert!(matches!(tight.compact(), Cow::Borrowed(_)));
        // Whitespace only inside a nested value still marks the outer one.
        let nested = scan(r#"{"a":[1, 2]}"#).unwrap();
        assert_eq!(&*nested.compact(), br#"{"a":[1,2]}"#);
    }

    #[test]
    fn entries_and_items_iterate_in_order() {
        let v = scan(r#"{ "x" : 1 , "y\n" : [2, 3] }"#).unwrap();
        let e: Vec<_> = v
            .entries()
            .map(|(k, v)| (k.decode().into_owned(), v.text()))
            .collect();
        assert_eq!(
            e,
            vec![("x".to_string(), "1"), ("y\n".to_string(), "[2, 3]")]
        );
        let a = scan("[ 1 , \"a\" , {} ]").unwrap();
        let items: Vec<_> = a.items().map(|v| v.text()).collect();
        assert_eq!(items, vec!["1", "\"a\"", "{}"]);
        assert_eq!(scan("{}").unwrap().entries().count(), 0);
        assert_eq!(scan("[]").unwrap().items().count(), 0);
        assert_eq!(scan("3").unwrap().items().count(), 0);
    }

    #[test]
    fn unescape_handles_surrogates() {
        assert_eq!(unescape(r"\u00e9\n\/"), "é\n/");
        assert_eq!(unescape(r"\ud83d\ude00!"), "😀!");
        assert_eq!(unescape(r"\ud83d!"), "\u{FFFD}!");
        assert_eq!(unescape(r"\ude00"), "\u{FFFD}");
        assert_eq!(unescape("plain"), "plain");
    }

    #[test]
    fn object_visitor_sees_keys() {
        let mut sc = Scanner::new(r#"{"a":1,"b":{"c":2}}"#);
        let mut seen = Vec::new();
        sc.object(0, |sc, k| {
            let v = sc.value(1)?;
            seen.push((k.raw(), v.text()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![("a", "1"), ("b", r#"{"c":2}"#)]);
    }
}
