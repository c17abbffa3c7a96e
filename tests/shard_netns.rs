//! `load --shard` on separate hosts: N shard processes, each in a network
//! namespace of its own, against one server in another, all started with
//! one `--start-at`; their merge is checked against the server's own
//! counters and against the shards' raw histograms added by hand.

mod common;
mod netns;

use netns::Net;

/// The guard removes its namespaces even when the test using them panics.
#[test]
fn namespaces_are_removed_when_a_test_fails() {
    let mut names = Vec::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let net = Net::new(2);
        names = net.names().to_vec();
        for n in &names {
            assert!(Net::exists(n), "{n} was not made");
        }
        panic!("a failing test");
    }));
    assert!(caught.is_err());
    assert_eq!(names.len(), 4, "sw, srv, h0, h1: {names:?}");
    for n in &names {
        assert!(!Net::exists(n), "{n} left behind");
    }
}
