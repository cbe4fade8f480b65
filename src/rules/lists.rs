//! Named lists from the config (`lists:`), compiled once: each item is a
//! network, a glob or plain text, matched as rules.md says.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use globset::{GlobSet, GlobSetBuilder};
use ipnet::IpNet;
use rustc_hash::FxHashSet;

use super::text;

/// One compiled list.
#[derive(Debug, Default)]
pub struct NamedList {
    nets: Vec<IpNet>,
    /// The IPv4 networks of `nets`, as first and last address.
    v4: Vec<(u32, u32)>,
    globs: Option<GlobSet>,
    texts: FxHashSet<String>,
}

/// Every list the config defines, by name.
#[derive(Debug, Default, Clone)]
pub struct Lists(BTreeMap<String, Arc<NamedList>>);

impl NamedList {
    /// Compiles the items of one list; the error names the bad item.
    pub fn compile(items: &[String]) -> Result<NamedList, String> {
        let mut list = NamedList::default();
        let mut globs = GlobSetBuilder::new();
        let mut any_glob = false;
        for item in items {
            if let Some(net) = text::parse_network(item) {
                if let IpNet::V4(v4) = net {
                    list.v4
                        .push((v4.network().to_bits(), v4.broadcast().to_bits()));
                }
                list.nets.push(net);
            } else if item.contains(['*', '?', '[']) {
                globs.add(text::glob(item).map_err(|e| format!("bad glob {item:?}: {e}"))?);
                any_glob = true;
            } else {
                list.texts.insert(item.to_lowercase());
            }
        }
        if any_glob {
            list.globs = Some(globs.build().map_err(|e| e.to_string())?);
        }
        Ok(list)
    }

    /// True when `value` is in the list: inside one of its networks, matched
    /// by one of its globs, or equal (case-insensitively) to one of its texts.
    pub fn contains(&self, value: &str) -> bool {
        if !self.nets.is_empty() {
            let inside = match parse_ip(value) {
                Some(IpAddr::V4(ip)) => {
                    let ip = ip.to_bits();
                    self.v4
                        .iter()
                        .any(|&(first, last)| first <= ip && ip <= last)
                }
                Some(ip) => self.nets.iter().any(|n| n.contains(&ip)),
                None => false,
            };
            if inside {
                return true;
            }
        }
        if let Some(globs) = &self.globs
            && globs.is_match(value)
        {
            return true;
        }
        !self.texts.is_empty() && text::with_lower(value, |v| self.texts.contains(v))
    }
}

/// `value` as an IPv4 address in dotted decimal, exactly as the standard
/// parser reads one (four numbers up to 255, no leading zeros), or `None`
/// for anything else (which the standard parser then reads).
fn parse_ipv4(value: &str) -> Option<u32> {
    let b = value.as_bytes();
    if b.len() < 7 || b.len() > 15 {
        return None;
    }
    let (mut ip, mut octet, mut digits, mut dots) = (0u32, 0u32, 0u32, 0u32);
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                // A leading zero is only the number zero itself.
                if digits == 1 && octet == 0 {
                    return None;
                }
                octet = octet * 10 + u32::from(c - b'0');
                digits += 1;
                if octet > 255 {
                    return None;
                }
            }
            b'.' if digits > 0 && dots < 3 && i + 1 < b.len() => {
                ip = ip << 8 | octet;
                (octet, digits) = (0, 0);
                dots += 1;
            }
            _ => return None,
        }
    }
    (dots == 3 && digits > 0).then_some(ip << 8 | octet)
}

/// `value` as an address. Several rules often look up the same address of
/// one event (in several lists, or one list in several rules), so each
/// thread keeps the last one parsed.
fn parse_ip(value: &str) -> Option<IpAddr> {
    thread_local! {
        static LAST: std::cell::RefCell<(String, Option<IpAddr>)> =
            const { std::cell::RefCell::new((String::new(), None)) };
    }
    LAST.with_borrow_mut(|(text, ip)| {
        if text != value {
            text.clear();
            text.push_str(value);
            *ip = match parse_ipv4(value) {
                Some(v4) => Some(IpAddr::V4(v4.into())),
                None => value.parse().ok(),
            };
        }
        *ip
    })
}

impl Lists {
    /// Compiles every list; errors name the list and the item.
    pub fn compile(raw: &BTreeMap<String, Vec<String>>) -> Result<Lists, Vec<String>> {
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, items) in raw {
            match NamedList::compile(items) {
                Ok(list) => {
                    out.insert(name.clone(), Arc::new(list));
                }
                Err(e) => errors.push(format!("list `{name}`: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(Lists(out))
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<NamedList>> {
        self.0.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 fast path reads exactly what the standard parser reads.
    #[test]
    fn ipv4_fast_path_reads_as_the_standard_parser() {
        let mut cases: Vec<String> = [
            "0.0.0.0",
            "255.255.255.255",
            "1.2.3.4",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3.0",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.4 ",
            " 1.2.3.4",
            "1.2.3.-4",
            "a.b.c.d",
            "1.2.3.4a",
            "1000.1.1.1",
            "1.2.3.255",
            "1.2.3.256",
            "::1",
            "2001:db8::1",
            "::ffff:1.2.3.4",
            "",
            "1.2.3.4/8",
            "00.0.0.0",
            "0.00.0.0",
            "9.9.9.9",
            "199.255.0.10",
            "123.123.123.123",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        // Every short string of digits and dots.
        let alphabet = [b'0', b'1', b'2', b'5', b'9', b'.'];
        for n in 7..=9 {
            for k in 0..alphabet.len().pow(n as u32) {
                let (mut k, mut s) = (k, Vec::new());
                for _ in 0..n {
                    s.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                cases.push(String::from_utf8(s).unwrap());
            }
        }
        for case in &cases {
            let std = case.parse::<std::net::Ipv4Addr>().ok().map(u32::from);
            assert_eq!(parse_ipv4(case), std, "{case:?}");
        }
    }

    #[test]
    fn networks_hold_the_addresses_between_their_first_and_last() {
        let list = NamedList::compile(&["198.18.250.0/24".into(), "2001:db8::/32".into()]).unwrap();
        for yes in [
            "198.18.250.0",
            "198.18.250.255",
            "198.18.250.7",
            "2001:db8::5",
        ] {
            assert!(list.contains(yes), "{yes}");
        }
        for no in [
            "198.18.249.255",
            "198.18.251.0",
            "198.18.25.1",
            "2001:db9::1",
            "x",
        ] {
            assert!(!list.contains(no), "{no}");
        }
    }

    #[test]
    fn items_are_networks_globs_or_text() {
        let list = NamedList::compile(&[
            "10.0.0.0/8".into(),
            "203.0.113.7".into(),
            "*@Example.com".into(),
            "Bob@Partner.io".into(),
        ])
        .unwrap();
        assert!(list.contains("10.1.2.3"));
        assert!(list.contains("203.0.113.7"));
        assert!(!list.contains("203.0.113.8"));
        assert!(list.contains("alice@example.COM"));
        assert!(list.contains("bob@partner.io"));
        assert!(!list.contains("eve@evil.io"));
    }

    #[test]
    fn texts_match_whatever_the_case() {
        let long = "a".repeat(80);
        let list = NamedList::compile(&["us".into(), "Ünïcode".into(), long.clone()]).unwrap();
        for yes in ["US", "us", "Us", "üNÏCODE", &long.to_uppercase()] {
            assert!(list.contains(yes), "{yes}");
        }
        for no in ["uk", "u", "", &"A".repeat(81)] {
            assert!(!list.contains(no), "{no}");
        }
    }
}
