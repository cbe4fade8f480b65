//! The fast reader of audit log lines of the usual shape (no escapes, no
//! control characters): the same [`TopLevel`] as the serde reader, in one pass.
//!
//! It declines (returns `None`) whatever it is not sure of, so that the
//! serde reader decides on that line alone, and words any error. Whatever it
//! accepts, the serde reader accepts too and reads the same way: it checks the
//! JSON grammar in full, and reads the actor's fields through the same
//! [`Part::slot`] table.

use std::borrow::Cow;
use std::cell::OnceCell;

use super::actor::{Actor, ObjectRead, Part, Slot};
use super::{TopField, TopLevel};

/// Deepest nesting read here (the serde reader allows 128).
const MAX_DEPTH: u32 = 100;

/// Reads one JSON object the way the serde top-level reader does, or declines.
/// The actor, when read, goes to `actor`.
/// The other fields go to `fields`; `quotes` is room for the quote map.
pub(super) fn top_level<'a>(
    json: &'a str,
    wants_actor: &mut dyn FnMut(&str) -> bool,
    actor: &mut Option<Actor<'a>>,
    fields: Vec<TopField<'a>>,
    quotes: &mut Vec<u64>,
) -> Option<TopLevel<'a>> {
    if !map_quotes(json.as_bytes(), quotes) {
        return None;
    }
    read(json, quotes, wants_actor, actor, fields)
}

fn read<'a>(
    json: &'a str,
    quotes: &[u64],
    wants_actor: &mut dyn FnMut(&str) -> bool,
    actor: &mut Option<Actor<'a>>,
    fields: Vec<TopField<'a>>,
) -> Option<TopLevel<'a>> {
    let s = Scanner {
        text: json,
        bytes: json.as_bytes(),
        quotes,
    };
    let mut top = TopLevel::new(fields);
    let mut p = s.ws(0);
    if s.at(p) != b'{' {
        return None;
    }
    p = s.ws(p + 1);
    if s.at(p) == b'}' {
        p += 1;
    } else {
        loop {
            let (key, at) = s.key(p)?;
            // A key read twice declines: the serde reader words the refusal.
            p = match key {
                "id" if top.id.is_none() => {
                    let (id, end) = s.string(at)?;
                    top.id = Some(Cow::Borrowed(id));
                    end
                }
                "type" if top.kind.is_none() => {
                    let (kind, end) = s.string(at)?;
                    top.kind = Some(Cow::Borrowed(kind));
                    end
                }
                "effective_at" if top.effective_at.is_none() => {
                    let (secs, end) = s.unix_seconds(at)?;
                    top.effective_at = Some(secs);
                    end
                }
                "id" | "type" | "effective_at" => return None,
                // Read unless the type came first and no rule wants it: an
                // actor before the type (sorted keys) is read at once rather
                // than skipped and read again.
                "actor" if !top.actor_read && top.kind.as_deref().is_none_or(&mut *wants_actor) => {
                    if top.has(key) {
                        return None;
                    }
                    let end = s.actor(at, actor)?;
                    top.actor_read = true;
                    top.actor_raw = Some(&json[at..end]);
                    end
                }
                key => {
                    if top.has(key) {
                        return None;
                    }
                    let end = s.skip(at, 1)?;
                    top.fields.push(TopField {
                        key: Cow::Borrowed(key),
                        raw: &json[at..end],
                        parsed: OnceCell::new(),
                    });
                    end
                }
            };
            match s.next_member(p)? {
                (true, next) => p = next,
                (false, end) => {
                    p = end;
                    break;
                }
            }
        }
    }
    (s.ws(p) == s.bytes.len()).then_some(top)
}

/// Maps the quotes of `b` into `bits` (bit `i % 64` of word `i / 64` for
/// byte `i`); false when `b` holds a backslash or a control character, which
/// the serde reader then handles. One pass, 64 bytes at a time; with no
/// escapes, every quote opens or closes a string, so finding a string's end
/// is a bit search.
fn map_quotes(b: &[u8], bits: &mut Vec<u64>) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { map_quotes_avx2(b, bits) };
    }
    map_quotes_with(b, bits, block_masks)
}

