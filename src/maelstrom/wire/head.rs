//! The head of a line that cannot be decoded whole: who sent it and which request it is, read
//! from the line's start, so that a line refused as a whole (longer than the line limit, nested
//! deeper than [`super::scan::MAX_DEPTH`], not JSON) still gets an error reply rather than leave
//! its client waiting for a timeout.
//!
//! [`head`] walks the envelope's members and the body's in order and stops at the first thing it
//! cannot read (the end of a prefix, a syntax error); what it found before that stands. Values
//! it does not need are skipped by counting brackets, with no depth limit and no recursion.
//! Strings it keeps are fully validated by the [`Scanner`], so they are safe to write back.

use super::scan::{Scanner, Str};

/// What the start of a line says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Head<'a> {
    /// The envelope's `src`.
    pub src: Option<Str<'a>>,
    /// The envelope's `dest`.
    pub dest: Option<Str<'a>>,
    /// The body's `msg_id`.
    pub msg_id: Option<u64>,
    /// The body's `type`.
    pub ty: Option<Str<'a>>,
    /// Whether the body has an `in_reply_to` (a reply, which is never answered).
    pub reply: bool,
}

/// Reads the head of `line`, which may be cut anywhere (even inside a UTF-8 sequence).
pub fn head(line: &[u8]) -> Head<'_> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        // The valid prefix: a cut line may end inside a character.
        Err(e) => std::str::from_utf8(&line[..e.valid_up_to()]).unwrap_or_default(),
    };
    let mut h = Head::default();
    let mut w = Walk { text, i: 0 };
    let _ = w.object(|w, key| {
        match key {
            "src" => h.src = Some(w.string()?),
            "dest" => h.dest = Some(w.string()?),
            "body" if w.peek() == Some(b'{') => w.object(|w, key| {
                match key {
                    "msg_id" => h.msg_id = Some(w.uint()?),
                    "type" => h.ty = Some(w.string()?),
                    "in_reply_to" => {
                        h.reply = true;
                        w.skip()?
                    }
                    _ => w.skip()?,
                }
                Some(())
            })?,
            _ => w.skip()?,
        }
        Some(())
    });
    h
}

/// A cursor over the text.
struct Walk<'a> {
    text: &'a str,
    i: usize,
}

impl<'a> Walk<'a> {
    fn peek(&mut self) -> Option<u8> {
        while let Some(&c) = self.text.as_bytes().get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                return Some(c);
            }
            self.i += 1;
        }
        None
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// An object's members, each handed to `f` with its (plain) key once the `:` is read.
    fn object(&mut self, mut f: impl FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            self.peek()?;
            f(self, &key.decode())?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string, validated by the scanner.
    fn string(&mut self) -> Option<Str<'a>> {
        self.peek()?;
        let mut sc = Scanner::at(self.text, self.i);
        let v = sc.value_opt(1)?.as_str()?;
        self.i = sc.pos();
        Some(v)
    }

    /// A non-negative integer.
    fn uint(&mut self) -> Option<u64> {
        self.peek()?;
        let mut sc = Scanner::at(self.text, self.i);
        let v = sc.value_opt(1)?;
        // A number cut by the end of a prefix is no number.
        if sc.pos() >= self.text.len() {
            return None;
        }
        self.i = sc.pos();
        v.as_u64()
    }

    /// Skips one value of any depth, by counting brackets outside strings.
    fn skip(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                    continue;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.i += 1;
                }
                b',' | b':' if depth > 0 => {
                    self.i += 1;
                    continue;
                }
                _ => {
                    let rest = &self.text.as_bytes()[self.i..];
                    let n = rest
                        .iter()
                        .position(|c| b",:]} \t\r\n".contains(c))
                        .unwrap_or(rest.len());
                    if n == 0 || n == rest.len() {
                        return None;
                    }
                    self.i += n;
                }
            }
            if depth == 0 {
                return Some(());
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn of(line: &str) -> (Option<&str>, Option<&str>, Option<u64>, Option<&str>, bool) {
        let h = head(line.as_bytes());
        (
            h.src.map(|s| s.raw()),
            h.dest.map(|s| s.raw()),
            h.msg_id,
            h.ty.map(|s| s.raw()),
            h.reply,
        )
    }

    #[test]
    fn reads_what_comes_before_the_cut() {
        let full = r#"{"id":3,"src":"c1","dest":"n1","body":{"type":"send","msg_id":7,"key":"k","msg":"xxxxxxxx"}}"#;
        assert_eq!(
            of(full),
            (Some("c1"), Some("n1"), Some(7), Some("send"), false)
        );
        // Cut inside the message: everything before it stands.
        assert_eq!(
            of(&full[..full.len() - 8]),
            (Some("c1"), Some("n1"), Some(7), Some("send"), false)
        );
        // Cut inside the msg_id: no msg_id.
        let cut = full.find("7,").unwrap() + 1;
        assert_eq!(of(&full[..cut]).2, None);
        // A msg_id after a deep value is still found.
        let deep = format!(
            r#"{{"src":"c2","dest":"n1","body":{{"type":"send","msg":{}{},"msg_id":9}}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(
            of(&deep),
            (Some("c2"), Some("n1"), Some(9), Some("send"), false)
        );
        assert!(of(r#"{"src":"n2","body":{"in_reply_to":1,"msg_id":4}}"#).4);
        assert_eq!(of("garbage"), (None, None, None, None, false));
        assert_eq!(
            of(r#"{"src":"a\q"}"#).0,
            None,
            "an invalid escape is no string"
        );
        assert_eq!(of("{\"src\":\"c\u{e9}"), (None, None, None, None, false));
        let mut cut_utf8 = br#"{"src":"c1","body":{"msg_id":2,"msg":"#.to_vec();
        cut_utf8.extend_from_slice(&"\"é".as_bytes()[..2]);
        let h = head(&cut_utf8);
        assert_eq!((h.src.map(|s| s.raw()), h.msg_id), (Some("c1"), Some(2)));
    }
}
