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
#[repr(u8)]
#[non_exhaustive]
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
    /// 1 when the wire form has escapes. A whole word, not a `bool`: a byte-sized field that is
    /// written and then copied with the struct stalls store-to-load forwarding on the hot path.
    escaped: usize,
}

impl<'a> Str<'a> {
    /// The escaped text between the quotes, exactly as it came: valid to write back between quotes.
    #[inline]
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// A string without escapes, `raw` being its text between the quotes.
    #[inline(always)]
    pub(crate) fn plain(raw: &'a str) -> Self {
        Str { raw, escaped: 0 }
    }

    /// Whether the wire form contains escapes (so [`Str::raw`] differs from the value).
    #[inline]
    pub fn is_escaped(&self) -> bool {
        self.escaped != 0
    }

    /// The string's value. Borrowed unless it has escapes.
    #[inline]
    pub fn decode(&self) -> Cow<'a, str> {
        if self.escaped != 0 {
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
    /// The [`Kind`] (low byte) and a flag (bit 8): for a string, it contains escapes; for an
    /// array or object, it contains whitespace between tokens (so its text is not compact). One
    /// word, for the same reason as [`Str`]'s flag.
    meta: usize,
}

impl<'a> Raw<'a> {
    /// The value's text as it came, e.g. `"a\"b"`, `12`, `{"x": 1}`.
    #[inline]
    pub fn text(&self) -> &'a str {
        self.text
    }

    #[inline]
    pub fn kind(&self) -> Kind {
        kind_of(self.meta as u8)
    }

    #[inline(always)]
    fn flag(&self) -> bool {
        self.meta >> 8 != 0
    }

    #[inline(always)]
    fn new(text: &'a str, kind: Kind, flag: bool) -> Self {
        Raw {
            text,
            meta: kind as usize | usize::from(flag) << 8,
        }
    }

    #[inline]
    pub fn is_null(&self) -> bool {
        self.kind() == Kind::Null
    }

    /// The kind and flag in one byte (for compact storage); see [`Raw::unpack`].
    #[inline]
    pub(crate) fn pack(&self) -> u8 {
        (self.kind() as u8) << 1 | u8::from(self.flag())
    }

    /// A value of `text` with the kind and flag [`Raw::pack`] gave. `text` must be the same slice.
    #[inline]
    pub(crate) fn unpack(text: &'a str, packed: u8) -> Self {
        Raw::new(text, kind_of(packed >> 1), packed & 1 == 1)
    }

    /// The string, if this is one.
    #[inline]
    pub fn as_str(&self) -> Option<Str<'a>> {
        (self.kind() == Kind::Str).then(|| Str {
            raw: &self.text[1..self.text.len() - 1],
            escaped: usize::from(self.flag()),
        })
    }

    /// The value as a non-negative integer that fits a `u64`.
    #[inline]
    pub fn as_u64(&self) -> Option<u64> {
        if self.kind() != Kind::Int {
            return None;
        }
        parse_u64(self.text.as_bytes())
    }

    /// The boolean, if this is one.
    #[inline]
    pub fn as_bool(&self) -> Option<bool> {
        (self.kind() == Kind::Bool).then(|| self.text == "true")
    }

    /// The value's compact JSON text: borrowed unless the input had whitespace inside it.
    #[inline]
    pub fn compact(&self) -> Cow<'a, [u8]> {
        if self.flag() && matches!(self.kind(), Kind::Array | Kind::Object) {
            Cow::Owned(compact(self.text))
        } else {
            Cow::Borrowed(self.text.as_bytes())
        }
    }

    /// The entries of an object, in input order (empty for any other kind).
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            sc: Scanner::new(self.text),
            state: if self.kind() == Kind::Object { 0 } else { 2 },
        }
    }

    /// The value of the first member of an object whose key's text (as it came) is `name`.
    pub fn field(&self, name: &str) -> Option<Raw<'a>> {
        self.entries()
            .find(|(k, _)| k.raw() == name)
            .map(|(_, v)| v)
    }

    /// The items of an array, in input order (empty for any other kind).
    pub fn items(&self) -> Items<'a> {
        Items {
            sc: Scanner::new(self.text),
            state: if self.kind() == Kind::Array { 0 } else { 2 },
        }
    }
}