/// [`map_quotes`] with 32-byte vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn map_quotes_avx2(b: &[u8], bits: &mut Vec<u64>) -> bool {
    // SAFETY: this function only runs where AVX2 is (see `map_quotes`).
    map_quotes_with(b, bits, |block| block_masks_avx2(block))
}

#[inline(always)]
fn map_quotes_with(b: &[u8], bits: &mut Vec<u64>, masks: impl Fn(&[u8; 64]) -> (u64, u64)) -> bool {
    bits.clear();
    bits.reserve(b.len() / 64 + 1);
    let mut blocks = b.chunks_exact(64);
    for block in &mut blocks {
        let (quotes, bad) = masks(block.try_into().expect("64 bytes"));
        if bad != 0 {
            return false;
        }
        bits.push(quotes);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        // Padded with spaces: neither quotes nor control characters.
        let mut last = [b' '; 64];
        last[..rest.len()].copy_from_slice(rest);
        let (quotes, bad) = masks(&last);
        if bad != 0 {
            return false;
        }
        bits.push(quotes);
    }
    true
}

/// The quotes of a 64-byte block, and its backslashes and control
/// characters, as bit masks.
#[cfg(target_arch = "x86_64")]
fn block_masks(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of every x86_64 CPU, and each unaligned load reads
    // 16 bytes inside `block`.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let control = _mm_set1_epi8(0x1f);
        let zero = _mm_setzero_si128();
        let (mut quotes, mut bad) = (0u64, 0u64);
        for i in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(i * 16).cast::<__m128i>());
            let q = _mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) as u16;
            // Saturating `v - 0x1f` is zero exactly for bytes up to 0x1f.
            let low = _mm_cmpeq_epi8(_mm_subs_epu8(v, control), zero);
            let x = _mm_movemask_epi8(_mm_or_si128(low, _mm_cmpeq_epi8(v, backslash))) as u16;
            quotes |= u64::from(q) << (i * 16);
            bad |= u64::from(x) << (i * 16);
        }
        (quotes, bad)
    }
}

/// [`block_masks`] with 32-byte vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn block_masks_avx2(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::*;
    // SAFETY: each unaligned load reads 32 bytes inside `block`.
    unsafe {
        let quote = _mm256_set1_epi8(b'"' as i8);
        let backslash = _mm256_set1_epi8(b'\\' as i8);
        let control = _mm256_set1_epi8(0x1f);
        let zero = _mm256_setzero_si256();
        let (mut quotes, mut bad) = (0u64, 0u64);
        for i in 0..2 {
            let v = _mm256_loadu_si256(block.as_ptr().add(i * 32).cast::<__m256i>());
            let q = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, quote)) as u32;
            // Saturating `v - 0x1f` is zero exactly for bytes up to 0x1f.
            let low = _mm256_cmpeq_epi8(_mm256_subs_epu8(v, control), zero);
            let x =
                _mm256_movemask_epi8(_mm256_or_si256(low, _mm256_cmpeq_epi8(v, backslash))) as u32;
            quotes |= u64::from(q) << (i * 32);
            bad |= u64::from(x) << (i * 32);
        }
        (quotes, bad)
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn block_masks(block: &[u8; 64]) -> (u64, u64) {
    block_masks_portable(block)
}

/// [`block_masks`] without vector instructions.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn block_masks_portable(block: &[u8; 64]) -> (u64, u64) {
    let (mut quotes, mut bad) = (0u64, 0u64);
    for (i, &b) in block.iter().enumerate() {
        quotes |= u64::from(b == b'"') << i;
        bad |= u64::from(b < 0x20 || b == b'\\') << i;
    }
    (quotes, bad)
}

/// Reads one line whose quotes are mapped. Every step takes the position
/// it starts at and returns the position after what it read (`None`: the
/// line is declined), so that the position stays in a register.
struct Scanner<'a, 'q> {
    text: &'a str,
    bytes: &'a [u8],
    /// Where the quotes are (see [`map_quotes`]).
    quotes: &'q [u64],
}

