//! The fuzz target of the two event readers on stable Rust, with a fixed
//! budget: generated events (every JSON form, nesting past the readers'
//! limits, escapes, control characters), then random byte edits, then raw
//! random bytes; the fast reader must never take a line differently from
//! serde_json. `FUZZ_CASES` sets the budget (default 40,000 cases); the
//! libFuzzer target is `fuzz/fuzz_targets/readers.rs` (`cargo fuzz run
//! readers`).

use auditwatch::event::readers_agree;

/// xorshift64: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &[
    "id",
    "type",
    "effective_at",
    "actor",
    "object",
    "data",
    "project",
    "session",
    "user",
    "email",
    "ip_address",
    "ip_address_details",
    "api_key",
    "service_account",
    "asn",
    "country",
    "user_agent",
    "api_key.created",
    "x",
    "",
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "17",
    "1720800000",
    "1.5",
    "-2.25e-3",
    "1E+2",
    "1e400",
    "-1e400",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1e15",
    "0.0",
    "01",
    "1.",
    ".5",
    "+1",
    "1e",
    "-",
    "00",
    "1e-",
    "123456789012345678901234567890",
];

const STRINGS: &[&str] = &[
    "",
    "a",
    "session",
    "api_key",
    "user",
    "service_account",
    "list",
    "Alice@Example.COM",
    "José ✓",
    "tab\\there",
    "quote\\\"d",
    "back\\\\slash",
    "\\u00e9",
    "\\ud83d\\ude00",
    "\\ud800",
    "l\\u0069st",
    "\\n",
    "\u{1f}",
    "\u{0}",
    "\\x",
    "\u{202e}",
    "\\u",
    "\\u12",
];

fn value(r: &mut Rng, depth: u32, out: &mut String) {
    let ws = |r: &mut Rng, out: &mut String| {
        if r.below(8) == 0 {
            out.push_str(["  ", "\t", "\n", "\r\n", " "][r.below(5)]);
        }
    };
    ws(r, out);
    // Wide nesting stays shallow; deep chains come from `object`.
    let pick = if depth > 5 { r.below(4) } else { r.below(9) };
    match pick {
        0 => out.push_str(r.pick(NUMBERS)),
        1 | 2 => {
            out.push('"');
            out.push_str(r.pick(STRINGS));
            out.push('"');
        }
        3 => out.push_str(["true", "false", "null", "tru", "nul"][r.below(5)]),
        4..=6 => object(r, depth + 1, out),
        _ => {
            out.push('[');
            for i in 0..r.below(4) {
                if i > 0 {
                    out.push(',');
                }
                value(r, depth + 1, out);
            }
            out.push(']');
        }
    }
    ws(r, out);
}

fn object(r: &mut Rng, depth: u32, out: &mut String) {
    out.push('{');
    // Deep chains now and then, past both readers' depth limits.
    let deep = r.below(60) == 0;
    let n = if deep { 1 } else { r.below(7) };
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(r.pick(KEYS));
        out.push_str("\":");
        if deep && depth < 150 {
            object(r, depth + 1, out);
        } else {
            value(r, depth, out);
        }
    }
    out.push('}');
}

/// A top-level object that is often a whole event.
fn event(r: &mut Rng) -> String {
    let mut out = String::from("{");
    let mut fields: Vec<String> = Vec::new();
    if r.below(10) > 0 {
        fields.push(format!("\"id\":\"audit_log-{}\"", r.below(1000)));
    }
    if r.below(10) > 0 {
        fields.push(format!(
            "\"type\":\"{}\"",
            r.pick(&["api_key.created", "login.succeeded", "x"])
        ));
    }
    if r.below(10) > 0 {
        fields.push(format!("\"effective_at\":{}", r.pick(NUMBERS)));
    }
    for _ in 0..r.below(4) {
        let mut v = String::new();
        value(r, 1, &mut v);
        fields.push(format!("\"{}\":{v}", r.pick(KEYS)));
    }
    if r.below(2) == 0 {
        let mut v = String::new();
        object(r, 2, &mut v);
        fields.push(format!("\"actor\":{v}"));
    }
    for i in (1..fields.len()).rev() {
        fields.swap(i, r.below(i + 1));
    }
    out.push_str(&fields.join(","));
    out.push('}');
    out
}

fn mutate(r: &mut Rng, text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    let alphabet = b"{}[]\":,0123456789.eE+-tfnul as\\\x01\x7f\xc3\xa9";
    for _ in 0..1 + r.below(3) {
        let at = r.below(bytes.len() + 1);
        let byte = alphabet[r.below(alphabet.len())];
        match r.below(3) {
            0 => bytes.insert(at, byte),
            1 if at < bytes.len() => drop(bytes.remove(at)),
            _ if at < bytes.len() => bytes[at] = byte,
            _ => {}
        }
    }
    bytes
}

#[test]
fn the_fast_reader_never_reads_a_line_differently_from_serde() {
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000);
    let mut r = Rng(0x853c_49e6_748f_ea9b);
    let (mut checked, mut taken, mut failures) = (0usize, 0usize, Vec::new());
    for i in 0..cases {
        let base = event(&mut r);
        let bytes = match i % 4 {
            0 | 1 => base.into_bytes(),
            2 => mutate(&mut r, &base),
            _ => (0..r.below(80)).map(|_| r.next() as u8).collect(),
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        checked += 1;
        match readers_agree(text) {
            Ok(t) => taken += t as usize,
            Err(e) if failures.len() < 5 => failures.push(e),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked > cases / 2 && taken > cases / 40,
        "checked {checked}, taken {taken}"
    );
}
