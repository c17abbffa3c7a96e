//! The kinds of counter the table is made of, each with its live form
//! (written by the loop's thread alone), its snapshot, how two snapshots
//! are summed (several listeners, several workers), and how it is written
//! out — on the `--stats` line and in the Prometheus text format.
//!
//! The loop is the only writer of its counters, so a write is a relaxed
//! load and store (no locked read-modify-write on the hot path); readers on
//! other threads see a recent value, which is all a statistic needs.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One relaxed cell, written by one thread (see the module docs).
#[derive(Debug, Default)]
struct Cell(AtomicU64);

impl Cell {
    fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    fn set(&self, n: u64) {
        self.0.store(n, Relaxed);
    }
    fn add(&self, n: u64) {
        self.set(self.get().wrapping_add(n));
    }
}

/// A live value of the table, of one kind: what the table's macro needs.
pub(crate) trait Metric: Default {
    /// Its snapshot.
    type Value: Sample;
    /// The Prometheus `# TYPE`.
    const TYPE: &'static str;
    /// Read it now.
    fn get(&self) -> Self::Value;
    /// Two snapshots as one (listeners or workers together).
    fn merge(a: Self::Value, b: Self::Value) -> Self::Value;
}

/// A snapshot value, written out.
pub(crate) trait Sample {
    /// Prometheus: the sample line(s) of series `name{labels}`, the value
    /// divided by `10^places` into the family's base unit.
    fn prom(&self, name: &str, labels: &str, places: u32, out: &mut String);
    /// The `--stats` line: ` key=value` pair(s).
    fn line(&self, key: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl Sample for u64 {
    fn prom(&self, name: &str, labels: &str, places: u32, out: &mut String) {
        let _ = write!(out, "{name}");
        braces(out, labels, "");
        out.push(' ');
        decimal(out, *self, places);
        out.push('\n');
    }
    fn line(&self, key: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " {key}={self}")
    }
}

/// `v / 10^places` in decimal, exactly (no float rounding: a count stays
/// exact however large, 1024 ns is `0.000001024` s).
pub(crate) fn decimal(out: &mut String, v: u64, places: u32) {
    if places == 0 {
        let _ = write!(out, "{v}");
        return;
    }
    let unit = 10u64.pow(places);
    let frac = format!("{:0width$}", v % unit, width = places as usize);
    let frac = frac.trim_end_matches('0');
    let _ = write!(out, "{}", v / unit);
    if !frac.is_empty() {
        let _ = write!(out, ".{frac}");
    }
}

/// `{labels,extra}`, or nothing when both are empty.
fn braces(out: &mut String, labels: &str, extra: &str) {
    let sep = if labels.is_empty() || extra.is_empty() {
        ""
    } else {
        ","
    };
    if !labels.is_empty() || !extra.is_empty() {
        let _ = write!(out, "{{{labels}{sep}{extra}}}");
    }
}

/// Only ever goes up (accepted, bytes): summed over listeners and workers.
#[derive(Debug, Default)]
pub(crate) struct Counter(Cell);

impl Counter {
    pub(crate) fn add(&self, n: u64) {
        self.0.add(n);
    }
}

impl Metric for Counter {
    type Value = u64;
    const TYPE: &'static str = "counter";
    fn get(&self) -> u64 {
        self.0.get()
    }
    fn merge(a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }
}

/// Goes up and down (open connections, pending bytes): summed.
#[derive(Debug, Default)]
pub(crate) struct Gauge(Cell);

impl Gauge {
    pub(crate) fn add(&self, n: u64) {
        self.0.add(n);
    }
    pub(crate) fn sub(&self, n: u64) {
        self.0.set(self.0.get().wrapping_sub(n));
    }
}

impl Metric for Gauge {
    type Value = u64;
    const TYPE: &'static str = "gauge";
    fn get(&self) -> u64 {
        self.0.get()
    }
    fn merge(a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }
}

/// A peak: the highest value ever seen. Several together are
/// their highest, not their sum.
#[derive(Debug, Default)]
pub(crate) struct Peak(Cell);

impl Peak {
    pub(crate) fn max(&self, n: u64) {
        if n > self.0.get() {
            self.0.set(n);
        }
    }
}

impl Metric for Peak {
    type Value = u64;
    const TYPE: &'static str = "gauge";
    fn get(&self) -> u64 {
        self.0.get()
    }
    fn merge(a: u64, b: u64) -> u64 {
        a.max(b)
    }
}

/// A histogram with fixed power-of-two buckets: bucket `j` counts values
/// up to `2^(LOW + j)`, the last bucket everything above. Recording is a
/// leading-zeros count and two relaxed stores: no allocation, no search.
#[derive(Debug)]
pub(crate) struct Log2Histogram<const LOW: u32, const N: usize> {
    buckets: [Cell; N],
    sum: Cell,
}

impl<const LOW: u32, const N: usize> Default for Log2Histogram<LOW, N> {
    fn default() -> Self {
        Log2Histogram {
            buckets: std::array::from_fn(|_| Cell::default()),
            sum: Cell::default(),
        }
    }
}

impl<const LOW: u32, const N: usize> Log2Histogram<LOW, N> {
    pub(crate) fn record(&self, v: u64) {
        self.buckets[bucket_of(v, LOW, N)].add(1);
        self.sum.add(v);
    }
}

/// The bucket of `v`: the first whose bound `2^(low + j)` is at least `v`.
fn bucket_of(v: u64, low: u32, n: usize) -> usize {
    // Bits needed for v - 1: the exponent of the smallest power of two >= v.
    let bits = 64 - v.saturating_sub(1).leading_zeros();
    (bits.saturating_sub(low) as usize).min(n - 1)
}

impl<const LOW: u32, const N: usize> Metric for Log2Histogram<LOW, N> {
    type Value = Histogram<LOW, N>;
    const TYPE: &'static str = "histogram";
    fn get(&self) -> Histogram<LOW, N> {
        Histogram {
            buckets: std::array::from_fn(|j| self.buckets[j].get()),
            sum: self.sum.get(),
        }
    }
    fn merge(mut a: Histogram<LOW, N>, b: Histogram<LOW, N>) -> Histogram<LOW, N> {
        for (x, y) in a.buckets.iter_mut().zip(b.buckets) {
            *x = x.wrapping_add(y);
        }
        a.sum = a.sum.wrapping_add(b.sum);
        a
    }
}

/// A snapshot of a log2 histogram of the loop: how many values fell in each bucket
/// (bucket `j`: up to `2^(LOW + j)`; the last: anything above), and their
/// sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Histogram<const LOW: u32, const N: usize> {
    /// Values per bucket (not cumulative).
    pub buckets: [u64; N],
    /// The sum of every value recorded.
    pub sum: u64,
}

