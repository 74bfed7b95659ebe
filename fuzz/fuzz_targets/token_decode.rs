//! Any text, read as each kind of token: never a panic, and an accepted
//! envelope re-encodes to a token that reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ren3_shared::token::{self, Envelope, Kind};

fuzz_target!(|text: &str| {
    let _ = token::detect(text);
    for kind in Kind::ALL {
        if let Ok(envelope) = Envelope::open(text, kind) {
            let again = Envelope::open(&envelope.token(), kind).expect("a re-encoded envelope reads back");
            assert_eq!(again, envelope);
        }
    }
});
