//! What makes a set of shards one test: N shards of one split, each once,
//! asked the same, started together. Anything else is refused with the
//! inputs named, before a single figure is added.

use std::collections::BTreeMap;

use serde_json::Value;

use super::shard::Shard;
use super::MergeError;

/// Refuse shards that are not one whole test; on success they are sorted
/// by shard index.
pub(crate) fn check(shards: &mut [Shard]) -> Result<(), MergeError> {
    let usage = |s: String| Err(MergeError::Usage(s));
    let Some(first) = shards.first() else {
        return usage(
            "no shard outputs found (looking for `load --shard S/N --json` objects)".into(),
        );
    };
    let n = first.of;
    if let Some(other) = shards.iter().find(|s| s.of != n) {
        return usage(format!(
            "shards of different splits: {} is shard {}, {} is shard {}",
            first.source,
            first.name(),
            other.source,
            other.name()
        ));
    }
    let mut seen: BTreeMap<usize, &str> = BTreeMap::new();
    for s in shards.iter() {
        if let Some(before) = seen.insert(s.index, &s.source) {
            return usage(format!(
                "shard {} appears twice: {before} and {}",
                s.name(),
                s.source
            ));
        }
    }
    let missing: Vec<String> = (0..n)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return usage(format!(
            "shard{} {} missing ({} of {n} found)",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            shards.len()
        ));
    }
    for s in shards.iter() {
        let keys = differing(&first.settings, &s.settings);
        if !keys.is_empty() {
            let show = |v: &Value, k: &str| v.get(k).map_or("(absent)".into(), Value::to_string);
            let what: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{k}: {} vs {}",
                        show(&first.settings, k),
                        show(&s.settings, k)
                    )
                })
                .collect();
            return usage(format!(
                "settings differ between {} (shard {}) and {} (shard {}): {}",
                first.source,
                first.name(),
                s.source,
                s.name(),
                what.join("; ")
            ));
        }
        if s.start_unix != first.start_unix {
            return usage(format!(
                "shards did not start together: {} (shard {}) has start_unix {}, {} (shard {}) has {}; give every shard the same --start-at",
                first.source,
                first.name(),
                first.start_unix,
                s.source,
                s.name(),
                s.start_unix
            ));
        }
    }
    shards.sort_by_key(|s| s.index);
    Ok(())
}

/// The keys whose values differ between two settings objects.
fn differing(a: &Value, b: &Value) -> Vec<String> {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return vec!["settings".into()];
    };
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
