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
    nets: Networks,
    globs: Option<GlobSet>,
    texts: Texts,
}

/// Networks as ranges of addresses, first and last included: a list's,
/// or a `cidr` operator's.
#[derive(Debug, Default)]
pub(super) struct Networks {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl Networks {
    pub(super) fn add(&mut self, net: IpNet) {
        match (net.network(), net.broadcast()) {
            (IpAddr::V4(first), IpAddr::V4(last)) => self.v4.push((first.into(), last.into())),
            (IpAddr::V6(first), IpAddr::V6(last)) => self.v6.push((first.into(), last.into())),
            _ => unreachable!("a network's first and last address are of its family"),
        }
    }

    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub(super) fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|&(first, last)| first <= a && a <= last)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|&(first, last)| first <= a && a <= last)
            }
        }
    }
}

/// A list's plain texts, lower-cased: a few are compared one by one, more
/// are looked up by hash.
#[derive(Debug)]
enum Texts {
    Few(Vec<String>),
    Many(FxHashSet<String>),
}

/// Up to how many texts are compared one by one.
const FEW_TEXTS: usize = 8;

impl Default for Texts {
    fn default() -> Texts {
        Texts::Few(Vec::new())
    }
}

impl Texts {
    fn insert(&mut self, text: String) {
        match self {
            Texts::Few(few) if few.contains(&text) => {}
            Texts::Few(few) if few.len() < FEW_TEXTS => few.push(text),
            Texts::Few(few) => {
                let mut many: FxHashSet<String> = few.drain(..).collect();
                many.insert(text);
                *self = Texts::Many(many);
            }
            Texts::Many(many) => {
                many.insert(text);
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Texts::Few(few) => few.is_empty(),
            Texts::Many(many) => many.is_empty(),
        }
    }

    fn contains(&self, lowered: &str) -> bool {
        match self {
            Texts::Few(few) => few.iter().any(|t| t == lowered),
            Texts::Many(many) => many.contains(lowered),
        }
    }
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
                list.nets.add(net);
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
        if !self.nets.is_empty()
            && let Some(ip) = parse_ip(value)
            && self.nets.contains(ip)
        {
            return true;
        }
        if let Some(globs) = &self.globs
            && globs.is_match(value)
        {
            return true;
        }
        !self.texts.is_empty() && text::with_lower(value, |v| self.texts.contains(v))
    }
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
            *ip = value.parse().ok();
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
    fn a_long_list_of_texts_matches_like_a_short_one() {
        let items: Vec<String> = (0..20).map(|i| format!("Country{i}")).collect();
        for n in [1, FEW_TEXTS, FEW_TEXTS + 1, 20] {
            let list = NamedList::compile(&items[..n]).unwrap();
            for (i, item) in items.iter().enumerate() {
                assert_eq!(
                    list.contains(&item.to_uppercase()),
                    i < n,
                    "{n} items: {item}"
                );
            }
            assert!(!list.contains("country"));
        }
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
