//! The checker of the randomized history (`history.rs`): given every request the browsers
//! made — who, what, when it started and ended (one logical clock), the token it carried, the
//! token its response set and what a read saw — it finds every broken promise.
//!
//! # The model
//!
//! Each browser has tabs; tab `t` alone writes field `t` of the browser's session, with values
//! that say who wrote them ([`value`]) and grow with each write of the tab. Requests of one tab
//! run one after another; requests of different tabs overlap freely. `A` *precedes* `B` when
//! `A` ended before `B` started; otherwise they are concurrent.
//!
//! A *session* here is a lineage of tokens: a token a write's response set starts one (a new
//! session), and an acknowledged login that answered with a new token adds it to the lineage
//! of the token it carried (the data moved). A write belongs to the session of the token its
//! response set, or else of the token it carried. A request carrying a token whose session a
//! login moved sees a fresh, empty session ("nothing") if it reached the store after the move.
//!
//! # The invariants, and what each allows in concurrent cases
//!
//! 1. **An acknowledged write survives.** For a write `W` answered 2xx and a read `R` answered
//!    2xx of the same session with `W` preceding `R`: `R` shows `W`'s value in `W`'s field, or
//!    a newer value of that field. Allowed: `R` may show *nothing* (no session) if a logout of
//!    that session that did not end before `W` started, started before `R` ended (a logout
//!    overlapping or after `W` may have ended the session before `R` loaded it); and `R` may
//!    show nothing if it overlapped the login that moved the token it carried (its browser did
//!    not have the new id yet). A read that shows the session shows it alive, so after `W`'s
//!    write: it has no excuse. Nor has a read carrying an old token *after* the login that
//!    moved it ended: its browser should hold the new id, so something re-sent the old one.
//!    What this cannot see: a write overlapping a logout, answered 2xx although the logout
//!    dropped it, looks exactly like one stored just before the logout (both leave no trace);
//!    the race tests (`races_logout`, `lost_writes`) hold that case at gates instead.
//! 2. **A logout is final.** After a logout of a session is acknowledged, a read that starts
//!    later and carries any token of that session shows nothing, and a write that starts later
//!    with such a token lands in a new session (its response sets a new token). Nothing is
//!    allowed here: a request concurrent with the logout is judged by the other rules.
//! 3. **No foreign or invented values.** Every value a read shows was written by a request of
//!    the same browser, tab and field, that started before the read ended (it may still have
//!    been running), and into the same session as the one read. A read that carried no token
//!    shows nothing.
//! 4. **A refused write is not stored.** No read ever shows the value of a write answered
//!    with anything but 2xx (409, 503: "not saved").
//! 5. **Reads are monotonic.** For reads `R1` preceding `R2` of the same session, both 2xx,
//!    `R2` shows in every field at least what `R1` showed. `R2` showing nothing is allowed only
//!    as in 1 (a logout of the session starting before `R2` ended, or `R2` overlapping the
//!    login that moved its token).
//! 6. **One move per id.** At most one login answers a new token for any one carried token (a
//!    second login at once follows the first and answers none).

use std::collections::HashMap;
use std::fmt;

/// What a request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Set field `tab` to `value`.
    Write { tab: usize, value: u64 },
    /// Read every field.
    Read,
    /// `cycle_id()`.
    Login,
    /// `destroy()`.
    Logout,
}

/// One request of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) browser: usize,
    pub(crate) tab: usize,
    pub(crate) kind: Kind,
    /// When it was sent and when its response arrived, on one logical clock.
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) status: u16,
    /// The session token it carried.
    pub(crate) sent: Option<String>,
    /// The session token its response set (`Some("")`: cleared).
    pub(crate) set: Option<String>,
    /// For a 2xx read: the fields it saw, `None` for "no session".
    pub(crate) seen: Option<[u64; 4]>,
}

impl Event {
    fn acknowledged(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The new token its response set (not a removal, not the one it carried).
    fn new_token(&self) -> Option<&str> {
        self.set
            .as_deref()
            .filter(|set| !set.is_empty() && Some(*set) != self.sent.as_deref())
    }

    fn precedes(&self, other: &Event) -> bool {
        self.end < other.start
    }

    fn overlaps(&self, other: &Event) -> bool {
        !self.precedes(other) && !other.precedes(self)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = |token: &Option<String>| match token.as_deref() {
            None => "-".to_owned(),
            Some("") => "(cleared)".to_owned(),
            Some(token) => token.chars().take(6).collect(),
        };
        write!(
            f,
            "b{}t{} {:?} [{}..{}] {} sent={} set={}",
            self.browser,
            self.tab,
            self.kind,
            self.start,
            self.end,
            self.status,
            short(&self.sent),
            short(&self.set)
        )?;
        if let Some(seen) = &self.seen {
            write!(f, " saw={seen:?}")?;
        } else if self.kind == Kind::Read && self.acknowledged() {
            write!(f, " saw=nothing")?;
        }
        Ok(())
    }
}

/// The value the `seq`-th write (from 1) of `browser`'s tab `tab` writes.
pub(crate) fn value(browser: usize, tab: usize, seq: u64) -> u64 {
    (browser as u64 + 1) * 1_000_000_000 + (tab as u64 + 1) * 1_000_000 + seq
}

/// The browser and tab a value says wrote it.
fn writer_of(value: u64) -> (usize, usize) {
    let browser = (value / 1_000_000_000).saturating_sub(1) as usize;
    let tab = ((value / 1_000_000) % 1000).saturating_sub(1) as usize;
    (browser, tab)
}

/// A broken promise: which rule, what happened, and the requests involved (indices into the
/// history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) rule: &'static str,
    pub(crate) what: String,
    pub(crate) events: Vec<usize>,
}

