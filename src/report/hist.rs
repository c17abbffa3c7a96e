//! The `histogram` key of `load --json`: a run's latency histogram in µs,
//! HdrHistogram V2 deflate-compressed, base64 (the encoding HdrHistogram's
//! Java, C and Python libraries read too). `load` measures in ns; the key
//! holds µs, like every latency figure the user sees.

use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

use crate::hdr;

/// A histogram of ns as the `histogram` key: each bucket's count moved to
/// its value in µs (rounded to the nearest), then encoded ([`hdr`], the
/// same form `--shard` and `merge` use).
pub(crate) fn encode_ns_as_us(ns: &Histogram<u64>) -> Result<String, String> {
    Ok(hdr::encode(&hdr::to_us(ns)))
}

/// The `histogram` key back to a histogram (V2, deflated or not, of any
/// bounds: a report draws what it is given, it adds nothing up).
pub(crate) fn decode_histogram(b64: &str) -> Result<Histogram<u64>, String> {
    let text: String = b64.split_ascii_whitespace().collect();
    let bytes = hdr::base64_decode(&text).ok_or("histogram: not base64")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram: not an HdrHistogram V2 encoding ({e:?})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_go_in_and_the_same_distribution_comes_out_in_us() {
        let mut ns = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            ns.record(v * 10_000).unwrap(); // 10 µs .. 10 ms
        }
        let us = decode_histogram(&encode_ns_as_us(&ns).unwrap()).unwrap();
        assert_eq!(us.len(), 1000);
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let (a, b) = (
                ns.value_at_quantile(q) as f64 / 1000.0,
                us.value_at_quantile(q) as f64,
            );
            assert!((a - b).abs() <= a * 0.002 + 1.0, "q {q}: {a} µs vs {b} µs");
        }
    }

    #[test]
    fn what_is_not_a_histogram_is_an_error_not_a_panic() {
        assert!(decode_histogram("!!").is_err());
        assert!(decode_histogram("aGVsbG8gd29ybGQ=").is_err());
        assert!(decode_histogram("").is_err());
    }
}
