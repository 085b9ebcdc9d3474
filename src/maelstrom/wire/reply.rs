//! Encoding messages straight into an output buffer.
//!
//! No tree, no serde: a reply is written in its final key order — `src`, `dest`, `body`; in the body
//! `type`, the payload fields, `in_reply_to`, `msg_id` — with `itoa` for integers. Strings the node got
//! on the wire (`src`, `dest`, keys) are written back in their escaped wire form; strings that come
//! from the engine are escaped here. A message ends with a newline.

/// Writes JSON tokens into a `Vec<u8>`.
pub trait JsonOut {
    /// Appends bytes as they are (already valid JSON text).
    fn raw(&mut self, bytes: &[u8]) -> &mut Self;
    /// Appends `,"name":` — the start of a body field after `type`.
    fn key(&mut self, name: &str) -> &mut Self;
    /// Appends an unsigned integer.
    fn uint(&mut self, v: u64) -> &mut Self;
    /// Appends a string, escaping as JSON requires.
    fn string(&mut self, s: &str) -> &mut Self;
    /// Appends a string whose escaped (wire) form is `raw`: `"raw"`.
    fn raw_string(&mut self, raw: &str) -> &mut Self;
}

impl JsonOut for Vec<u8> {
    #[inline]
    fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.extend_from_slice(bytes);
        self
    }

    #[inline]
    fn key(&mut self, name: &str) -> &mut Self {
        self.extend_from_slice(b",\"");
        self.extend_from_slice(name.as_bytes());
        self.extend_from_slice(b"\":");
        self
    }

    #[inline]
    fn uint(&mut self, v: u64) -> &mut Self {
        let mut b = itoa::Buffer::new();
        self.extend_from_slice(b.format(v).as_bytes());
        self
    }

    #[inline]
    fn string(&mut self, s: &str) -> &mut Self {
        write_escaped(self, s.as_bytes());
        self
    }

    #[inline]
    fn raw_string(&mut self, raw: &str) -> &mut Self {
        self.push(b'"');
        self.extend_from_slice(raw.as_bytes());
        self.push(b'"');
        self
    }
}

/// Appends the UTF-8 text `s` as a JSON string. Only ASCII bytes are escaped, so valid UTF-8 stays
/// valid.
pub fn write_escaped(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let b = s;
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&b[run..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        run = i + 1;
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
}

/// Starts a message: `{"src":"<src>","dest":"<dest>","body":{"type":"<type><suffix>"`.
/// `src`, `dest` and `ty` are escaped (wire) forms. Continue with [`JsonOut::key`] fields and close
/// with [`end`].
#[inline]
pub fn begin(out: &mut Vec<u8>, src: &str, dest: &str, ty: &str, suffix: &str) {
    out.extend_from_slice(b"{\"src\":\"");
    out.extend_from_slice(src.as_bytes());
    out.extend_from_slice(b"\",\"dest\":\"");
    out.extend_from_slice(dest.as_bytes());
    out.extend_from_slice(b"\",\"body\":{\"type\":\"");
    out.extend_from_slice(ty.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    out.push(b'"');
}

/// Ends a message: `,"in_reply_to":N` (when replying), `,"msg_id":M}}` and a newline.
#[inline]
pub fn end(out: &mut Vec<u8>, in_reply_to: Option<u64>, msg_id: u64) {
    if let Some(r) = in_reply_to {
        out.key("in_reply_to").uint(r);
    }
    out.key("msg_id").uint(msg_id);
    out.extend_from_slice(b"}}\n");
}

/// Writes a whole error reply: `{"type":"error","code":C,"text":"…","in_reply_to":…,"msg_id":…}`.
pub fn error(
    out: &mut Vec<u8>,
    src: &str,
    dest: &str,
    in_reply_to: Option<u64>,
    msg_id: u64,
    code: u32,
    text: &str,
) {
    begin(out, src, dest, "error", "");
    out.key("code").uint(u64::from(code));
    out.key("text").string(text);
    end(out, in_reply_to, msg_id);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn init_ok_byte_for_byte() {
        let mut out = Vec::new();
        begin(&mut out, "n1", "c0", "init", "_ok");
        end(&mut out, Some(1), 0);
        assert_eq!(
            out,
            b"{\"src\":\"n1\",\"dest\":\"c0\",\"body\":{\"type\":\"init_ok\",\"in_reply_to\":1,\"msg_id\":0}}\n"
        );
    }

    #[test]
    fn escapes_round_trip_through_serde() {
        for s in ["plain", "q\"b\\s", "nl\n\t\r", "\u{1}\u{1f}", "é😀", ""] {
            let mut out = Vec::new();
            write_escaped(&mut out, s.as_bytes());
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn error_reply_shape() {
        let mut out = Vec::new();
        error(&mut out, "n1", "c2", Some(5), 9, 12, "missing field `key`");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "{\"src\":\"n1\",\"dest\":\"c2\",\"body\":{\"type\":\"error\",\"code\":12,\"text\":\"missing field `key`\",\"in_reply_to\":5,\"msg_id\":9}}\n"
        );
    }
}
