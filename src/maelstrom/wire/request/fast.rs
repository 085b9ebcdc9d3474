//! The exact-layout fast path of [`decode_str`](super::decode_str).
//!
//! Maelstrom writes every request as `{"id":N,"src":"…","dest":"…","body":{…}}` and the lab's
//! driver as the same without `id`: compact, envelope keys in that order, body values that are
//! plain strings and integers (a `poll`'s `offsets` is one small object). [`decode`] reads exactly
//! that shape with fixed-prefix compares and one tight loop over the body's fields, and returns
//! `None` on anything else — whitespace, another key order, an escape in a key or a string, a
//! number with a sign, fraction or exponent, a trailing byte, a syntax error — so the general
//! validating scanner decides every unusual line (and words its errors).
//!
//! What it accepts, the general path accepts too, with the very same [`Message`]: the same spans
//! filed under the same fields in the same order (repeated and unknown body fields included),
//! the same kinds and flags. Nested values (`{`, `[`, `true`, `false`, `null`) are scanned by the
//! general scanner itself at the same depth. `tests::agrees_with_the_general_path` checks this on
//! generated lines.

use super::{Body, Field, LineError, Message};
use crate::maelstrom::wire::scan::{count_digits, word_const, Kind, Scanner, Str, STRING_STOP};

/// Decodes `text` if it has the exact layout described in the module doc; `Err(FALLBACK)`
/// otherwise (the caller then runs the general path, which may still accept the line). The
/// result has the type of [`decode_str`](super::decode_str)'s, so that the caller returns it as
/// it is, without moving the message into another wrapper.
#[inline]
pub(super) fn decode(text: &str) -> Result<Message<'_>, LineError> {
    // Filled in place: the body is written where the caller will read it, not copied there.
    let mut m = Message {
        src: Str::plain(""),
        dest: None,
        body: Body::empty(text),
    };
    match fill(text, &mut m) {
        Some(()) => Ok(m),
        None => Err(FALLBACK),
    }
}

/// What [`decode`] returns for a line it leaves to the general path (never returned from
/// [`decode_str`](super::decode_str)).
pub(super) const FALLBACK: LineError = LineError::NoSrc;

/// Reads `text` into `m` (fresh), or `None` (leaving `m` partly filled).
#[inline(always)]
fn fill<'a>(text: &'a str, m: &mut Message<'a>) -> Option<()> {
    let b = text.as_bytes();
    let mut i;
    // The envelope: `{"id":<int>,"src":"` or `{"src":"`.
    if let Some(r) = b.strip_prefix(b"{\"id\":") {
        let n = int_len(r)?;
        i = 6 + n;
        i += prefix_len(&b[i..], b",\"src\":\"")?;
    } else {
        i = prefix_len(b, b"{\"src\":\"")?;
    }
    let (src, n) = plain(text, i)?;
    m.src = src;
    i += n;
    i += prefix_len(&b[i..], b",\"dest\":\"")?;
    let (dest, n) = plain(text, i)?;
    m.dest = Some(dest);
    i += n;
    i += prefix_len(&b[i..], b",\"body\":{")?;
    let body = &mut m.body;
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            // `"key":`
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let (found, n) = key(text, i + 1)?;
            let key_at = i + 1;
            i += 1 + n;
            if b.get(i) != Some(&b':') {
                return None;
            }
            i += 1;
            // The value: its packed kind (see `Raw::pack`: kind << 1 | flag) and length.
            let (packed, len) = match *b.get(i)? {
                b'"' => ((Kind::Str as u8) << 1, 2 + plain_len(b, i + 1)?),
                b'1'..=b'9' => (
                    (Kind::Int as u8) << 1,
                    number_end(b, i, count_digits(&b[i..]))?,
                ),
                b'0' => ((Kind::Int as u8) << 1, number_end(b, i, 1)?),
                b'{' | b'[' | b't' | b'f' | b'n' => {
                    let mut sc = Scanner::at(text, i);
                    let v = sc.value_opt(2)?;
                    (v.pack(), v.text().len())
                }
                _ => return None,
            };
            match found {
                Some((f, spelling)) => body.put_span(f, spelling, packed, i, len),
                None => body.note_unknown(key_at, n - 1),
            }
            i += len;
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    // The envelope's closing brace ends the line.
    (i + 1 == b.len() && b[i] == b'}').then_some(())
}

