//! `load --reply` decoders: see `replies_entry.rs`.
//!
//! Run by hand (needs cargo-fuzz; on a stable toolchain prefix
//! RUSTC_BOOTSTRAP=1): `cd fuzz && cargo fuzz run replies -- -max_total_time=600`
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("replies_entry.rs");

fuzz_target!(|data: &[u8]| entry(data));
