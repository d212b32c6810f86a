//! The history checker of the randomized concurrency test (`behaviour/history_check.rs`) finds
//! every kind of broken promise it claims to, and allows what its docs allow: small histories
//! written by hand, each the shape of a known bug (issues 12 and 20) or of a legitimate race.

#[path = "behaviour/history_check.rs"]
mod history_check;

use history_check::{
    Event, FINAL, FOREIGN, Kind, MONOTONIC, ONE_MOVE, REFUSED, REVOKED, SURVIVES, check, value,
};

/// Builds a history of browser 0, one event at a time, each on the next ticks of the clock
/// unless placed by hand.
#[derive(Default)]
struct History {
    events: Vec<Event>,
}

impl History {
    /// A request from `start` to `end` (a login moves a stored session unless told otherwise).
    fn at(
        &mut self,
        start: u64,
        end: u64,
        kind: Kind,
        status: u16,
        sent: Option<&str>,
        set: Option<&str>,
    ) -> &mut Event {
        let tab = match kind {
            Kind::Write { tab, .. } => tab,
            _ => 0,
        };
        let mut event = Event::new(0, tab, kind, start, end);
        event.status = status;
        event.sent = sent.map(str::to_owned);
        event.set = set.map(str::to_owned);
        event.moved = matches!(kind, Kind::Login | Kind::SignIn { .. });
        self.events.push(event);
        self.events.last_mut().expect("just pushed")
    }

    fn write(&mut self, start: u64, end: u64, seq: u64, sent: Option<&str>, set: Option<&str>) {
        self.at(
            start,
            end,
            Kind::Write {
                tab: 0,
                value: value(0, 0, seq),
            },
            200,
            sent,
            set,
        );
    }

    fn read(&mut self, start: u64, end: u64, sent: &str, field0: Option<u64>) {
        let seen = field0.map(|seq| [if seq == 0 { 0 } else { value(0, 0, seq) }, 0, 0, 0]);
        self.at(start, end, Kind::Read, 200, Some(sent), None).seen = seen;
    }

    fn rules(&self) -> Vec<&'static str> {
        let mut rules: Vec<_> = check(&self.events).into_iter().map(|v| v.rule).collect();
        rules.dedup();
        rules
    }
}

#[test]
fn a_clean_history_passes() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.read(2, 3, "s", Some(1));
    h.write(4, 5, 2, Some("s"), None);
    h.at(6, 7, Kind::Login, 200, Some("s"), Some("n"));
    h.read(8, 9, "n", Some(2));
    h.at(10, 11, Kind::Logout, 200, Some("n"), Some(""));
    h.write(12, 13, 3, None, Some("m"));
    h.read(14, 15, "m", Some(3));
    assert_eq!(h.rules(), Vec::<&str>::new());
}

#[test]
fn a_write_dropped_with_a_200_is_found() {
    // Issue 12, bug 2: the write loaded before the login, answered 200, and is not in the
    // moved session.
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.at(2, 5, Kind::Login, 200, Some("s"), Some("n"));
    h.write(3, 6, 2, Some("s"), None);
    h.read(7, 8, "n", Some(1));
    assert_eq!(h.rules(), [SURVIVES]);
}

#[test]
fn a_write_lost_to_a_logout_it_overlapped_is_allowed() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.write(2, 5, 2, Some("s"), None);
    h.at(3, 4, Kind::Logout, 200, Some("s"), Some(""));
    h.read(6, 7, "s", None);
    assert_eq!(h.rules(), Vec::<&str>::new());
}

#[test]
fn a_read_that_sees_the_session_after_a_write_shows_it_even_when_a_logout_overlaps() {
    // The logout had not ended the session when the read loaded it; the write, answered before
    // the read began, must be in it.
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.write(2, 5, 2, Some("s"), None);
    h.at(3, 9, Kind::Logout, 200, Some("s"), Some(""));
    h.read(6, 7, "s", Some(1));
    assert_eq!(h.rules(), [SURVIVES]);
}

#[test]
fn a_read_overlapping_the_move_of_its_token_may_see_nothing() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.at(2, 5, Kind::Login, 200, Some("s"), Some("n"));
    h.read(3, 6, "s", None);
    h.read(7, 8, "n", Some(1));
    assert_eq!(h.rules(), Vec::<&str>::new());
}

#[test]
fn a_stale_cookie_after_a_login_is_found() {
    // Issue 12, bug 6: a response re-sent the old id after the login; the browser's next read
    // carries it and sees an empty session.
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.at(2, 3, Kind::Login, 200, Some("s"), Some("n"));
    h.read(4, 5, "s", None);
    assert_eq!(h.rules(), [SURVIVES]);
}

