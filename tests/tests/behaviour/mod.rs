//! The behaviour suite: the HTTP-level promises of `sessions`, written once and run against
//! every adapter (issue 14). Each test is an `async fn name<A: App>()` (or, for a test that
//! holds for every store, `async fn name<A: App, S: SessionStore + Clone>(store: S)`); a test
//! target per adapter (`behaviour_axum.rs`, `behaviour_actix.rs`) turns the whole list into
//! `#[tokio::test]`s with [`suite!`].
//!
//! The apps are the same routes in each framework (`axum_app.rs`, `actix_app.rs`), their
//! handler bodies shared (`handlers.rs`), and every request goes through the test kit's
//! `sessions::testing::TestClient`: a browser's cookie jar (clones share it, like tabs). The
//! store behind most tests is a [`RecordingStore`], a real `MemoryStore` that also says what the
//! layer asked of it and what each write changed.
//!
//! Every test runs on a current-thread runtime inside a `LocalSet` (actix-web's futures are not
//! `Send`): concurrent requests are `spawn_local`ed, and they interleave where they await — at
//! a [`Gate`] a handler waits at, or between store calls when the store interleaves
//! (`RecordingStore::interleaving`).

#[allow(dead_code, reason = "each test target uses one adapter")]
pub(crate) mod actix_app;
#[allow(dead_code, reason = "each test target uses one adapter")]
pub(crate) mod axum_app;
pub(crate) mod fixtures;
pub(crate) mod handlers;
pub(crate) mod model;
pub(crate) mod recording_store;
#[path = "../redis_common/mod.rs"]
pub(crate) mod redis_common;
#[path = "../replica_common/mod.rs"]
pub(crate) mod replica_common;
pub(crate) mod shared_cluster;
pub(crate) mod support;

pub(crate) mod bad_data;
pub(crate) mod burst;
/// The cookie-store tests of `bad_data` (an adapter test, apart from its store tests).
pub(crate) use bad_data as bad_cookies;
pub(crate) mod concurrency;
pub(crate) mod cookie_logout;
/// The cookie-logout tests with the revocation list in each store (`store_tests!`).
pub(crate) use cookie_logout as cookie_logout_stores;
pub(crate) mod cookie_owners;
pub(crate) mod cookie_store;
pub(crate) mod csrf;
/// The CSRF tests run on every store (their own module of `#[tokio::test]`s).
pub(crate) use csrf as csrf_stores;
pub(crate) mod dirty;
pub(crate) mod expiry;
pub(crate) mod first_week;
pub(crate) mod history;
pub(crate) mod history_check;
pub(crate) mod ids;
pub(crate) mod key_rotation;
pub(crate) mod lifecycle;
pub(crate) mod logs;
pub(crate) mod lost_writes;
pub(crate) mod owasp_cookies;
pub(crate) mod owasp_lifecycle;
pub(crate) mod owners;
pub(crate) mod races_cycle;
pub(crate) mod races_logout;
pub(crate) mod races_optimistic;
pub(crate) mod races_owners;
pub(crate) mod rejections;
pub(crate) mod seam;

use std::future::Future;

use sessions::testing::{TestClient, Transport};
use sessions::{SessionLayer, SessionStore};

pub(crate) use fixtures::Fixture;
pub(crate) use model::{Cart, Prefs};
pub(crate) use recording_store::{Calls, RecordingStore};
pub(crate) use support::Gate;

/// An app under test: the suite's routes in one framework, behind a session layer, reached
/// through the test kit's client.
pub(crate) trait App: 'static {
    /// The framework, for messages.
    const NAME: &'static str;

    /// A browser (a client with a cookie jar of its own) of the suite's routes behind `layer`;
    /// the slow routes wait at `gate`. Each call is another browser of the same app (the same
    /// layer, so the same store).
    fn serve(
        layer: SessionLayer,
        gate: Gate,
    ) -> impl Future<Output = TestClient<impl Transport + Clone + 'static>>;

    /// A browser of the suite's routes with no session layer at all.
    fn serve_without_layer() -> impl Future<Output = TestClient<impl Transport + Clone + 'static>>;
}

