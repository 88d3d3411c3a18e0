//! Properties every simulated run must keep, one file per invariant.

pub mod acked_commits_are_kept;
pub mod acknowledged_topics_exist_once;
pub mod committed_offsets_never_go_back;
pub mod epochs_never_decrease;
pub mod group_ownership_is_exclusive;
pub mod hw_never_goes_back;
pub mod metadata_logs_agree;
pub mod no_duplicates;
pub mod no_lost_acked_writes;
pub mod one_value_per_offset;
pub mod reads_below_hw_stay;
pub mod replicas_agree_below_hw;

use crate::workload::{FinalLog, History, ReplicaLog};

pub type Check<'a> = (&'static str, Box<dyn Fn() + 'a>);

/// Runs every check; panics naming each invariant that failed ("INVARIANT <name>
/// FAILED: <why>", one per line).
pub fn run_checks(checks: Vec<Check>) {
    let mut failed = Vec::new();
    for (name, check) in checks {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("INVARIANT {name} FAILED: {msg}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Every group check on a group history: exclusive ownership, committed offsets never
/// going back, and (once `final_committed` is filled in) every acknowledged commit kept.
pub fn check_groups(h: &crate::group_member::History) {
    let mut checks: Vec<Check> = vec![
        (
            "group_ownership_is_exclusive",
            Box::new(|| group_ownership_is_exclusive::check(h)),
        ),
        (
            "committed_offsets_never_go_back",
            Box::new(|| committed_offsets_never_go_back::check(h)),
        ),
    ];
    if !h.final_committed.is_empty() {
        checks.push((
            "acked_commits_are_kept",
            Box::new(|| acked_commits_are_kept::check(h)),
        ));
    }
    run_checks(checks);
}

/// The metadata histories of every controller and broker agree (`metadata_logs_agree`).
pub fn check_metadata(cluster: &crate::cluster::SimCluster) {
    run_checks(vec![(
        "metadata_logs_agree",
        Box::new(|| metadata_logs_agree::check(cluster)),
    )]);
}

/// Every replication check on one run's history, final logs and replica logs. All of
/// them run; the panic names every invariant that failed.
pub fn check_replication(h: &History, logs: &[FinalLog], replicas: &[ReplicaLog]) {
    run_checks(vec![
        (
            "no_lost_acked_writes",
            Box::new(|| no_lost_acked_writes::check(h, logs)),
        ),
        (
            "one_value_per_offset",
            Box::new(|| one_value_per_offset::check(h, logs)),
        ),
        ("no_duplicates", Box::new(|| no_duplicates::check(logs))),
        (
            "replicas_agree_below_hw",
            Box::new(|| replicas_agree_below_hw::check(replicas)),
        ),
        (
            "hw_never_goes_back",
            Box::new(|| hw_never_goes_back::check(h)),
        ),
        (
            "epochs_never_decrease",
            Box::new(|| epochs_never_decrease::check(replicas)),
        ),
        (
            "reads_below_hw_stay",
            Box::new(|| reads_below_hw_stay::check(h, logs)),
        ),
    ]);
}

/// The checks of the replicas' own logs alone (when the cluster could not converge
/// enough to read the final logs).
pub fn check_replica_logs(replicas: &[ReplicaLog]) {
    run_checks(vec![
        (
            "replicas_agree_below_hw",
            Box::new(|| replicas_agree_below_hw::check(replicas)),
        ),
        (
            "epochs_never_decrease",
            Box::new(|| epochs_never_decrease::check(replicas)),
        ),
    ]);
}