/// The kind with this discriminant.
#[inline(always)]
fn kind_of(d: u8) -> Kind {
    match d {
        0 => Kind::Null,
        1 => Kind::Bool,
        2 => Kind::Int,
        3 => Kind::Float,
        4 => Kind::Str,
        5 => Kind::Array,
        _ => Kind::Object,
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
        let first = match self.state {
            0 => true,
            1 => false,
            _ => return None,
        };
        // The text was validated when it was first scanned, so `None` only means the end here
        // (and if it ever meant an error, stopping quietly beats a panic).
        let kv = self.sc.next_entry(first, b'{', b'}').and_then(|more| {
            more?;
            let sc = &mut self.sc;
            sc.eat(b'"')?;
            let key = sc.string_rest()?;
            sc.skip_ws();
            sc.eat(b':')?;
            let v = sc.value_opt(1)?;
            Some((key, v))
        });
        self.state = if kv.is_some() { 1 } else { 2 };
        kv
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
        let first = match self.state {
            0 => true,
            1 => false,
            _ => return None,
        };
        let v = self.sc.next_entry(first, b'[', b']').and_then(|more| {
            more?;
            self.sc.value_opt(1)
        });
        self.state = if v.is_some() { 1 } else { 2 };
        v
    }
}

/// A cursor over JSON text.
///
/// The scanning functions return `Option`s, so that the hot path passes no error payload around;
/// a failure records its [`SyntaxError`] in the scanner (see [`Scanner::error`]).
#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    error: Option<SyntaxError>,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    #[inline]
    pub fn new(text: &'a str) -> Self {
        Scanner {
            text,
            pos: 0,
            error: None,
        }
    }

    /// A scanner at byte `pos` of `text`.
    #[inline]
    pub(crate) fn at(text: &'a str, pos: usize) -> Self {
        Scanner {
            text,
            pos,
            error: None,
        }
    }

    /// The current byte offset.
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Why the last scan returned `None`.
    pub fn error(&self) -> SyntaxError {
        self.error.unwrap_or(SyntaxError {
            at: self.pos,
            what: "invalid json",
        })
    }

    #[inline(always)]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[inline(always)]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    /// Records a syntax error at the cursor; returns `None` for `?`.
    #[cold]
    #[inline(never)]
    fn fail<T>(&mut self, what: &'static str) -> Option<T> {
        if self.error.is_none() {
            self.error = Some(SyntaxError { at: self.pos, what });
        }
        None
    }

    /// Skips whitespace; returns whether there was any.
    #[inline(always)]
    pub fn skip_ws(&mut self) -> bool {
        let rest = &self.bytes()[self.pos..];
        // Compact JSON has none: one compare settles the common case.
        if rest.first().is_none_or(|&c| c > b' ') {
            return false;
        }
        let n = rest
            .iter()
            .position(|&c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
            .unwrap_or(rest.len());
        self.pos += n;
        n != 0
    }

    /// Consumes `c`, or fails.
    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Some(())
        } else {
            self.fail(match c {
                b'{' => "expected {",
                b'[' => "expected [",
                b':' => "expected :",
                b'"' => "expected a string",
                _ => "unexpected character",
            })
        }
    }

    /// Steps to the next entry of a compound value: consumes `open` (when `first`) or a comma.
    /// Returns `Some(None)` at the closing byte (consumed), `Some(Some(()))` before an entry.
    #[inline(always)]
    fn next_entry(&mut self, first: bool, open: u8, close: u8) -> Option<Option<()>> {
        self.skip_ws();
        if first {
            self.eat(open)?;
            self.skip_ws();
        }
        match self.peek() {
            Some(c) if c == close => {
                self.pos += 1;
                Some(None)
            }
            Some(b',') if !first => {
                self.pos += 1;
                self.skip_ws();
                Some(Some(()))
            }
            _ if first => Some(Some(())),
            _ => self.fail("expected , or a closing bracket"),
        }
    }

    /// Fails unless only whitespace remains.
    pub fn finish(&mut self) -> Result<(), SyntaxError> {
        self.skip_ws();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            self.fail::<()>("trailing characters");
            Err(self.error())
        }
    }

    /// Scans one value after optional whitespace. `depth` is the nesting depth of the value.
    #[inline]
    pub fn value(&mut self, depth: u32) -> Result<Raw<'a>, SyntaxError> {
        match self.value_opt(depth) {
            Some(v) => Ok(v),
            None => Err(self.error()),
        }
    }

    /// [`Scanner::value`] without the error payload (see [`Scanner::error`]).
    #[inline]
    pub fn value_opt(&mut self, depth: u32) -> Option<Raw<'a>> {
        self.skip_ws();
        self.value_here(depth)
    }

    /// Scans one value that starts exactly at the cursor.
    #[inline]
    fn value_here(&mut self, depth: u32) -> Option<Raw<'a>> {
        let start = self.pos;
        let (kind, flag) = match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                let s = self.string_rest()?;
                (Kind::Str, s.escaped != 0)
            }
            Some(b'0'..=b'9' | b'-') => {
                if self.number()? {
                    (Kind::Int, false)
                } else {
                    (Kind::Float, false)
                }
            }
            Some(b'{') => (Kind::Object, self.skip_object(depth)?),
            Some(b'[') => (Kind::Array, self.skip_array(depth)?),
            Some(b't') => (Kind::Bool, self.literal("true")?),
            Some(b'f') => (Kind::Bool, self.literal("false")?),
            Some(b'n') => (Kind::Null, self.literal("null")?),
            None => return self.fail("unexpected end of input"),
            Some(_) => return self.fail("expected a value"),
        };
        Some(Raw::new(self.text.get(start..self.pos)?, kind, flag))
    }

    fn literal(&mut self, word: &'static str) -> Option<bool> {
        if self.bytes()[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Some(false)
        } else {
            self.fail("invalid literal")
        }
    }

    /// Scans a number; returns whether it is an integer (no fraction, no exponent).
    #[inline]
    fn number(&mut self) -> Option<bool> {
        let b = self.bytes();
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i += count_digits(&b[i..]),
            _ => {
                self.pos = i;
                return self.fail("invalid number");
            }
        }
        self.pos = i;
        match b.get(i) {
            Some(b'.' | b'e' | b'E') => self.number_tail(),
            _ => Some(true),
        }
    }

    /// The fraction and exponent of a number; the cursor is after its integer part.
    #[cold]
    fn number_tail(&mut self) -> Option<bool> {
        let b = self.bytes();
        if b.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            self.digits()?;
        }
        if matches!(b.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(b.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits()?;
        }
        Some(false)
    }

    fn digits(&mut self) -> Option<()> {
        let n = count_digits(&self.bytes()[self.pos..]);
        self.pos += n;
        if n == 0 {
            self.fail("invalid number")
        } else {
            Some(())
        }
    }

    /// Scans the rest of a string whose opening quote was consumed; leaves the cursor after the
    /// closing quote.
    #[inline(always)]
    pub(crate) fn string_rest(&mut self) -> Option<Str<'a>> {
        let b = self.bytes();
        let start = self.pos;
        // Skip the plain bytes in one tight loop; stop at a quote, a backslash or a control byte.
        let rest = &b[start..];
        let n = rest
            .iter()
            .position(|&c| STRING_STOP[usize::from(c)])
            .unwrap_or(rest.len());
        self.pos = start + n;
        if rest.get(n) == Some(&b'"') {
            self.pos += 1;
            return Some(Str {
                raw: self.text.get(start..start + n)?,
                escaped: 0,
            });
        }
        self.string_escaped(start)
    }

    /// The rest of a string with escapes (or an error), from the first byte that stopped
    /// [`Scanner::string_rest`].
    #[cold]
    #[inline(never)]
    fn string_escaped(&mut self, start: usize) -> Option<Str<'a>> {
        let b = self.bytes();
        loop {
            let rest = &b[self.pos..];
            self.pos += rest
                .iter()
                .position(|&c| STRING_STOP[usize::from(c)])
                .unwrap_or(rest.len());
            match b.get(self.pos) {
                Some(b'"') => {
                    let raw = self.text.get(start..self.pos)?;
                    self.pos += 1;
                    return Some(Str { raw, escaped: 1 });
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match b.get(self.pos) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            let hex = b.get(self.pos + 1..self.pos + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return self.fail("invalid \\u escape");
                            }
                            self.pos += 5;
                        }
                        _ => return self.fail("invalid escape"),
                    }
                }
                Some(_) => return self.fail("control character in string"),
                None => return self.fail("unterminated string"),
            }
        }
    }

    /// Scans an object at the cursor; returns whether it had whitespace inside.
    fn skip_object(&mut self, depth: u32) -> Option<bool> {
        if depth >= MAX_DEPTH {
            return self.fail("nesting too deep");
        }
        self.pos += 1;
        let mut spaced = self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Some(spaced);
        }
        loop {
            self.eat(b'"')?;
            self.string_rest()?;
            spaced |= self.skip_ws();
            self.eat(b':')?;
            spaced |= self.skip_ws();
            let v = self.value_here(depth + 1)?;
            spaced |= v.flag() && matches!(v.kind(), Kind::Array | Kind::Object);
            spaced |= self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    spaced |= self.skip_ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Some(spaced);
                }
                _ => return self.fail("expected , or }"),
            }
        }
    }

    /// Scans an array at the cursor; returns whether it had whitespace inside.
    fn skip_array(&mut self, depth: u32) -> Option<bool> {
        if depth >= MAX_DEPTH {
            return self.fail("nesting too deep");
        }
        self.pos += 1;
        let mut spaced = self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Some(spaced);
        }
        loop {
            let v = self.value_here(depth + 1)?;
            spaced |= v.flag() && matches!(v.kind(), Kind::Array | Kind::Object);
            spaced |= self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    spaced |= self.skip_ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Some(spaced);
                }
                _ => return self.fail("expected , or ]"),
            }
        }
    }

    /// Scans an object at the cursor (after optional whitespace), calling `f` with each key; `f` must
    /// consume exactly the entry's value with [`Scanner::value_opt`] (at depth `depth + 1`). On
    /// `None`, [`Scanner::error`] says why.
    #[inline]
    pub fn object(
        &mut self,
        depth: u32,
        mut f: impl FnMut(&mut Self, Str<'a>) -> Option<()>,
    ) -> Option<()> {
        if depth >= MAX_DEPTH {
            return self.fail("nesting too deep");
        }
        self.skip_ws();
        self.eat(b'{')?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.eat(b'"')?;
            let key = self.string_rest()?;
            self.skip_ws();
            self.eat(b':')?;
            f(self, key)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return self.fail("expected , or }"),
            }
        }
    }
}