/// A layer over `store` with the suite's usual types (`Cart`, `Prefs`) registered.
pub(crate) fn layer(store: impl sessions::IntoBackend) -> SessionLayer {
    SessionLayer::new(store)
        .register::<Cart>()
        .register::<Prefs>()
}

/// A browser of the suite's app behind `layer`, with no gate to wait at.
pub(crate) async fn browser<A: App>(
    layer: &SessionLayer,
) -> TestClient<impl Transport + Clone + 'static> {
    A::serve(layer.clone(), Gate::default()).await
}

/// Runs one test the way the suite runs all of them: inside a `LocalSet`, so that its
/// requests can be `spawn_local`ed.
pub(crate) async fn run_local<F: Future>(test: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(test).await
}

/// Runs a store-generic test on the store of `fixture` (skipped when the fixture says its
/// server is not configured).
pub(crate) async fn with_store<S, Fut>(
    fixture: impl Future<Output = Option<Fixture<S>>>,
    test: impl FnOnce(S) -> Fut,
) where
    S: SessionStore + Clone,
    Fut: Future<Output = ()>,
{
    run_local(async move {
        if let Some(fixture) = fixture.await {
            test(fixture.store.clone()).await;
            drop(fixture);
        }
    })
    .await;
}

/// `#[tokio::test]` wrappers running the suite's adapter tests on `$app`: one module per suite
/// module, one test per test function.
macro_rules! adapter_tests {
    ($app:ty => $($module:ident { $($test:ident),* $(,)? })*) => {$(
        mod $module {$(
            #[tokio::test]
            async fn $test() {
                $crate::behaviour::run_local($crate::behaviour::$module::$test::<$app>()).await;
            }
        )*}
    )*};
}
pub(crate) use adapter_tests;

/// `#[tokio::test]` wrappers running the suite's store-generic tests on `$app`: a module per
/// test, a test per store fixture in it (`races_cycle::save_after_the_cycle::memory`).
macro_rules! store_tests {
    ($app:ty => $($module:ident { $($test:ident $(: $needs:ident)?),* $(,)? })*) => {$(
        mod $module {$(
            mod $test {
                #[tokio::test]
                async fn memory() {
                    $crate::behaviour::with_store(
                        $crate::behaviour::fixtures::memory(),
                        $crate::behaviour::$module::$test::<$app, _>,
                    )
                    .await;
                }
                #[tokio::test]
                async fn sqlite() {
                    $crate::behaviour::with_store(
                        $crate::behaviour::fixtures::sqlite(),
                        $crate::behaviour::$module::$test::<$app, _>,
                    )
                    .await;
                }
                #[tokio::test]
                async fn postgres() {
                    $crate::behaviour::with_store(
                        $crate::behaviour::fixtures::postgres(),
                        $crate::behaviour::$module::$test::<$app, _>,
                    )
                    .await;
                }
                #[tokio::test]
                async fn postgres_replica() {
                    $crate::behaviour::with_store(
                        $crate::behaviour::fixtures::postgres_replica(),
                        $crate::behaviour::$module::$test::<$app, _>,
                    )
                    .await;
                }
                #[tokio::test]
                async fn redis() {
                    $crate::behaviour::with_store(
                        $crate::behaviour::fixtures::redis(),
                        $crate::behaviour::$module::$test::<$app, _>,
                    )
                    .await;
                }
                #[tokio::test]
                async fn memory_compact() {
                    $crate::behaviour::with_store(
                        $crate::behaviour::fixtures::memory_compact(),
                        $crate::behaviour::$module::$test::<$app, _>,
                    )
                    .await;
                }
                #[tokio::test]
                async fn redis_cached() {
                    $crate::behaviour::with_store(
                        $crate::behaviour::fixtures::redis_cached(),
                        $crate::behaviour::$module::$test::<$app, _>,
                    )
                    .await;
                }
                #[tokio::test]
                async fn redis_cluster() {
                    $crate::behaviour::with_store(
                        $crate::behaviour::fixtures::redis_cluster(),
                        $crate::behaviour::$module::$test::<$app, _>,
                    )
                    .await;
                }
                #[tokio::test]
                async fn mysql() {
                    $crate::behaviour::with_store(
                        $crate::behaviour::fixtures::mysql(),
                        $crate::behaviour::$module::$test::<$app, _>,
                    )
                    .await;
                }
                $crate::behaviour::memcached_arm!($app, $module, $test $(, $needs)?);
            }
        )*}
    )*};
}
pub(crate) use store_tests;

