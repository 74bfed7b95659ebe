//! Any text as a release receipt: never a panic; an accepted receipt
//! re-encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ren3_shared::VerifiedReceipt;

fuzz_target!(|text: &str| {
    if let Ok(receipt) = VerifiedReceipt::open(text) {
        let again = VerifiedReceipt::open(&receipt.token()).expect("a verified receipt reads back");
        assert_eq!(again, receipt);
    }
});
