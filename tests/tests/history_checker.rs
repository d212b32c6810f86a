//! The history checker of the randomized concurrency test (`behaviour/history_check.rs`) finds
//! every kind of broken promise it claims to, and allows what its docs allow: small histories
//! written by hand, each the shape of a known bug (issue 12) or of a legitimate race.

#[path = "behaviour/history_check.rs"]
mod history_check;

use history_check::{
    Event, FINAL, FOREIGN, Kind, MONOTONIC, ONE_MOVE, REFUSED, SURVIVES, check, value,
};

/// Builds a history of browser 0, one event at a time, each on the next ticks of the clock
/// unless placed by hand.
#[derive(Default)]
struct History {
    events: Vec<Event>,
}

impl History {
    /// A request from `start` to `end`.
    fn at(
        &mut self,
        start: u64,
        end: u64,
        kind: Kind,
        status: u16,
        sent: Option<&str>,
        set: Option<&str>,
    ) -> &mut Event {
        self.events.push(Event {
            browser: 0,
            tab: match kind {
                Kind::Write { tab, .. } => tab,
                _ => 0,
            },
            kind,
            start,
            end,
            status,
            sent: sent.map(str::to_owned),
            set: set.map(str::to_owned),
            seen: None,
        });
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
        report.contains("b0t0 Read [4..5] 200 sent=s set=- saw=nothing"),
        "{report}"
    );
}