impl<const LOW: u32, const N: usize> Default for Histogram<LOW, N> {
    fn default() -> Self {
        Histogram {
            buckets: [0; N],
            sum: 0,
        }
    }
}

impl<const LOW: u32, const N: usize> Histogram<LOW, N> {
    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The upper bound of bucket `j` (`None`: the last, unbounded).
    pub fn bound(&self, j: usize) -> Option<u64> {
        (j + 1 < N).then(|| 1u64 << (LOW + j as u32))
    }

    /// An upper bound of the `q` quantile (0..=1): the bound of the bucket
    /// it falls in, so at most twice the true value (`None`: no values, or
    /// it is in the last, unbounded bucket).
    pub fn quantile_bound(&self, q: f64) -> Option<u64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (j, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return self.bound(j);
            }
        }
        None
    }
}

impl<const LOW: u32, const N: usize> Sample for Histogram<LOW, N> {
    fn prom(&self, name: &str, labels: &str, places: u32, out: &mut String) {
        let mut cumulative = 0;
        for (j, &n) in self.buckets.iter().enumerate() {
            cumulative += n;
            let mut le = String::from("le=\"");
            match self.bound(j) {
                Some(b) => decimal(&mut le, b, places),
                None => le.push_str("+Inf"),
            }
            le.push('"');
            let _ = write!(out, "{name}_bucket");
            braces(out, labels, &le);
            let _ = writeln!(out, " {cumulative}");
        }
        self.sum.prom(&format!("{name}_sum"), labels, places, out);
        cumulative.prom(&format!("{name}_count"), labels, 0, out);
    }
    /// `key_p50=… key_p99=…`: bucket bounds (`inf` past the last).
    fn line(&self, key: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
            match self.quantile_bound(q) {
                Some(b) => write!(f, " {key}_{name}={b}")?,
                None if self.count() == 0 => write!(f, " {key}_{name}=0")?,
                None => write!(f, " {key}_{name}=inf")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_inclusive_powers_of_two() {
        // low = 10: 1024, 2048, 4096, then everything above.
        let b = |v| bucket_of(v, 10, 4);
        assert_eq!([b(0), b(1), b(1024)], [0, 0, 0]);
        assert_eq!([b(1025), b(2048)], [1, 1]);
        assert_eq!([b(2049), b(4096), b(4097), b(u64::MAX)], [2, 2, 3, 3]);
        let e = |v| bucket_of(v, 0, 3);
        assert_eq!([e(0), e(1), e(2), e(3), e(4), e(5)], [0, 0, 1, 2, 2, 2]);
    }

    #[test]
    fn histogram_records_merges_and_bounds_quantiles() {
        let h = Log2Histogram::<0, 12>::default();
        for v in [1, 1, 3, 100] {
            h.record(v);
        }
        let s = h.get();
        assert_eq!(s.count(), 4);
        assert_eq!(s.sum, 105);
        assert_eq!(s.quantile_bound(0.5), Some(1));
        assert_eq!(s.quantile_bound(0.75), Some(4));
        assert_eq!(s.quantile_bound(1.0), Some(128));
        let two = Log2Histogram::<0, 12>::merge(s, s);
        assert_eq!((two.count(), two.sum), (8, 210));
        assert_eq!(Histogram::<0, 12>::default().quantile_bound(0.5), None);
    }

    #[test]
    fn decimals_are_exact() {
        let d = |v, p| {
            let mut s = String::new();
            decimal(&mut s, v, p);
            s
        };
        assert_eq!(d(1024, 9), "0.000001024");
        assert_eq!(d(2_000_000_000, 9), "2");
        assert_eq!(d(1500, 3), "1.5");
        assert_eq!(d(u64::MAX, 0), "18446744073709551615");
        assert_eq!(d(0, 9), "0");
    }

    #[test]
    fn peaks_merge_by_max_counts_by_sum() {
        assert_eq!(Peak::merge(3, 5), 5);
        assert_eq!(Counter::merge(3, 5), 8);
        let g = Gauge::default();
        g.add(5);
        g.sub(2);
        assert_eq!(g.get(), 3);
    }

    #[test]
    fn prometheus_histogram_is_cumulative_with_inf_sum_and_count() {
        let h = Log2Histogram::<0, 3>::default();
        for v in [1, 2, 9] {
            h.record(v);
        }
        let mut out = String::new();
        h.get().prom("x", "a=\"b\"", 0, &mut out);
        assert_eq!(
            out,
            "x_bucket{a=\"b\",le=\"1\"} 1\nx_bucket{a=\"b\",le=\"2\"} 2\n\
             x_bucket{a=\"b\",le=\"+Inf\"} 3\nx_sum{a=\"b\"} 12\nx_count{a=\"b\"} 3\n"
        );
    }
}
