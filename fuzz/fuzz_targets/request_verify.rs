//! Any text as a license request: never a panic; an accepted request
//! re-encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ren3_shared::VerifiedRequest;

fuzz_target!(|text: &str| {
    if let Ok(request) = VerifiedRequest::open(text) {
        let again = VerifiedRequest::open(&request.token()).expect("a verified request reads back");
        assert_eq!(again, request);
    }
});
