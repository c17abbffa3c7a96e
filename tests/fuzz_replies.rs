//! The `replies` fuzz target's body, run on stable over random inputs:
//! it always compiles, and its promises (no panic, cuts change nothing)
//! are checked in every `cargo test`.

#[path = "../fuzz/fuzz_targets/replies_entry.rs"]
mod entry;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    #[test]
    fn reply_decoders_fuzz_entry(data in prop::collection::vec(any::<u8>(), 0..400)) {
        entry::entry(&data);
    }

    /// Inputs that look like the protocols, so the fuzz entry reaches past
    /// their first byte.
    #[test]
    fn reply_decoders_fuzz_entry_near_valid(ctl in any::<u8>(),
        parts in prop::collection::vec(prop_oneof![
            Just(&b"HTTP/1.1 200 OK\r\n"[..]), Just(&b"Content-Length: 3\r\n"[..]),
            Just(&b"Transfer-Encoding: chunked\r\n"[..]), Just(&b"\r\n"[..]), Just(&b"3\r\nabc\r\n"[..]),
            Just(&b"0\r\n"[..]), Just(&b"*2\r\n"[..]), Just(&b"$3\r\nfoo\r\n"[..]), Just(&b"+OK\r\n"[..]),
            Just(&b"|1\r\n"[..]), Just(&b">1\r\n"[..]), Just(&b"-ERR\r\n"[..]), Just(&b"\0\0\0\x03"[..]),
            Just(&b"HTTP/1.1 100 Continue\r\n"[..]), Just(&b"x"[..])], 0..16)) {
        let mut data = vec![ctl];
        parts.iter().for_each(|p| data.extend_from_slice(p));
        entry::entry(&data);
    }
}
