//! Arbitrary bytes through both event readers: whatever the fast reader
//! takes, serde_json takes and reads the same (see `readers_agree`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Err(e) = auditwatch::event::readers_agree(text)
    {
        panic!("{e}");
    }
});