/// The length of `prefix` if `b` starts with it.
#[inline(always)]
fn prefix_len(b: &[u8], prefix: &[u8]) -> Option<usize> {
    b.starts_with(prefix).then_some(prefix.len())
}

/// A plain string's body starting at byte `at` of `text` (after its opening quote): the string,
/// and how many bytes it spans with its closing quote. `None` at an escape, a control byte or
/// the end of the text.
#[inline(always)]
fn plain(text: &str, at: usize) -> Option<(Str<'_>, usize)> {
    let n = plain_len(text.as_bytes(), at)?;
    Some((Str::plain(text.get(at..at + n)?), n + 1))
}

/// A body key starting at byte `at` of `text` (after its opening quote), looked up: the field
/// it names (if any), and how many bytes the key spans with its closing quote. `None` where
/// [`plain`] gives `None`.
#[inline(always)]
fn key(text: &str, at: usize) -> Option<(Option<(Field, u8)>, usize)> {
    let b = text.as_bytes();
    if let Some(w) = load(b, at) {
        if let Some(n) = quote_in(w)? {
            // A key of at most 7 bytes, all in `w`: its `word` is `w` cut at the quote.
            let word = w & ((1u64 << (8 * n)) - 1);
            return Some((hot_key(word), n + 1));
        }
    }
    let n = plain_len(b, at)?;
    Some((Field::lookup(text.get(at..at + n)?), n + 1))
}

/// [`Field::lookup_word`], with the keys of a `send` compared first: a well-predicted compare
/// instead of a hash and a table load on the hot path.
#[inline(always)]
fn hot_key(word: u64) -> Option<(Field, u8)> {
    const TYPE: u64 = word_const("type");
    const MSG_ID: u64 = word_const("msg_id");
    const KEY: u64 = word_const("key");
    const MSG: u64 = word_const("msg");
    match word {
        TYPE => Some((Field::Type, 0)),
        MSG_ID => Some((Field::MsgId, 0)),
        KEY => Some((Field::Key, 0)),
        MSG => Some((Field::Msg, 0)),
        _ => Field::lookup_word(word),
    }
}

/// The length of the plain string body at `b[at..]`: the offset of its closing quote. `None` at
/// an escape, a control byte or the end of `b`.
#[inline(always)]
fn plain_len(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    // Eight bytes at a time while they last; then byte by byte.
    while let Some(w) = load(b, i) {
        if let Some(n) = quote_in(w)? {
            return Some(i + n - at);
        }
        i += 8;
    }
    i += b
        .get(i..)?
        .iter()
        .position(|&c| STRING_STOP[usize::from(c)])?;
    (b[i] == b'"').then_some(i - at)
}

/// Where the first byte of `w` (little-endian) that ends a plain string is: `Some(Some(n))` when
/// it is a quote at byte `n`, `Some(None)` when there is none, `None` when it is a backslash or
/// a control byte (the string is not plain).
#[inline(always)]
fn quote_in(w: u64) -> Option<Option<usize>> {
    let (all, quote) = stops(w);
    if all == 0 {
        return Some(None);
    }
    // The lowest flag of `all` is exact (see `stops`), and it is a quote's iff it is in `quote`.
    let lowest = all & all.wrapping_neg();
    (lowest & quote != 0).then_some(Some((all.trailing_zeros() / 8) as usize))
}

/// The 8 bytes at `b[at..]` as a little-endian word, if there are 8.
#[inline(always)]
fn load(b: &[u8], at: usize) -> Option<u64> {
    let chunk = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(chunk.try_into().ok()?))
}

/// The high bit of each byte of `w` that ends a plain string (`"`, `\\` or a control byte), and
/// of each quote byte. Each is exact up to and including its lowest flag (higher flags may be
/// spurious), so `trailing_zeros() / 8` of the first is the index of the first stop byte.
///
/// Each term is the classic "byte below n" test `(x - n·0x01…) & !x & 0x80…`: a byte's flag is
/// wrong only through a borrow from a lower byte that itself tested true. So at the lowest flag
/// of the first word, the quote word's flag is exact too: the lowest flag is a quote's iff the
/// quote word has it.
#[inline(always)]
fn stops(w: u64) -> (u64, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES << 7;
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let zero_quote = quote.wrapping_sub(ONES) & !quote & HIGH;
    let zero_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    ((zero_quote | zero_backslash | control) & HIGH, zero_quote)
}