/// The memcached arm of a store test: a test marked `: owners` (it lists or revokes the
/// sessions of a user, which memcached cannot: no index survives eviction) has none.
macro_rules! memcached_arm {
    ($app:ty, $module:ident, $test:ident, owners) => {};
    ($app:ty, $module:ident, $test:ident) => {
        #[tokio::test]
        async fn memcached() {
            $crate::behaviour::with_store(
                $crate::behaviour::fixtures::memcached(),
                $crate::behaviour::$module::$test::<$app, _>,
            )
            .await;
        }
    };
}
pub(crate) use memcached_arm;

/// Every test of the suite, on adapter `$app` (`behaviour::suite!(crate::behaviour::axum_app::Axum);`).
macro_rules! suite {
    ($app:ty) => {
        $crate::behaviour::adapter_tests! { $app =>
            dirty {
                a_write_sets_one_secure_cookie_with_max_age_and_no_store,
                a_read_only_request_sets_no_cookie_and_writes_nothing,
                a_read_only_request_without_a_session_creates_nothing,
                a_handler_that_extracts_nothing_costs_no_store_call,
                two_slots_and_the_handle_load_the_record_once,
                an_optional_slot_is_none_when_nothing_is_stored,
                two_slots_written_in_one_handler_are_both_saved,
                only_the_changed_field_is_saved,
                a_write_to_a_stored_session_saves_under_the_same_id_and_sends_no_cookie,
            }
            lifecycle {
                cycle_id_gives_a_new_id_kills_the_old_one_and_keeps_the_data,
                cycle_id_without_loading_anything_still_moves_the_data,
                destroy_deletes_the_record_and_clears_the_cookie,
                a_destroy_racing_a_slow_save_stays_destroyed,
                a_5xx_response_saves_nothing_for_a_new_session,
                a_5xx_response_saves_nothing_for_a_stored_session,
                removing_a_slot_through_the_handle_alone_removes_it,
            }
            ids {
                a_malformed_id_gets_a_fresh_session_and_is_never_logged,
                an_unknown_id_gets_a_fresh_session_under_another_id,
                no_log_line_of_a_whole_session_holds_its_id,
                the_header_transport_hands_the_id_back_only_when_it_changes,
                the_header_transport_ignores_the_cookie_and_refuses_malformed_ids,
                the_header_transport_trims_whitespace_around_the_id,
            }
            expiry {
                idle_expiry_read_activity_keeps_the_session_alive,
                idle_expiry_write_activity_keeps_the_session_alive,
                idle_expiry_inactivity_ends_the_session,
                absolute_expiry_ends_the_session_despite_activity,
                idle_and_absolute_whichever_comes_first,
                browser_session_cookies_have_no_max_age_but_end_server_side,
                a_read_refreshes_the_expiry_only_once_the_share_has_passed,
                set_expiry_in_a_writing_handler_persists,
                set_expiry_alone_persists_on_a_stored_session,
                set_expiry_before_the_first_load_persists_on_a_new_session,
            }
            rejections {
                a_typed_slot_without_the_layer_is_a_plain_500_and_the_log_names_the_fix,
                an_unregistered_type_is_a_plain_500_and_the_log_says_register,
                the_rejection_hook_shapes_every_rejection,
                a_store_that_is_down_is_a_503_with_a_message,
                a_store_that_cannot_write_is_a_503_and_nothing_is_lost,
                a_slot_at_a_future_version_is_an_error_and_stays_as_stored,
                a_slot_at_a_future_version_survives_writes_to_other_slots,
            }
            concurrency {
                concurrent_requests_changing_different_fields_all_survive,
                a_save_that_always_loses_is_a_503_after_the_budget,
            }
            cookie_store {
                the_whole_session_travels_in_the_cookie,
                a_5xx_response_seals_nothing,
                a_cookie_sealed_with_a_rotated_key_opens_and_is_resealed,
                a_cookie_sealed_with_a_retired_key_gets_a_fresh_session,
                the_expiry_sealed_in_the_cookie_is_enforced,
                ten_thousand_hostile_cookies_are_refused_without_a_panic,
                a_session_too_large_for_a_cookie_is_a_500_and_an_error_log_never_a_dropped_cookie,
            }
            key_rotation {
                a_cookie_sealed_with_a_opens_after_rotating_to_b_a_and_comes_back_sealed_with_b,
                after_removing_a_its_cookie_is_refused_and_a_fresh_session_starts,
                resealing_with_the_new_key_does_not_extend_the_session,
                an_impostor_key_under_the_id_of_a_is_refused,
                every_session_of_a_fleet_survives_the_rotation,
            }
            logs {
                no_log_line_holds_a_session_id_cookie_value_or_key,
            }
            owasp_cookies {
                session_id_name_fingerprinting,
                session_id_length_and_entropy,
                session_id_content_is_meaningless,
                accepted_exchange_mechanism_only,
                transport_layer_security,
                cookie_secure_attribute,
                cookie_httponly_attribute,
                cookie_samesite_attribute,
                cookie_domain_and_path_attributes,
                cookie_expire_and_max_age_attributes,
                multiple_cookies_host_prefix_resists_cookie_tossing,
            }
            owasp_lifecycle {
                strict_session_management_no_client_ids,
                session_id_validated_as_user_input,
                renew_session_id_after_privilege_change,
                session_fixation,
                idle_timeout,
                absolute_timeout,
                manual_session_expiration_logout,
                web_content_caching_no_store,
                web_content_caching_handler_policy_is_kept,
                server_side_store_keyed_by_id_hash,
                client_side_session_encrypted_and_authenticated,
                attack_detection_logs_without_ids,
                fail_closed_when_store_down,
            }
            bad_cookies {
                a_non_finite_float_in_a_cookie_session_is_refused,
            }
            cookie_owners {
                cookie_sessions_are_revoked_through_the_revocation_list,
                a_cookie_request_in_flight_when_its_user_is_revoked_does_not_reseal_it,
            }
            cookie_logout {
                a_cookie_replayed_after_logout_opens_as_nothing,
                the_cookie_before_a_login_is_dead_after_it,
                cookie_revocations_expire_with_the_cookie,
                the_cap_ends_the_oldest_cookie_of_a_user,
                settings_a_cookie_layer_cannot_honour_fail_at_start_up,
                a_cookie_is_refused_while_the_revocation_list_is_down,
            }
            csrf {
                a_cross_site_unsafe_request_is_refused_before_anything_is_loaded,
                same_origin_and_curl_like_requests_go_through,
                a_session_in_a_header_is_not_checked,
                a_layer_taking_cookie_or_header_checks_the_cookie_requests_only,
                a_trusted_origin_and_an_exempt_path_go_through,
                csrf_off_checks_nothing,
                a_valid_token_lets_a_cross_site_request_through,
                each_rendering_of_the_token_differs_and_each_verifies,
                require_token_refuses_a_same_origin_request_without_one,
                a_form_with_the_token_reaches_the_handler_intact,
                the_rejection_hook_shapes_a_csrf_refusal,
                a_cookie_store_token_dies_at_login,
            }
            seam {
                one_layer_serves_a_browser_by_cookie_and_an_api_client_by_header,
                a_store_used_without_migrate_is_a_500_and_the_log_names_the_fix,
                a_seeded_login_is_bound_to_its_owner,
                an_inspected_cookie_is_checked_against_revocations,
            }
            first_week {
                a_handler_learns_the_id_of_a_new_session_and_the_client_gets_it,
                a_current_user_guard_rejects_with_401_until_signed_in,
                two_values_of_one_slot_merge_and_the_later_drop_wins,
                remove_then_dropping_a_changed_value_does_not_bring_the_slot_back,
                a_flash_after_logout_lands_in_a_fresh_session,
                clear_empties_every_slot_and_keeps_the_id,
            }
        }
        $crate::behaviour::store_tests! { $app =>
            csrf_stores {
                a_token_from_before_cycle_id_is_refused_after_it,
            }
            cookie_logout_stores {
                a_replayed_cookie_opens_as_nothing_after_logout_with_the_list_here,
                the_pre_login_cookie_is_dead_after_cycle_id_with_the_list_here,
                the_cap_on_cookies_works_with_the_list_here,
                a_revocation_is_stored_until_the_cookies_end_and_no_longer,
            }
            races_cycle {
                save_after_the_cycle,
                save_before_the_cycle,
                second_login_follows_the_first,
                a_handler_save_after_the_cycle_lands_in_the_moved_session,
            }
            races_logout {
                logout_beats_a_slow_save,
                logout_beats_a_slow_login,
                two_logouts_at_once_both_end_it,
            }
            races_optimistic {
                second_writer_of_a_slot_gets_409,
                handler_retries_after_a_conflict,
                other_slots_do_not_conflict,
                last_writer_wins_when_off,
                a_field_update_of_a_removed_slot_is_409,
            }
            lost_writes {
                two_first_writes_of_a_slot_keep_both_fields,
                removing_the_last_slot_keeps_a_concurrent_first_write,
                the_first_requests_after_a_deploy_migrate_and_keep_both_changes,
                a_codec_switch_keeps_both_changes,
                a_handler_save_racing_a_logout_is_409_and_sends_no_cookie,
                a_handler_save_racing_a_logout_is_409_even_if_the_handler_carries_on,
                the_id_a_handler_sees_is_the_id_the_client_gets,
                a_logout_racing_a_login_ends_the_session_at_its_new_id,
                a_stale_response_sends_no_cookie,
            }
            history {
                randomized_history_keeps_every_promise: owners,
            }
            burst {
                a_burst_of_distinct_field_writes_is_all_stored,
            }
            bad_data {
                a_non_finite_float_is_refused_and_what_was_stored_still_reads,
                an_expiry_too_long_for_the_clock_ends_at_the_latest_time,
                an_entry_at_its_maximum_is_read_as_nothing_and_a_logout_ends_it,
                an_unreadable_session_of_a_user_is_left_out_and_ended: owners,
            }
            owners {
                a_user_lists_its_sessions_by_reference_with_their_times: owners,
                revoke_ends_only_a_session_of_the_same_user: owners,
                revoke_others_keeps_only_this_session: owners,
                revoke_owner_ends_every_session_of_the_user: owners,
                a_cap_revokes_the_oldest_login: owners,
                a_cap_applies_to_the_login_of_a_stored_session: owners,
                the_list_follows_a_session_through_logins_and_logout: owners,
            }
            races_owners {
                a_revoke_beats_a_slow_write_of_the_revoked_session: owners,
                a_revoke_beats_a_handler_save_of_the_revoked_session: owners,
                a_revoke_owner_beats_a_slow_login_of_the_revoked_session: owners,
                two_logins_at_once_under_a_cap_of_one_the_loser_is_told: owners,
                two_logins_of_stored_sessions_at_once_under_a_cap_of_one_the_loser_is_told: owners,
                two_free_running_logins_under_a_cap_of_one_leave_one: owners,
                revoke_others_keeps_the_session_a_login_moved_meanwhile: owners,
                revoke_others_during_a_login_keeps_the_session_being_moved: owners,
                a_login_racing_revoke_others_of_its_session_is_not_a_503: owners,
                a_login_racing_revoke_owner_is_a_409_never_a_503: owners,
                a_listing_during_a_login_shows_the_session_once_under_the_held_id: owners,
            }
        }
    };
}
pub(crate) use suite;