#[test]
fn a_logout_that_leaves_the_moved_session_alive_is_found() {
    // Issue 12, bug 5: the logout carried the old id after a login moved the session; the
    // new id still reads the data afterwards.
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.at(2, 5, Kind::Logout, 200, Some("s"), Some(""));
    h.at(3, 4, Kind::Login, 200, Some("s"), Some("n"));
    h.read(6, 7, "n", Some(1));
    assert_eq!(h.rules(), [FINAL]);
}

#[test]
fn a_write_into_a_logged_out_session_is_found() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.at(2, 3, Kind::Logout, 200, Some("s"), Some(""));
    h.write(4, 5, 2, Some("s"), None);
    assert_eq!(h.rules(), [FINAL]);
}

#[test]
fn a_foreign_or_invented_value_is_found() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    // Browser 1 writes into a session of its own; browser 0's read shows its value.
    h.at(
        0,
        1,
        Kind::Write {
            tab: 0,
            value: value(1, 0, 1),
        },
        200,
        None,
        Some("other"),
    )
    .browser = 1;
    h.at(2, 3, Kind::Read, 200, Some("s"), None).seen = Some([value(1, 0, 1), 0, 0, 0]);
    // A value nobody wrote.
    h.at(4, 5, Kind::Read, 200, Some("s"), None).seen = Some([value(0, 0, 9), 0, 0, 0]);
    // A value in the wrong field.
    h.at(6, 7, Kind::Read, 200, Some("s"), None).seen = Some([0, value(0, 0, 1), 0, 0]);
    assert_eq!(
        check(&h.events)
            .iter()
            .filter(|v| v.rule == FOREIGN)
            .count(),
        3
    );
}

#[test]
fn a_value_from_another_session_of_the_same_browser_is_found() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.write(2, 3, 2, None, Some("t"));
    h.read(4, 5, "t", Some(1));
    assert!(h.rules().contains(&FOREIGN), "{:?}", h.rules());
}

#[test]
fn a_refused_write_that_was_stored_is_found() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.at(
        2,
        3,
        Kind::Write {
            tab: 0,
            value: value(0, 0, 2),
        },
        409,
        Some("s"),
        None,
    );
    h.read(4, 5, "s", Some(2));
    assert_eq!(h.rules(), [REFUSED]);
}

#[test]
fn a_read_going_back_is_found() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    // Write 2 is still running when both reads happen (so rule 1 says nothing).
    h.at(
        2,
        20,
        Kind::Write {
            tab: 0,
            value: value(0, 0, 2),
        },
        200,
        Some("s"),
        None,
    );
    h.read(3, 4, "s", Some(2));
    h.read(5, 6, "s", Some(1));
    assert_eq!(h.rules(), [MONOTONIC]);
}

#[test]
fn a_session_seen_then_not_is_found() {
    let mut h = History::default();
    h.at(
        0,
        20,
        Kind::Write {
            tab: 0,
            value: value(0, 0, 1),
        },
        200,
        None,
        Some("s"),
    );
    h.read(3, 4, "s", Some(1));
    h.read(5, 6, "s", None);
    assert_eq!(h.rules(), [MONOTONIC]);
}

#[test]
fn two_moves_of_one_id_are_found() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.at(2, 4, Kind::Login, 200, Some("s"), Some("n"));
    h.at(3, 5, Kind::Login, 200, Some("s"), Some("m"));
    assert_eq!(h.rules(), [ONE_MOVE]);
}

#[test]
fn the_report_names_the_rule_and_the_requests() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.at(2, 3, Kind::Login, 200, Some("s"), Some("n"));
    h.read(4, 5, "s", None);
    let report = history_check::report(&h.events, &check(&h.events));
    assert!(report.contains(SURVIVES), "{report}");
    assert!(
        report.contains("b0t0@0 Read [4..5] 200 sent=s set=- saw=nothing"),
        "{report}"
    );
}

// ---- sign-ins and revocations (issue 20) ------------------------------------------------------

impl History {
    /// A sign-in of `user` from `start` to `end`, carrying `sent`, answered with `set`.
    fn sign_in(&mut self, start: u64, end: u64, user: u64, sent: Option<&str>, set: &str) {
        self.at(start, end, Kind::SignIn { user }, 200, sent, Some(set));
    }
}

#[test]
fn a_revoke_others_that_ends_its_own_moved_session_is_found() {
    // Issue 20, defect 6: "sign out my other devices" carried x while a login of another tab
    // moved x to y; it ended y as another session, and the data is gone.
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.sign_in(2, 3, 1, Some("s"), "x");
    let revoke = h.at(4, 9, Kind::RevokeOthers, 200, Some("x"), None);
    revoke.user = Some(1);
    revoke.revoked = Some(1);
    h.at(5, 6, Kind::Login, 200, Some("x"), Some("y"));
    h.read(10, 11, "y", None);
    assert_eq!(h.rules(), [SURVIVES]);
}