impl<'a> Scanner<'a, '_> {
    /// The byte at `p`, or 0 past the end: the line holds no control
    /// characters (see [`map_quotes`]), so 0 is never valid where a byte is
    /// expected.
    #[inline(always)]
    fn at(&self, p: usize) -> u8 {
        self.bytes.get(p).copied().unwrap_or(0)
    }

    /// Skips whitespace. Tabs and line breaks are control characters, which
    /// send the line to the serde reader, so only spaces can be met here.
    #[inline(always)]
    fn ws(&self, mut p: usize) -> usize {
        while self.at(p) == b' ' {
            p += 1;
        }
        p
    }

    #[inline]
    fn literal(&self, p: usize, word: &[u8]) -> Option<usize> {
        let hit = self.bytes.get(p..).is_some_and(|b| b.starts_with(word));
        hit.then_some(p + word.len())
    }

    /// A member's key (its opening quote at `p`), and where its value
    /// starts, past the colon.
    #[inline(always)]
    fn key(&self, p: usize) -> Option<(&'a str, usize)> {
        let (key, mut p) = self.string(p)?;
        // Lines seldom hold spaces: the byte expected is looked at first.
        if self.at(p) != b':' {
            p = self.ws(p);
            if self.at(p) != b':' {
                return None;
            }
        }
        Some((key, self.ws(p + 1)))
    }

    /// After a member of an object: whether another follows (`,`) or the
    /// object ends (`}`), and the position after that.
    #[inline(always)]
    fn next_member(&self, p: usize) -> Option<(bool, usize)> {
        // Lines seldom hold spaces: the byte expected is looked at first.
        let p = if self.at(p) == b' ' { self.ws(p) } else { p };
        match self.at(p) {
            b',' => Some((true, self.ws(p + 1))),
            b'}' => Some((false, p + 1)),
            _ => None,
        }
    }

    /// A string without escapes (the whole line has none), its opening
    /// quote at `p`.
    #[inline(always)]
    fn string(&self, p: usize) -> Option<(&'a str, usize)> {
        if self.at(p) != b'"' {
            return None;
        }
        let end = self.next_quote(p + 1)?;
        // SAFETY: `p + 1` follows a quote and `end` is the next quote, so
        // `p + 1 <= end < len`, and both cut the text at ASCII bytes, where
        // UTF-8 characters begin.
        Some((unsafe { self.text.get_unchecked(p + 1..end) }, end + 1))
    }

    /// The first quote at or after `from`.
    #[inline(always)]
    fn next_quote(&self, from: usize) -> Option<usize> {
        let mut word = from / 64;
        let mut bits = self.quotes.get(word)? & (!0u64 << (from % 64));
        while bits == 0 {
            word += 1;
            bits = *self.quotes.get(word)?;
        }
        Some(word * 64 + bits.trailing_zeros() as usize)
    }

    /// `effective_at`: only a plain non-negative integer is read here.
    fn unix_seconds(&self, start: usize) -> Option<(i64, usize)> {
        let mut p = start;
        let mut n = 0i64;
        while let b @ b'0'..=b'9' = self.at(p) {
            if p - start == 18 {
                return None;
            }
            n = n * 10 + i64::from(b - b'0');
            p += 1;
        }
        let digits = p - start;
        let plain = digits > 0
            && (self.bytes[start] != b'0' || digits == 1)
            && !matches!(self.at(p), b'.' | b'e' | b'E');
        plain.then_some((n, p))
    }

    /// Checks and skips one value: a string (the usual member) in place,
    /// anything else through [`Scanner::skip_value`].
    #[inline(always)]
    fn skip(&self, p: usize, depth: u32) -> Option<usize> {
        if self.at(p) == b'"' {
            return Some(self.next_quote(p + 1)? + 1);
        }
        self.skip_value(p, depth)
    }

    /// Checks and skips one value.
    fn skip_value(&self, p: usize, depth: u32) -> Option<usize> {
        match self.at(p) {
            b'"' => Some(self.next_quote(p + 1)? + 1),
            b'{' => {
                if depth > MAX_DEPTH {
                    return None;
                }
                let mut p = self.ws(p + 1);
                if self.at(p) == b'}' {
                    return Some(p + 1);
                }
                loop {
                    let (_, at) = self.key(p)?;
                    p = self.skip(at, depth + 1)?;
                    match self.next_member(p)? {
                        (true, next) => p = next,
                        (false, end) => return Some(end),
                    }
                }
            }
            b'[' => {
                if depth > MAX_DEPTH {
                    return None;
                }
                let mut p = self.ws(p + 1);
                if self.at(p) == b']' {
                    return Some(p + 1);
                }
                loop {
                    p = self.ws(self.skip(p, depth + 1)?);
                    match self.at(p) {
                        b',' => p = self.ws(p + 1),
                        b']' => return Some(p + 1),
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(p, b"true"),
            b'f' => self.literal(p, b"false"),
            b'n' => self.literal(p, b"null"),
            b'-' | b'0'..=b'9' => self.number(p),
            _ => None,
        }
    }

    /// A number, by the JSON grammar.
    fn number(&self, mut p: usize) -> Option<usize> {
        if self.at(p) == b'-' {
            p += 1;
        }
        match self.at(p) {
            b'0' => p += 1,
            b'1'..=b'9' => p = self.digits(p + 1),
            _ => return None,
        }
        if self.at(p) == b'.' {
            p = self.some_digits(p + 1)?;
        }
        if let b'e' | b'E' = self.at(p) {
            p += 1;
            if let b'+' | b'-' = self.at(p) {
                p += 1;
            }
            p = self.some_digits(p)?;
        }
        Some(p)
    }

    #[inline]
    fn digits(&self, mut p: usize) -> usize {
        while self.at(p).is_ascii_digit() {
            p += 1;
        }
        p
    }

    #[inline]
    fn some_digits(&self, p: usize) -> Option<usize> {
        let end = self.digits(p);
        (end > p).then_some(end)
    }

    /// The actor: `null`, or an object read into the normalized actor.
    fn actor(&self, p: usize, slot: &mut Option<Actor<'a>>) -> Option<usize> {
        if self.at(p) == b'n' {
            *slot = None;
            return self.literal(p, b"null");
        }
        let actor = slot.insert(Actor::unknown());
        self.object(p, actor, Part::Actor, 2)
    }

    /// One object of the actor (or `null`, read as nothing).
    fn object(&self, p: usize, actor: &mut Actor<'a>, part: Part, depth: u32) -> Option<usize> {
        match self.at(p) {
            b'{' if depth <= MAX_DEPTH => {}
            b'n' => return self.literal(p, b"null"),
            _ => return None,
        }
        let mut p = self.ws(p + 1);
        let mut read = ObjectRead::start(part, actor);
        if self.at(p) == b'}' {
            p += 1;
        } else {
            loop {
                let (key, at) = self.key(p)?;
                p = match part.slot(key) {
                    Slot::Nested(part) => self.object(at, actor, part, depth + 1)?,
                    Slot::Owner(part) => self.object(at, read.owner(), part, depth + 1)?,
                    Slot::Text(field) => {
                        let (v, end) = self.text(at)?;
                        read.set(actor, field, v);
                        end
                    }
                    Slot::Loose(field) => {
                        let (v, end) = self.loose(at, depth)?;
                        read.set(actor, field, v);
                        end
                    }
                    Slot::Ignored => self.skip(at, depth + 1)?,
                };
                match self.next_member(p)? {
                    (true, next) => p = next,
                    (false, end) => {
                        p = end;
                        break;
                    }
                }
            }
        }
        read.finish(actor);
        Some(p)
    }

    /// Text or `null`; anything else declines (the serde reader then keeps
    /// the actor raw).
    #[inline]
    fn text(&self, p: usize) -> Option<(Option<Cow<'a, str>>, usize)> {
        match self.at(p) {
            b'"' => self.string(p).map(|(s, end)| (Some(Cow::Borrowed(s)), end)),
            b'n' => Some((None, self.literal(p, b"null")?)),
            _ => None,
        }
    }

    /// Text; `null`, booleans, arrays and objects as absent. Numbers (which
    /// the serde reader turns into text) decline.
    #[inline]
    fn loose(&self, p: usize, depth: u32) -> Option<(Option<Cow<'a, str>>, usize)> {
        match self.at(p) {
            b'"' => self.string(p).map(|(s, end)| (Some(Cow::Borrowed(s)), end)),
            b'n' | b't' | b'f' | b'[' | b'{' => Some((None, self.skip_value(p, depth + 1)?)),
            _ => None,
        }
    }
}

/// What a reader made of a line, in comparable form.
fn shape(top: &TopLevel<'_>, actor: &Option<Actor<'_>>) -> String {
    let fields: Vec<(&str, &str)> = top.fields.iter().map(|f| (&*f.key, f.raw)).collect();
    let actor = top.actor_read.then_some(actor);
    format!(
        "{:?} {:?} {:?} {:?} {:?}",
        top.id, top.kind, top.effective_at, fields, actor
    )
}

/// Checks the fast reader against the serde reader on `line`: whatever the
/// fast reader takes, the serde reader takes and reads the same, so that a
/// line means one thing whichever reader reads it. `Ok(true)` when the fast
/// reader took the line, `Ok(false)` when it left it to the serde reader;
/// `Err` describes a disagreement. Public for the fuzz target.
#[doc(hidden)]
pub fn readers_agree(line: &str) -> Result<bool, String> {
    let mut accepted = false;
    for wants in [true, false] {
        let (mut fast_actor, mut full_actor) = (None, None);
        let fast = top_level(
            line,
            &mut |_| wants,
            &mut fast_actor,
            Vec::new(),
            &mut Vec::new(),
        );
        let full = super::read_top_level(line, &mut |_| wants, &mut full_actor);
        match (&fast, &full) {
            (Some(f), Ok(s)) => {
                let (a, b) = (shape(f, &fast_actor), shape(s, &full_actor));
                if a != b {
                    return Err(format!(
                        "the readers differ on {line:?}:\n fast  {a}\n serde {b}"
                    ));
                }
            }
            (Some(f), Err(e)) => {
                return Err(format!(
                    "the fast reader took a line serde refuses ({e}): {line:?}\n{}",
                    shape(f, &fast_actor)
                ));
            }
            (None, _) => {}
        }
        accepted |= fast.is_some();
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agree(line: &str) -> bool {
        readers_agree(line).unwrap_or_else(|e| panic!("{e}"))
    }

    const EDGES: &[&str] = &[
        r#"{"id":"a","type":"t","effective_at":1}"#,
        r#"  { "id" : "a" ,"type":"t" , "effective_at" : 0 }  "#,
        r#"{}"#,
        r#"{"object":"list","data":[{"id":"a","type":"t","effective_at":5}],"has_more":false}"#,
        r#"{"id":"a","type":"t","effective_at":1,"x":{"a":[1,-0,1.5e-3,1E+2,0.0,true,false,null,[],{}],"b":"José ✓"}}"#,
        r#"{"id":"a","type":"t","effective_at":1.0}"#,
        r#"{"id":"a","type":"t","effective_at":1e3}"#,
        r#"{"id":"a","type":"t","effective_at":-5}"#,
        r#"{"id":"a","type":"t","effective_at":01}"#,
        r#"{"id":"a","type":"t","effective_at":99999999999999999999}"#,
        r#"{"id":"a","type":"t","effective_at":"1"}"#,
        r#"{"id":1,"type":"t","effective_at":1}"#,
        r#"{"id":"a","type":null,"effective_at":1}"#,
        r#"{"id":"a","type":"t","effective_at":1,"n":01}"#,
        r#"{"id":"a","type":"t","effective_at":1,"n":1.}"#,
        r#"{"id":"a","type":"t","effective_at":1,"n":.5}"#,
        r#"{"id":"a","type":"t","effective_at":1,"n":+1}"#,
        r#"{"id":"a","type":"t","effective_at":1,"n":1e}"#,
        r#"{"id":"a","type":"t","effective_at":1,"n":-}"#,
        r#"{"id":"a","type":"t","effective_at":1,"n":tru}"#,
        r#"{"id":"a","type":"t","effective_at":1,"n":nul}"#,
        r#"{"id":"a","type":"t","effective_at":1,}"#,
        r#"{"id":"a","type":"t","effective_at":1,"a":[1,]}"#,
        r#"{"id":"a","type":"t","effective_at":1} x"#,
        r#"{"id":"a","type":"t","effective_at":1}}"#,
        r#"{"id":"a","type":"t","effective_at":1,"s":"a\"b"}"#,
        r#"{"id":"a\u00e9","type":"t","effective_at":1}"#,
        r#"{"id":"a","type":"t","effective_at":1,"actor":null}"#,
        r#"{"id":"a","type":"t","effective_at":1,"actor":"x"}"#,
        r#"{"id":"a","type":"t","effective_at":1,"actor":{"type":"session","session":{"user":{"id":"user-1","email":"Ann@Example.COM"},"ip_address":"203.0.113.7","user_agent":"curl","ip_address_details":{"country":"US","city":null,"region":true,"asn":[1],"x":{}}}}}"#,
        r#"{"id":"a","type":"t","effective_at":1,"actor":{"type":"session","session":{"ip_address_details":{"asn":16509}}}}"#,
        r#"{"id":"a","type":"t","effective_at":1,"actor":{"type":"session","session":{"ip_address":5}}}"#,
        r#"{"id":"a","type":"t","effective_at":1,"actor":{"type":"session","session":{"user":"x"}}}"#,
        r#"{"id":"a","type":"t","effective_at":1,"actor":{"type":"session","session":null}}"#,
        r#"{"id":"a","type":"t","effective_at":1,"actor":{"type":"api_key","api_key":{"id":"key_1","type":"user","user":{"id":"user-2","email":"b@example.com"}}}}"#,
        r#"{"id":"a","type":"t","effective_at":1,"actor":{"api_key":{"service_account":{"id":"svc_1"},"type":"service_account","id":"key_2"},"type":"api_key"}}"#,
        r#"{"id":"a","type":"t","effective_at":1,"actor":{"api_key":{"type":"other","user":{"id":"u"}}}}"#,
        r#"{"id":"a","effective_at":1,"actor":{"type":"session"},"type":"t"}"#,
        r#"{"actor":{"session":{"ip_address":"203.0.113.7","user":{"email":"a@example.com","id":"user-1"},"user_agent":"curl/8"},"type":"session"},"effective_at":1,"id":"a","type":"t"}"#,
        r#"{"actor":"x","id":"a","type":"t","effective_at":1}"#,
        r#"{"actor":null,"id":"a","type":"t","effective_at":1}"#,
        r#"{"actor":{"type":"session"},"id":"a","type":"t","effective_at":1,"actor":null}"#,
        r#"{"id":"a","type":"t","effective_at":1,"actor":{"type":"session"},"actor":{"type":"api_key"}}"#,
        r#"{"id":"a","type":"t","type":"u","id":"b","effective_at":1,"effective_at":2}"#,
        "{\"id\":\"a\",\t\"type\":\"t\",\"effective_at\":1}",
        "{\"id\":\"a\",\"type\":\"t\",\"effective_at\":1,\"s\":\"tab\there\"}",
        "{\"id\":\"a\",\"type\":\"t\",\"effective_at\":1,\"s\":\"unit\u{1f}separator, in the middle of a line long enough\"}",
        "{\"id\":\"a\",\"type\":\"t\",\"effective_at\":1,\"s\":\"nul\u{0}\"}",
        r#"[{"id":"a","type":"t","effective_at":1}]"#,
        r#""text""#,
        r#"{"id":"a","type":"t","effective_at":1"#,
        r#"{"id":"a","type":"t","effective_at":1,"s":"open}"#,
        r#"{"id""a","type":"t","effective_at":1}"#,
        r#"{id:"a"}"#,
    ];

    #[test]
    fn vector_and_portable_masks_agree() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5_000 {
            let mut block = [0u8; 64];
            for b in &mut block {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let special = [b'"', b'\\', 0x1f, 0x20, 0x00, 0x80, 0x9f, 0xff];
                *b = match rng % 4 {
                    0 => special[(rng >> 8) as usize % special.len()],
                    _ => (rng >> 16) as u8,
                };
            }
            assert_eq!(
                block_masks(&block),
                block_masks_portable(&block),
                "{block:?}"
            );
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                let wide = unsafe { block_masks_avx2(&block) };
                assert_eq!(wide, block_masks_portable(&block), "{block:?}");
            }
        }
    }

    #[test]
    fn agrees_with_the_serde_reader_on_edge_cases() {
        let accepted = EDGES.iter().filter(|line| agree(line)).count();
        // Most edge cases are either clean (taken here) or bad (declined).
        assert!(accepted >= 15, "only {accepted} taken");
        let deep = format!(
            r#"{{"id":"a","type":"t","effective_at":1,"d":{}{}}}"#,
            "[".repeat(150),
            "]".repeat(150)
        );
        assert!(!agree(&deep), "nesting past the limit is declined");
    }

    #[test]
    fn an_actor_before_the_type_is_read_in_the_same_pass() {
        // Sorted keys put `actor` first: it is read by the fast reader as
        // it comes, before the type says whether a rule wants it.
        let line = EDGES[EDGES
            .iter()
            .position(|l| l.starts_with(r#"{"actor":{"session""#))
            .unwrap()];
        for wants in [true, false] {
            let mut actor = None;
            let top = top_level(
                line,
                &mut |t| wants && t == "t",
                &mut actor,
                Vec::new(),
                &mut Vec::new(),
            )
            .expect("the fast reader takes the line");
            assert!(top.actor_read);
            assert!(!top.fields.iter().any(|f| f.key == "actor"));
            let email = actor.as_ref().and_then(|a| a.email.as_deref());
            assert_eq!(email, Some("a@example.com"));
        }
    }

    #[test]
    fn agrees_with_the_serde_reader_on_the_sample_history() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample-events.jsonl");
        let text = std::fs::read_to_string(path).unwrap();
        let mut taken = 0;
        for line in text.lines() {
            taken += agree(line) as usize;
        }
        // All of the usual shape but the lines with escapes.
        let plain = text.lines().filter(|l| !l.contains('\\')).count();
        assert_eq!(taken, plain);
    }

    /// Lines of the sample with random bytes inserted, deleted or replaced
    /// (a fixed seed): never taken differently, never taken when bad.
    #[test]
    fn agrees_with_the_serde_reader_on_mutated_lines() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample-events.jsonl");
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .step_by(40)
            .chain(EDGES.iter().copied())
            .collect();
        let alphabet = br#"{}[]":,0123456789.eE+-tfnul as\"#;
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let (mut tried, mut taken) = (0, 0);
        for line in &lines {
            for _ in 0..40 {
                let mut bytes = line.as_bytes().to_vec();
                for _ in 0..1 + next(3) {
                    let at = next(bytes.len() + 1);
                    let byte = alphabet[next(alphabet.len())];
                    match next(3) {
                        0 => bytes.insert(at, byte),
                        1 if at < bytes.len() => drop(bytes.remove(at)),
                        _ if at < bytes.len() => bytes[at] = byte,
                        _ => {}
                    }
                }
                let Ok(mutated) = String::from_utf8(bytes) else {
                    continue;
                };
                tried += 1;
                taken += agree(&mutated) as usize;
            }
        }
        assert!(tried > 5_000 && taken > 500, "tried {tried}, taken {taken}");
    }
}
