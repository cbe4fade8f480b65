//! Short text kept in place: the keys and event ids of the rule state.
//! A lookup then compares the text inside the table's entry, not behind a pointer.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The hash by which the engine's key tables find a text (the parser
/// threads' per-chunk keys and the rule state's key table alike).
pub(crate) fn text_hash(text: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(text)
}

/// The longest text kept in place: an audit log id (34 bytes) and most
/// e-mail addresses fit.
const IN_PLACE: usize = 38;

/// A text of the rule state: a threshold or suppression key, a
/// `first_seen` value, an event id. Up to [`IN_PLACE`] bytes it needs no
/// allocation of its own; it hashes, compares and saves as its `str`.
#[derive(Clone)]
pub(crate) enum StateText {
    InPlace { len: u8, bytes: [u8; IN_PLACE] },
    Boxed(Box<str>),
}

impl StateText {
    pub fn as_str(&self) -> &str {
        match self {
            // SAFETY: the bytes were copied from a `str`, whole.
            StateText::InPlace { len, bytes } => unsafe {
                std::str::from_utf8_unchecked(&bytes[..*len as usize])
            },
            StateText::Boxed(b) => b,
        }
    }
}

impl From<&str> for StateText {
    fn from(s: &str) -> StateText {
        if s.len() <= IN_PLACE {
            let mut bytes = [0; IN_PLACE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            StateText::InPlace {
                len: s.len() as u8,
                bytes,
            }
        } else {
            StateText::Boxed(s.into())
        }
    }
}

impl From<&StateText> for String {
    fn from(t: &StateText) -> String {
        t.as_str().to_owned()
    }
}

impl std::ops::Deref for StateText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for StateText {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for StateText {
    fn eq(&self, other: &StateText) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for StateText {}

impl PartialOrd for StateText {
    fn partial_cmp(&self, other: &StateText) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StateText {
    fn cmp(&self, other: &StateText) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// As its `str`, so that maps keyed by it are looked up with a `&str`.
impl Hash for StateText {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl fmt::Debug for StateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for StateText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StateText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StateText, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(StateText::from(&*s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashMap;

    /// Short and long texts read back, compare, look up by `&str` and save
    /// as the plain strings they are.
    #[test]
    fn state_text_behaves_as_its_str() {
        let long = "x".repeat(IN_PLACE + 1);
        let edge = "y".repeat(IN_PLACE);
        for s in [
            "",
            "ana@example.com",
            "ünïcödé",
            edge.as_str(),
            long.as_str(),
        ] {
            let t = StateText::from(s);
            assert_eq!(t.as_str(), s);
            assert_eq!(&*t, s);
            let mut map = FxHashMap::default();
            map.insert(t.clone(), 1);
            assert_eq!(map.get(s), Some(&1));
            let json = serde_json::to_string(&map).unwrap();
            assert_eq!(
                json,
                serde_json::to_string(&[(s, 1)].into_iter().collect::<FxHashMap<_, _>>()).unwrap()
            );
            let back: FxHashMap<StateText, i32> = serde_json::from_str(&json).unwrap();
            assert_eq!(back, map);
        }
        assert!(matches!(
            StateText::from(edge.as_str()),
            StateText::InPlace { .. }
        ));
        assert!(matches!(
            StateText::from(long.as_str()),
            StateText::Boxed(_)
        ));
        assert!(StateText::from("a") < StateText::from("b"));
    }
}