#[test]
fn a_session_bound_before_revoke_owner_that_lives_on_is_found() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.sign_in(2, 3, 1, Some("s"), "n");
    h.at(4, 5, Kind::RevokeOwner { user: 1 }, 200, None, None)
        .revoked = Some(0);
    h.read(6, 7, "n", Some(1));
    assert_eq!(h.rules(), [REVOKED]);
}

#[test]
fn a_sign_in_concurrent_with_revoke_owner_may_survive_it() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.sign_in(2, 6, 1, Some("s"), "n");
    h.at(4, 5, Kind::RevokeOwner { user: 1 }, 200, None, None)
        .revoked = Some(0);
    h.read(7, 8, "n", Some(1));
    assert_eq!(h.rules(), Vec::<&str>::new());
    // Or be ended by it: the write's session shows nothing, and that is allowed too.
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.sign_in(2, 6, 1, Some("s"), "n");
    h.at(4, 5, Kind::RevokeOwner { user: 1 }, 200, None, None)
        .revoked = Some(1);
    h.read(7, 8, "n", None);
    assert_eq!(h.rules(), Vec::<&str>::new());
}

#[test]
fn a_write_landing_in_a_session_revoke_others_ended_is_found() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.sign_in(2, 3, 1, Some("s"), "n");
    // Another device of user 1 signs out the others.
    let other = h.at(2, 3, Kind::SignIn { user: 1 }, 200, None, Some("o"));
    other.browser = 1;
    let revoke = h.at(4, 5, Kind::RevokeOthers, 200, Some("o"), None);
    revoke.browser = 1;
    revoke.user = Some(1);
    revoke.revoked = Some(1);
    h.write(6, 7, 2, Some("n"), None);
    assert_eq!(h.rules(), [REVOKED]);
    // The asker's own session is kept: its later write is fine.
    let mut h = History::default();
    h.sign_in(0, 1, 1, None, "o");
    let revoke = h.at(2, 3, Kind::RevokeOthers, 200, Some("o"), None);
    revoke.user = Some(1);
    revoke.revoked = Some(0);
    h.write(4, 5, 1, Some("o"), None);
    h.read(6, 7, "o", Some(1));
    assert_eq!(h.rules(), Vec::<&str>::new());
}

#[test]
fn a_revoked_reference_is_the_session_a_listing_showed_it_for() {
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.sign_in(2, 3, 1, Some("s"), "n");
    h.at(4, 5, Kind::List, 200, Some("n"), None).reference = Some("R".into());
    let revoke = h.at(6, 7, Kind::Revoke, 200, None, None);
    revoke.browser = 1;
    revoke.reference = Some("R".into());
    revoke.revoked = Some(1);
    h.read(8, 9, "n", Some(1));
    assert_eq!(h.rules(), [REVOKED]);
}

#[test]
fn a_login_with_a_dead_id_starts_a_session_of_its_own() {
    // After a logout, a login carrying the dead id starts a new session (it answers `new`):
    // what is written there is not the ended session's.
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.at(2, 3, Kind::Logout, 200, Some("s"), Some(""));
    h.at(4, 5, Kind::Login, 200, Some("s"), Some("t")).moved = false;
    h.write(6, 7, 2, Some("t"), None);
    h.read(8, 9, "t", Some(2));
    assert_eq!(h.rules(), Vec::<&str>::new());
    // Had it answered `moved`, the ended session would have come back.
    h.events[2].moved = true;
    assert_eq!(h.rules(), [FINAL]);
}

#[test]
fn a_read_overlapping_a_login_that_moved_and_then_lost_the_session_may_see_nothing() {
    // The login moved the session, a logout of the old id ended it at its new id, and the
    // login answered 409: a read of the old id during the login finds the forwarding mark.
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.at(2, 9, Kind::Login, 409, Some("s"), None).moved = false;
    h.read(3, 4, "s", None);
    h.at(5, 6, Kind::Logout, 200, Some("s"), Some(""));
    assert_eq!(h.rules(), Vec::<&str>::new());
    // After the login answered, the old id reading nothing needs an ending to excuse it.
    let mut h = History::default();
    h.write(0, 1, 1, None, Some("s"));
    h.at(2, 3, Kind::Login, 409, Some("s"), None).moved = false;
    h.read(4, 5, "s", None);
    assert_eq!(h.rules(), [SURVIVES]);
}
