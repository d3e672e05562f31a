//! The Redis store: the conformance suite against a standalone server, a Sentinel set and a
//! Cluster (real `redis-server` processes, see `support::redis`), and the promises only the
//! Redis store makes: nothing readable at rest, unreadable values treated as absent, rotation of
//! the secret, TTLs, failing closed while Redis is down, and instances' caches kept coherent by
//! the invalidation broadcast.
//!
//! The suite is expanded here rather than with `conformance_suite!` because a case must be able
//! to end early (and pass) when `redis-server` is not installed; `every_case_of_the_suite_runs_here`
//! keeps this list in step with the suite.

mod at_rest;
mod broadcast;
mod connections;
mod expiry;
mod outage;

/// Calls `$callback! { $factory; <every conformance case> }`.
macro_rules! every_case {
    ($callback:ident, $factory:path) => {
        $callback! { $factory;
            create_then_get_by_token_and_by_id,
            unknown_token_and_id_are_none,
            duplicate_create_is_a_conflict,
            touch_moves_last_seen_and_expiry,
            touch_of_a_gone_session_is_false,
            delete_returns_the_record_and_clears_every_index,
            list_filters_by_realm_and_user_oldest_first,
            revoke_all_leaves_other_users_alone,
            revoke_all_except_current_keeps_it,
            delete_realm_sessions_leaves_other_realms_alone,
            sweep_deletes_only_expired_sessions,
            sweep_respects_limit_and_drains,
            sweep_removes_swept_sessions_from_every_index,
            touched_session_is_not_swept_at_its_old_deadline,
            realm_state_round_trips_and_overwrites,
            ping_answers,
            concurrent_touches_and_deletes_never_resurrect_a_session,
            concurrent_touches_leave_exactly_one_deadline,
            many_sessions_per_user_are_listed,
            unicode_names_and_attributes_round_trip,
            shared_lookup_follows_every_write,
            session_counts_follow_every_write,
            entries_round_trip_until_they_expire,
            entries_are_listed_per_kind_in_key_order,
            swap_entry_compares_before_it_writes,
            concurrent_swaps_have_exactly_one_winner,
            sweep_entries_leaves_live_entries,
        }
    };
}

/// One `#[tokio::test]` per case, on a fresh store from `$factory` (or a loud skip when it
/// gives none).
macro_rules! redis_cases {
    ($factory:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(store) = $factory().await else { return };
                sessiond_store::conformance::$case(store).await;
            }
        )+
    };
}

macro_rules! case_names {
    ($factory:path; $($case:ident),+ $(,)?) => {
        &[$(stringify!($case)),+]
    };
}

mod standalone {
    every_case!(redis_cases, crate::support::redis::standalone_store);
}

/// Through the sentinel, to the master it names (with passwords on both).
mod sentinel {
    every_case!(redis_cases, crate::support::redis::sentinel_store);
}

/// Three masters; each user's sessions on one slot, the rest spread over all three.
mod cluster {
    every_case!(redis_cases, crate::support::redis::cluster_store);
}

#[test]
fn every_case_of_the_suite_runs_here() {
    const HERE: &[&str] = every_case!(case_names, unused);
    let source = include_str!("../../../src/conformance.rs");
    let mut suite: Vec<&str> = source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub async fn "))
        .filter(|rest| rest.contains("<S: Store>"))
        .filter_map(|rest| rest.split('<').next())
        .collect();
    suite.sort_unstable();
    let mut here = HERE.to_vec();
    here.sort_unstable();
    assert_eq!(here, suite, "the Redis suites do not list exactly the conformance cases");
}