pub(crate) const SURVIVES: &str = "1. an acknowledged write survives";
pub(crate) const FINAL: &str = "2. a logout is final";
pub(crate) const FOREIGN: &str = "3. no foreign or invented values";
pub(crate) const REFUSED: &str = "4. a refused write is not stored";
pub(crate) const MONOTONIC: &str = "5. reads are monotonic";
pub(crate) const ONE_MOVE: &str = "6. one move per id";

/// The sessions of a history: tokens grouped into lineages.
struct Sessions {
    parent: HashMap<String, String>,
}

impl Sessions {
    fn of(history: &[Event]) -> Self {
        let mut sessions = Sessions {
            parent: HashMap::new(),
        };
        for event in history {
            for token in [event.sent.as_deref(), event.new_token()]
                .into_iter()
                .flatten()
            {
                sessions
                    .parent
                    .entry(token.to_owned())
                    .or_insert_with(|| token.to_owned());
            }
        }
        for event in history {
            if let (Kind::Login, true, Some(sent), Some(new)) = (
                event.kind,
                event.acknowledged(),
                event.sent.as_deref(),
                event.new_token(),
            ) {
                sessions.join(sent, new);
            }
        }
        sessions
    }

    fn root(&self, token: &str) -> String {
        let mut at = token.to_owned();
        while let Some(parent) = self.parent.get(&at) {
            if *parent == at {
                break;
            }
            at = parent.clone();
        }
        at
    }

    fn join(&mut self, a: &str, b: &str) {
        let (a, b) = (self.root(a), self.root(b));
        if a != b {
            self.parent.insert(b, a);
        }
    }

    /// The session a request reached with the token it carried.
    fn carried(&self, event: &Event) -> Option<String> {
        event.sent.as_deref().map(|token| self.root(token))
    }

    /// The session a write went into.
    fn written(&self, event: &Event) -> Option<String> {
        event
            .new_token()
            .or(event.sent.as_deref())
            .map(|token| self.root(token))
    }
}