/// Up to 8 bytes as a little-endian word, zero-padded (`None` for longer input): a key's identity
/// in one register. Two inputs of different lengths give different words unless one ends in NUL
/// bytes, which a raw JSON string cannot contain (control bytes are escaped).
#[inline(always)]
pub(crate) fn word(b: &[u8]) -> Option<u64> {
    let n = b.len();
    Some(match n {
        0 => 0,
        // Overlapping loads: the bytes they share are equal, so OR-ing them is exact.
        1..=3 => {
            u64::from(b[0])
                | u64::from(b[n / 2]) << (8 * (n / 2))
                | u64::from(b[n - 1]) << (8 * (n - 1))
        }
        4..=8 => {
            let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let hi = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]);
            u64::from(lo) | u64::from(hi) << (8 * (n - 4))
        }
        _ => return None,
    })
}

/// [`word`] at compile time (`s` must be at most 8 bytes).
pub(crate) const fn word_const(s: &str) -> u64 {
    let b = s.as_bytes();
    assert!(b.len() <= 8, "a word holds at most 8 bytes");
    let mut v = 0u64;
    let mut i = 0;
    while i < b.len() {
        v |= (b[i] as u64) << (8 * i);
        i += 1;
    }
    v
}

/// How many ASCII digits `b` starts with.
#[inline(always)]
pub(crate) fn count_digits(b: &[u8]) -> usize {
    b.iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len())
}

/// The bytes that end a run of plain string bytes: `"`, `\\` and the control bytes.
pub(crate) static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

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

#[cfg(all(test, not(loom)))]
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
    fn word_matches_its_const_form() {
        for k in [
            "", "a", "to", "key", "type", "group", "msg_id", "offsets", "consumer",
        ] {
            assert_eq!(word(k.as_bytes()), Some(word_const(k)), "{k}");
        }
        assert_eq!(word(b"partition"), None);
        assert_ne!(word(b"ab"), word(b"abc"));
        assert_ne!(word(b"type"), word(b"typo"));
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
            let v = sc.value_opt(1)?;
            seen.push((k.raw(), v.text()));
            Some(())
        })
        .unwrap();
        assert_eq!(seen, vec![("a", "1"), ("b", r#"{"c":2}"#)]);
    }
}
