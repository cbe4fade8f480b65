//! Text helpers shared by match operators, lists and scripts: case folding,
//! globs and networks, with one meaning everywhere.

use std::borrow::Cow;
use std::net::IpAddr;

use globset::{Glob, GlobBuilder};
use ipnet::IpNet;

/// Lower-cases `s`, borrowing when it has nothing to fold.
pub fn lower(s: &str) -> Cow<'_, str> {
    if crate::event::may_fold(s) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Calls `f` with `s` lower-cased; short ASCII text is folded on the stack,
/// without allocating.
pub fn with_lower<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 64];
    match buf.get_mut(..s.len()) {
        Some(out) if s.is_ascii() => {
            for (o, b) in out.iter_mut().zip(s.bytes()) {
                *o = b.to_ascii_lowercase();
            }
            f(std::str::from_utf8(out).expect("ASCII"))
        }
        _ => f(&lower(s)),
    }
}

/// A glob as rules mean it: case-insensitive, `*` crosses dots and slashes.
pub fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
}

/// A network (`10.0.0.0/8`) or a bare address (that address alone).
pub fn parse_network(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net);
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}