/// The length of a JSON integer without sign at the start of `b` that ends the number: `0` or
/// `[1-9][0-9]*`, not followed by a fraction, an exponent or another digit.
#[inline(always)]
fn int_len(b: &[u8]) -> Option<usize> {
    match b.first()? {
        b'0' => number_end(b, 0, 1),
        b'1'..=b'9' => number_end(b, 0, count_digits(b)),
        _ => None,
    }
}

/// `n`, the length of the integer at `b[at..]`, unless the number goes on (a fraction, an
/// exponent, or a digit after a leading zero): those are for the general path.
#[inline(always)]
fn number_end(b: &[u8], at: usize, n: usize) -> Option<usize> {
    match b.get(at + n) {
        Some(b'.' | b'e' | b'E' | b'0'..=b'9') => None,
        _ => Some(n),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::{decode_general, decode_str, LineError};
    use super::FALLBACK;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    /// Both paths give the same result for `text` (compared through `Debug`, which shows every
    /// span, kind, flag and field of the message, or the error); returns whether the fast path
    /// took the line.
    fn same(text: &str) -> bool {
        let general = format!("{:?}", decode_general(text));
        assert_eq!(format!("{:?}", decode_str(text)), general, "{text}");
        match super::decode(text) {
            Ok(m) => {
                assert_eq!(format!("{:?}", Ok::<_, LineError>(m)), general, "{text}");
                true
            }
            Err(e) => {
                assert_eq!(e, FALLBACK);
                false
            }
        }
    }

    const LINES: &[&str] = &[
        r#"{"id":12,"src":"c1","dest":"n0","body":{"type":"send","key":"12","msg":345,"msg_id":7}}"#,
        r#"{"src":"c1","dest":"n0","body":{"type":"send","msg_id":7,"key":"12","msg":345}}"#,
        r#"{"src":"c3","dest":"n0","body":{"type":"poll","msg_id":9,"offsets":{"17":4}}}"#,
        r#"{"src":"c3","dest":"n0","body":{"type":"commit_offsets","msg_id":10,"offsets":{"17":4,"2":0}}}"#,
        r#"{"src":"c4","dest":"n0","body":{"type":"poll","msg_id":3,"group":"g1","consumer":"c4","max_messages":100}}"#,
        r#"{"id":0,"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1","n2"]}}"#,
        r#"{"src":"c1","dest":"n0","body":{"type":"x","auto_commit":true,"topic":null,"msg":[1,{"a":false}]}}"#,
        r#"{"src":"c1","dest":"n0","body":{}}"#,
        r#"{"src":"","dest":"","body":{"":0,"é":"ü"}}"#,
    ];

    #[test]
    fn takes_the_common_layouts() {
        for line in LINES {
            assert!(same(line), "fell back on {line}");
        }
        let m = decode_str(LINES[0]).unwrap();
        assert_eq!(m.src.raw(), "c1");
        assert_eq!(m.dest.unwrap().raw(), "n0");
        assert_eq!(m.body.str(super::Field::Key).unwrap().raw(), "12");
        assert_eq!(m.body.u64(super::Field::MsgId).unwrap(), 7);
        assert_eq!(m.body.raw(super::Field::Msg).unwrap().text(), "345");
    }

    #[test]
    fn falls_back_on_unusual_layouts() {
        for line in [
            r#"{ "src":"c1","dest":"n0","body":{"type":"send"}}"#,
            r#"{"src":"c1","dest":"n0","body":{"type":"send"}} "#,
            r#"{"dest":"n0","src":"c1","body":{"type":"send"}}"#,
            r#"{"src":"c1","body":{"type":"send"}}"#,
            r#"{"src":"c\"1","dest":"n0","body":{"type":"send"}}"#,
            r#"{"src":"c1","dest":"n0","body":{"\u0074ype":"send"}}"#,
            r#"{"src":"c1","dest":"n0","body":{"type":"se\nd"}}"#,
            r#"{"src":"c1","dest":"n0","body":{"msg":-1}}"#,
            r#"{"src":"c1","dest":"n0","body":{"msg":1.5}}"#,
            r#"{"src":"c1","dest":"n0","body":{"msg":01}}"#,
            r#"{"id":01,"src":"c1","dest":"n0","body":{}}"#,
            r#"{"id":"1","src":"c1","dest":"n0","body":{}}"#,
            r#"{"src":"c1","dest":"n0","body":{},"x":1}"#,
            r#"{"src":"c1","dest":"n0","body":{"msg":tru}}"#,
            r#"{"src":"c1","dest":"n0","body":{"type":"send"}"#,
        ] {
            assert!(!same(line), "took {line}");
        }
    }

    /// Every one-byte deletion, and every one-byte replacement by a byte that matters to JSON,
    /// of each common line.
    #[test]
    fn one_byte_edits_agree() {
        let mut took = 0;
        for line in LINES {
            let b = line.as_bytes();
            for i in 0..b.len() {
                let mut v = b.to_vec();
                v.remove(i);
                took += usize::from(std::str::from_utf8(&v).is_ok_and(same));
                for c in *b" \"\\,:{}[]0-1.eax\n" {
                    let mut v = b.to_vec();
                    v[i] = c;
                    took += usize::from(std::str::from_utf8(&v).is_ok_and(same));
                    v.insert(i, c);
                    took += usize::from(std::str::from_utf8(&v).is_ok_and(same));
                }
            }
        }
        assert!(took > 1000, "the fast path took only {took} edited lines");
    }

    /// Mostly `common`, sometimes one of `odd`.
    fn pick(common: &[&'static str], odd: &[&'static str]) -> BoxedStrategy<String> {
        prop_oneof![
            12 => prop::sample::select(common.to_vec()),
            1 => prop::sample::select(odd.to_vec()),
        ]
        .prop_map(str::to_string)
        .boxed()
    }

    fn value() -> BoxedStrategy<String> {
        pick(
            &[
                r#""plain""#,
                r#""12""#,
                r#""""#,
                r#""é""#,
                "0",
                "7",
                "345",
                "true",
                "false",
                "null",
                "{}",
                "[]",
                r#"{"17":4}"#,
                r#"[1,[2],{"a":null}]"#,
            ],
            &[
                r#""a\"b""#,
                r#""\u00e9""#,
                "18446744073709551616",
                "01",
                "-3",
                "1.5",
                "2e3",
                "1E+2",
                r#"{ "17" : 4 }"#,
                "[1, 2]",
                "tru",
                r#"{"a":}"#,
                r#""open"#,
                "[1,]",
                "-",
                "",
            ],
        )
    }

    fn key() -> BoxedStrategy<String> {
        pick(
            &[
                "type",
                "msg_id",
                "key",
                "msg",
                "message",
                "value",
                "offsets",
                "in_reply_to",
                "group_id",
                "max_messages",
                "session_timeout_ms",
                "partition",
                "x",
                "",
                "typé",
            ],
            &[r"\u0074ype", r#"ke\"y"#, "ty\npe"],
        )
    }

    fn line() -> impl Strategy<Value = String> {
        let ws = pick(&[""], &[" ", "\t", "\n ", "\r"]);
        let field = (key(), value(), ws.clone(), ws.clone());
        let body = prop::collection::vec(field, 0..8).prop_map(|fs| {
            let inner: Vec<String> = fs
                .into_iter()
                .map(|(k, v, w, x)| format!("{w}\"{k}\"{x}:{v}"))
                .collect();
            format!("{{{}}}", inner.join(","))
        });
        let env = || {
            pick(
                &[r#""c1""#, r#""n0""#, r#""c12""#, r#""""#],
                &[r#""c\"1""#, "7", "null", "{}"],
            )
        };
        let id = prop::option::of(pick(&["0", "7", "123456"], &["01", "-1", "1.5", r#""9""#]));
        let order = pick(
            &["", "", "", "", ""],
            &["swap", "again", "nodest", "extra", "tail"],
        );
        (id, env(), env(), body, order, ws).prop_map(|(id, src, dest, body, order, w)| {
            let mut e = vec![
                format!("\"src\":{src}"),
                format!("\"dest\":{dest}"),
                format!("\"body\":{body}"),
            ];
            match order.as_str() {
                "swap" => e.swap(0, 1),
                "again" => e.push(format!("\"src\":{src}")),
                "nodest" => {
                    e.remove(1);
                }
                "extra" => e.push("\"x\":[1]".into()),
                _ => {}
            }
            if let Some(id) = id {
                e.insert(0, format!("\"id\":{id}"));
            }
            let mut s = format!("{{{}}}", e.join(&format!(",{w}")));
            if order == "tail" {
                s.push_str(" }");
            }
            s
        })
    }

    #[test]
    fn hot_keys_agree_with_the_table() {
        for (f, _, _) in super::super::SPELLINGS {
            for (i, name) in f.spellings().iter().enumerate() {
                if let Some(w) = crate::maelstrom::wire::scan::word(name.as_bytes()) {
                    assert_eq!(super::hot_key(w), Some((*f, i as u8)), "{name}");
                    assert_eq!(super::hot_key(w), super::Field::lookup_word(w), "{name}");
                }
            }
        }
        assert_eq!(
            super::hot_key(crate::maelstrom::wire::scan::word_const("typ")),
            None
        );
    }

    /// The first stop byte of a word, byte by byte.
    fn first_stop(w: u64) -> Option<usize> {
        w.to_le_bytes()
            .iter()
            .position(|&c| super::STRING_STOP[usize::from(c)])
    }

    /// `stops` and `quote_in` agree with a byte loop on `w`.
    fn check_word(w: u64) {
        let first = first_stop(w);
        let (all, _) = super::stops(w);
        let got = (all != 0).then(|| (all.trailing_zeros() / 8) as usize);
        assert_eq!(got, first, "{w:#x}");
        let want = match first {
            None => Some(None),
            Some(n) if w.to_le_bytes()[n] == b'"' => Some(Some(n)),
            Some(_) => None,
        };
        assert_eq!(super::quote_in(w), want, "{w:#x}");
    }

    #[test]
    fn stops_finds_the_first_stop_byte() {
        let interesting = [
            0u8, 1, 0x1f, 0x20, 0x21, b'"', b'#', b'\\', b']', b'a', 0x7f, 0x80, 0xc3, 0xff,
        ];
        for &x in &interesting {
            for &y in &interesting {
                for i in 0..8 {
                    for j in 0..8 {
                        let mut b = [b'a'; 8];
                        b[i] = x;
                        b[j] = y;
                        let w = u64::from_le_bytes(b);
                        check_word(w);
                    }
                }
            }
        }
    }

    #[test]
    fn plain_len_agrees_with_a_byte_loop() {
        for len in 0..40 {
            for stop in [b'"', b'\\', b'\n', 0] {
                for at in 0..=len {
                    let mut b = vec![b'x'; len];
                    b.insert(at, stop);
                    let want = b.iter().position(|&c| super::STRING_STOP[usize::from(c)]);
                    let want = want.filter(|&i| b[i] == b'"');
                    assert_eq!(super::plain_len(&b, 0), want, "{b:?}");
                }
            }
            assert_eq!(super::plain_len(&vec![b'y'; len], 0), None);
        }
    }

    proptest! {
        #[test]
        fn stops_agrees_on_random_words(w in any::<u64>()) {
            check_word(w);
        }
    }

    /// The generated lines exercise both paths: many take the fast one, many fall back.
    #[test]
    fn generated_lines_take_both_paths() {
        let mut runner = TestRunner::deterministic();
        let gen = line();
        let n = 20_000;
        let took = (0..n)
            .filter(|_| same(&gen.new_tree(&mut runner).unwrap().current()))
            .count();
        assert!(
            took > n / 10 && took < n * 9 / 10,
            "fast path took {took} of {n}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn agrees_with_the_general_path(text in line()) {
            same(&text);
        }

        #[test]
        fn agrees_on_edited_lines(text in line(), at in any::<prop::sample::Index>(), c in any::<u8>()) {
            let mut b = text.into_bytes();
            let i = at.index(b.len() + 1);
            b.insert(i, c);
            if let Ok(t) = std::str::from_utf8(&b) {
                same(t);
            }
        }
    }
}
