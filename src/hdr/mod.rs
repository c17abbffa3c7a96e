//! Histograms that travel: a run's latency histogram as it leaves the
//! process — in `load --json` (`histogram`) and in a `--hlog` interval
//! log — and comes back in `sockloop merge`.
//!
//! ```text
//!  load records ns ──to_us──▶ µs histogram ──V2 deflate──▶ base64 text
//!                                                             │ (JSON, .hlog)
//!  merge: base64 ──decode──▶ µs histogram ──add, bucket by bucket──▶ merged
//! ```
//!
//! The wire form is HdrHistogram's own (V2, deflate-compressed, the
//! cookie `0x1c849304`), so the Java, C, Python and Rust libraries all read
//! it. Values are µs, like every latency figure a user sees, from 1 µs to
//! 60 s at 3 significant digits.
//!
//! Exactness: [`to_us`] maps each ns bucket to one µs value, whatever else
//! was recorded, so converting and then adding gives the same buckets as
//! adding and then converting: shards merged equal the unsplit run,
//! bucket for bucket (tests/merge.rs proves it for any split).
//!
//! Files: `base64.rs` (the text form, by the `base64` crate), `hlog.rs`
//! (the interval log).

mod base64;
pub mod hlog;

use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Highest latency a travelling histogram holds, µs (60 s, as `load`'s
/// own ns histograms).
pub const HIGHEST_US: u64 = 60_000_000;

/// Significant digits of every latency histogram.
pub const SIGFIG: u8 = 3;

/// Longest base64 histogram accepted (16 MiB): a real one is a few KiB;
/// this only bounds what a hostile file can make us allocate.
const MAX_TEXT: usize = 16 << 20;

/// An empty µs histogram: 1 µs to 60 s, 3 significant digits.
pub fn us_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, SIGFIG).expect("constant bounds are valid")
}

/// The µs histogram of a histogram of ns: each recorded ns bucket goes,
/// with its count, to the µs value of the bucket's highest value (the
/// value its percentiles report), rounded to the nearest µs.
pub fn to_us(ns: &Histogram<u64>) -> Histogram<u64> {
    let mut us = us_histogram();
    for v in ns.iter_recorded() {
        let value = ((v.value_iterated_to() + 500) / 1000).min(HIGHEST_US);
        // In range by the `min` above, so recording cannot fail.
        let _ = us.record_n(value, v.count_at_value());
    }
    us
}

/// A µs histogram as ns (each value × 1000), for code that reports from
/// ns histograms. At 5 significant digits an ns bucket is narrower than
/// 0.02 µs per ms of latency, so the percentiles printed from it are the
/// µs histogram's own to the printed tenth of a µs; `high` only as far as
/// the values go keeps that from costing more than it must.
pub(crate) fn to_ns(us: &Histogram<u64>) -> Histogram<u64> {
    to_ns_at(us, 5)
}

/// [`to_ns`] at `sigfig` significant digits (a second of a timeline needs
/// fewer than a whole run).
pub(crate) fn to_ns_at(us: &Histogram<u64>, sigfig: u8) -> Histogram<u64> {
    let high = (us.max().min(HIGHEST_US) + 1) * 1000;
    let mut ns =
        Histogram::new_with_bounds(1, high.max(2), sigfig).expect("bounds and digits are valid");
    for v in us.iter_recorded() {
        let _ = ns.record_n(v.value_iterated_to() * 1000, v.count_at_value());
    }
    ns
}

/// `h` as HdrHistogram V2 deflate-compressed bytes, base64.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Writing to a Vec cannot fail, and a histogram always serializes.
    let _ = V2DeflateSerializer::new().serialize(h, &mut bytes);
    base64::encode(&bytes)
}

/// The bytes of base64 `text` (for readers of histograms of any bounds,
/// like the HTML report); `None` if it is not base64.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    base64::decode(text)
}

/// The µs histogram in base64 `text` (what [`encode`] wrote, or any
/// HdrHistogram V2 deflate histogram with the same bounds).
pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
    if text.len() > MAX_TEXT {
        return Err(format!("histogram longer than {MAX_TEXT} bytes"));
    }
    let bytes = base64::decode(text.trim()).ok_or("histogram is not base64")?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram is not HdrHistogram V2 deflate: {e:?}"))?;
    // Same bounds as ours, or adding it to ours could fail (or resize).
    if h.low() != 1 || h.high() != HIGHEST_US || h.sigfig() != SIGFIG {
        return Err(format!(
            "histogram covers {}..{} at {} digits, not 1..{HIGHEST_US} µs at {SIGFIG}",
            h.low(),
            h.high(),
            h.sigfig()
        ));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ns_hist(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for &v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn round_trip_keeps_every_bucket() {
        let us = to_us(&ns_hist(&[800, 1_000, 12_345, 999_999, 7_000_000_000]));
        let back = decode(&encode(&us)).unwrap();
        assert_eq!(back, us);
        assert_eq!(back.len(), 5);
        assert_eq!(back.max(), us.max());
    }

    #[test]
    fn other_bounds_are_refused() {
        let other = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
        assert!(decode(&encode(&other)).unwrap_err().contains("covers"));
        assert!(decode("not base64!").is_err());
        assert!(decode("AAAA").is_err());
    }

    proptest! {
        /// Converting commutes with adding: the property merging rests on.
        #[test]
        fn to_us_commutes_with_add(
            a in proptest::collection::vec(0u64..60_000_000_000, 0..50),
            b in proptest::collection::vec(0u64..60_000_000_000, 0..50),
        ) {
            let mut both = a.clone();
            both.extend(&b);
            let mut sum = to_us(&ns_hist(&a));
            sum.add(to_us(&ns_hist(&b))).unwrap();
            prop_assert_eq!(sum, to_us(&ns_hist(&both)));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = decode(&base64::encode(&bytes));
            // A real header with a damaged body.
            let mut real = base64::decode(&encode(&to_us(&ns_hist(&[5_000])))).unwrap();
            for (i, b) in bytes.iter().enumerate() {
                let at = 8 + i % real.len().saturating_sub(8).max(1);
                if at < real.len() {
                    real[at] ^= b;
                }
            }
            let _ = decode(&base64::encode(&real));
        }
    }
}