/// Every broken promise of `history`.
pub(crate) fn check(history: &[Event]) -> Vec<Violation> {
    let sessions = Sessions::of(history);
    let mut violations = Vec::new();
    let mut found = |rule, what: String, events: Vec<usize>| {
        violations.push(Violation { rule, what, events });
    };

    // The login that moved each token (rule 6: at most one).
    let mut mover: HashMap<&str, usize> = HashMap::new();
    for (index, event) in history.iter().enumerate() {
        if event.kind == Kind::Login
            && event.acknowledged()
            && event.new_token().is_some()
            && let Some(sent) = event.sent.as_deref()
            && let Some(first) = mover.insert(sent, index)
        {
            found(
                ONE_MOVE,
                "two logins both moved one id".into(),
                vec![first, index],
            );
        }
    }
    // The logouts of each session.
    let mut logouts: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, event) in history.iter().enumerate() {
        if event.kind == Kind::Logout
            && let Some(session) = sessions.carried(event)
        {
            logouts.entry(session).or_default().push(index);
        }
    }
    // The writes, by value.
    let mut writes: HashMap<u64, usize> = HashMap::new();
    for (index, event) in history.iter().enumerate() {
        if let Kind::Write { value, .. } = event.kind {
            writes.insert(value, index);
        }
    }
    let reads: Vec<usize> = (0..history.len())
        .filter(|&index| history[index].kind == Kind::Read && history[index].acknowledged())
        .collect();

    // May `read` show nothing although its session held data? (rules 1 and 5)
    let may_see_nothing = |read: &Event, session: &str| {
        let moving = read
            .sent
            .as_deref()
            .and_then(|sent| mover.get(sent))
            .is_some_and(|&login| read.overlaps(&history[login]));
        let logged_out = logouts
            .get(session)
            .is_some_and(|all| all.iter().any(|&logout| history[logout].start < read.end));
        moving || logged_out
    };

    for &r in &reads {
        let read = &history[r];
        let session = sessions.carried(read);

        // Rule 3 (and 4): every value shown was written here.
        let Some(seen) = read.seen else { continue };
        let Some(session) = session else {
            found(
                FOREIGN,
                "a read that carried no token saw data".into(),
                vec![r],
            );
            continue;
        };
        for (field, &shown) in seen.iter().enumerate() {
            if shown == 0 {
                continue;
            }
            let Some(&w) = writes.get(&shown) else {
                found(
                    FOREIGN,
                    format!("field {field} shows {shown}, which nobody wrote"),
                    vec![r],
                );
                continue;
            };
            let write = &history[w];
            let (browser, tab) = writer_of(shown);
            if browser != read.browser || tab != field || write.browser != read.browser {
                found(
                    FOREIGN,
                    format!("field {field} shows {shown} of browser {browser}, tab {tab}"),
                    vec![w, r],
                );
            } else if write.start > read.end {
                found(
                    FOREIGN,
                    format!("field {field} shows {shown} before it was written"),
                    vec![w, r],
                );
            } else if !write.acknowledged() {
                found(
                    REFUSED,
                    format!("field {field} shows {shown}, refused with {}", write.status),
                    vec![w, r],
                );
            } else if sessions.written(write).as_deref() != Some(session.as_str()) {
                found(
                    FOREIGN,
                    format!("field {field} shows {shown}, written into another session"),
                    vec![w, r],
                );
            }
        }
    }

    for (w, write) in history.iter().enumerate() {
        let Kind::Write { tab, value } = write.kind else {
            continue;
        };
        if !write.acknowledged() {
            continue;
        }
        let Some(session) = sessions.written(write) else {
            found(
                SURVIVES,
                "an acknowledged write went into no session".into(),
                vec![w],
            );
            continue;
        };
        // Rule 1.
        for &r in &reads {
            let read = &history[r];
            if !write.precedes(read) || sessions.carried(read).as_deref() != Some(session.as_str())
            {
                continue;
            }
            match read.seen {
                // A logout overlapping or after the write, started before the read ended, may
                // have ended the session first. (A read that saw the session saw it before the
                // logout ended it, so after the write: it must show it.)
                None if logouts.get(&session).is_some_and(|all| {
                    all.iter()
                        .any(|&l| history[l].end > write.start && history[l].start < read.end)
                }) => {}
                None if may_see_nothing(read, &session) => {}
                None => found(
                    SURVIVES,
                    format!("the session of {value} shows nothing"),
                    vec![w, r],
                ),
                Some(seen) if seen[tab] < value => {
                    found(
                        SURVIVES,
                        format!("field {tab} shows {} after {value}", seen[tab]),
                        vec![w, r],
                    );
                }
                Some(_) => {}
            }
        }
    }

    // Rule 2.
    for (session, all) in &logouts {
        for &l in all {
            let logout = &history[l];
            if !logout.acknowledged() {
                continue;
            }
            for (index, event) in history.iter().enumerate() {
                if !logout.precedes(event)
                    || sessions.carried(event).as_deref() != Some(session.as_str())
                {
                    continue;
                }
                match event.kind {
                    Kind::Read if event.acknowledged() && event.seen.is_some() => {
                        found(
                            FINAL,
                            "a read after the logout saw the session".into(),
                            vec![l, index],
                        );
                    }
                    Kind::Write { .. } if event.acknowledged() && event.new_token().is_none() => {
                        found(
                            FINAL,
                            "a write after the logout went into the session".into(),
                            vec![l, index],
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    // Rule 5.
    for (i, &r1) in reads.iter().enumerate() {
        let first = &history[r1];
        let (Some(before), Some(session)) = (first.seen, sessions.carried(first)) else {
            continue;
        };
        for &r2 in &reads[i + 1..] {
            let second = &history[r2];
            if second.browser != first.browser
                || !first.precedes(second)
                || sessions.carried(second).as_deref() != Some(session.as_str())
            {
                continue;
            }
            match second.seen {
                None if may_see_nothing(second, &session) => {}
                None => found(MONOTONIC, "a session seen, then not".into(), vec![r1, r2]),
                Some(after) => {
                    if let Some(field) = (0..4).find(|&field| after[field] < before[field]) {
                        found(MONOTONIC, format!("field {field} went back"), vec![r1, r2]);
                    }
                }
            }
        }
    }
    violations
}

/// A report of `violations` for a panic message: each rule broken, and the requests involved
/// with every request of their browser around them.
pub(crate) fn report(history: &[Event], violations: &[Violation]) -> String {
    let mut out = format!("{} broken promise(s):\n", violations.len());
    for violation in violations.iter().take(8) {
        out.push_str(&format!("\n{}: {}\n", violation.rule, violation.what));
        for &index in &violation.events {
            out.push_str(&format!("  #{index} {}\n", history[index]));
        }
        let browser = history[violation.events[0]].browser;
        let (from, to) = violation
            .events
            .iter()
            .fold((u64::MAX, 0), |(from, to), &index| {
                (from.min(history[index].start), to.max(history[index].end))
            });
        out.push_str("  the browser's requests meanwhile:\n");
        for (index, event) in history.iter().enumerate() {
            if event.browser == browser && event.end >= from && event.start <= to {
                out.push_str(&format!("    #{index} {event}\n"));
            }
        }
    }
    out
}
