//! `counters!`: the table of counters (`table.rs`) written once, and
//! everything that lists them made from it — the live structs the loop
//! writes, their snapshots, [`Stats::sum`](super::Stats::sum), the
//! `--stats` line and the Prometheus families.
//!
//! Why a declarative macro: without one, adding a counter meant editing
//! five lists that had to agree (the live fields, the snapshot fields,
//! `snapshot`, `sum`, the line), and Prometheus would have made six. The
//! alternatives are worse: a build script or a proc-macro crate hides the
//! code from the reader and the build; a map keyed by name costs a lookup
//! (or a hash) on the hot path and loses the field names a user reads. A
//! `macro_rules!` keeps plain struct fields — `counters[li].accepted.add(1)`
//! compiles to one load and one store — and every per-field behaviour
//! lives in ordinary trait impls (`kinds.rs`); the macro only repeats.
//!
//! Each entry: its doc comment (which is also its Prometheus `# HELP`),
//! its field name (the library's, and the `--stats` line's key), its kind
//! (a type from `kinds.rs`), an optional `[places]` (decimal places to its
//! base unit: `[NS]` for nanoseconds stored, seconds shown), and its
//! Prometheus name without the `sockloop_` prefix.

/// The snapshot type of a kind (a type position macro, so the public
/// structs show plain types in their docs).
macro_rules! value_of {
    (Counter) => {
        u64
    };
    (Gauge) => {
        u64
    };
    (Peak) => {
        u64
    };
    (TurnNanos) => {
        super::table::TurnHistogram
    };
    (EventsPerTurn) => {
        super::table::EventsHistogram
    };
}

macro_rules! counters {
    (
        listener {
            $( $(#[doc = $lhelp:literal])+ $lf:ident: $lk:ident $([$ls:expr])? => $ln:literal, )+
        }
        loop {
            $( $(#[doc = $whelp:literal])+ $wf:ident: $wk:ident $([$ws:expr])? => $wn:literal, )+
        }
    ) => {
        /// One listener's live counters, written by its loop alone.
        #[derive(Debug, Default)]
        pub(crate) struct ListenerCounters {
            $( $(#[doc = $lhelp])+ pub(crate) $lf: $lk, )+
        }

        /// One loop's live health counters, written by the loop alone.
        #[derive(Debug, Default)]
        pub(crate) struct LoopCounters {
            $( $(#[doc = $whelp])+ pub(crate) $wf: $wk, )+
        }

        /// One listener's counters at one moment (see
        /// [`Counters::per_listener`](super::Counters::per_listener)).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct ListenerStats {
            $( $(#[doc = $lhelp])+ pub $lf: value_of!($lk), )+
        }

        /// One loop's health at one moment.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct LoopStats {
            $( $(#[doc = $whelp])+ pub $wf: value_of!($wk), )+
        }

        /// Every counter at one moment: the listeners' summed, then the
        /// loop's health (see [`Counters::snapshot`](super::Counters::snapshot)).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Stats {
            $( $(#[doc = $lhelp])+ pub $lf: value_of!($lk), )+
            $( $(#[doc = $whelp])+ pub $wf: value_of!($wk), )+
        }

        impl ListenerCounters {
            pub(crate) fn snapshot(&self) -> ListenerStats {
                ListenerStats { $( $lf: self.$lf.get(), )+ }
            }
        }

        impl LoopCounters {
            pub(crate) fn snapshot(&self) -> LoopStats {
                LoopStats { $( $wf: self.$wf.get(), )+ }
            }
        }

        impl ListenerStats {
            /// Two listeners' (or workers') counters as one: counts summed,
            /// peaks the highest.
            pub fn merge(self, o: ListenerStats) -> ListenerStats {
                ListenerStats { $( $lf: <$lk as Metric>::merge(self.$lf, o.$lf), )+ }
            }

            /// The Prometheus families, in table order.
            pub(crate) const FAMILIES: &'static [Family] = &[ $( Family {
                name: concat!("sockloop_", $ln),
                help: concat!($($lhelp),+),
                kind: <$lk as Metric>::TYPE,
                places: 0 $( + $ls )?,
            }, )+ ];

            /// Each field as a sample, in table order.
            pub(crate) fn samples(&self) -> Vec<&dyn Sample> {
                vec![ $( &self.$lf as &dyn Sample, )+ ]
            }
        }

        impl LoopStats {
            /// Two loops' health as one: counts and histograms summed.
            pub fn merge(self, o: LoopStats) -> LoopStats {
                LoopStats { $( $wf: <$wk as Metric>::merge(self.$wf, o.$wf), )+ }
            }

            /// The Prometheus families, in table order.
            pub(crate) const FAMILIES: &'static [Family] = &[ $( Family {
                name: concat!("sockloop_", $wn),
                help: concat!($($whelp),+),
                kind: <$wk as Metric>::TYPE,
                places: 0 $( + $ws )?,
            }, )+ ];

            /// Each field as a sample, in table order.
            pub(crate) fn samples(&self) -> Vec<&dyn Sample> {
                vec![ $( &self.$wf as &dyn Sample, )+ ]
            }
        }

        impl Stats {
            /// The listeners' counters (already summed) and the loop's.
            pub fn new(l: ListenerStats, w: LoopStats) -> Stats {
                Stats { $( $lf: l.$lf, )+ $( $wf: w.$wf, )+ }
            }

            /// Several servers' counters as one (`--workers`): counts and
            /// bytes summed, peaks (`peak_*`) the highest.
            pub fn sum(all: impl IntoIterator<Item = Stats>) -> Stats {
                all.into_iter().fold(Stats::default(), |a, b| Stats {
                    $( $lf: <$lk as Metric>::merge(a.$lf, b.$lf), )+
                    $( $wf: <$wk as Metric>::merge(a.$wf, b.$wf), )+
                })
            }
        }

        impl std::fmt::Display for Stats {
            /// The `--stats` line: `stats:` and `key=value` for every
            /// counter, in table order (a histogram as its `_p50` and
            /// `_p99` bucket bounds).
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("stats:")?;
                $( Sample::line(&self.$lf, stringify!($lf), f)?; )+
                $( Sample::line(&self.$wf, stringify!($wf), f)?; )+
                Ok(())
            }
        }
    };
}
