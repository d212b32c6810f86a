//! The checker of the randomized history (`history.rs`): given every request the browsers
//! made — who, what, when it started and ended (one logical clock), the token it carried, the
//! token its response set, what a read saw and what a login or a revocation answered — it
//! finds every broken promise.
//!
//! # The model
//!
//! Each browser belongs to a user and has tabs; tab `t` alone writes field `t` of the browser's
//! session, with values that say who wrote them ([`value`]) and grow with each write of the
//! tab. Requests of one tab run one after another; requests of different tabs overlap freely.
//! `A` *precedes* `B` when `A` ended before `B` started; otherwise they are concurrent. The
//! requests go to either of two app instances (two layers over one store).
//!
//! A *session* here is a lineage of tokens: a token a write's response set starts one (a new
//! session), and an acknowledged login that moved a stored session (it answers `moved`) and set
//! a new token adds it to the lineage of the token it carried. A write belongs to the session of
//! the token its response set, or else of the token it carried. A request carrying a token whose
//! session a login moved sees a fresh, empty session ("nothing") if it reached the store after
//! the move.
//!
//! A session is *bound* to a user by a sign-in (a login that also sets the owner field); a
//! session is bound *before* a time when an acknowledged sign-in into it ended before then.
//! Three revocations end sessions of a user: `revoke_owner(user)` (from outside a request) ends
//! every session bound to the user; "sign out my other devices" (`revoke_others`) every one but
//! the asking session (wherever a login moved it); `revoke(reference)` the one listed under the
//! reference (a listing tells which session each reference is: the asking session's own line).
//!
//! # The invariants, and what each allows in concurrent cases
//!
//! 1. **An acknowledged write survives.** For a write `W` answered 2xx and a read `R` answered
//!    2xx of the same session with `W` preceding `R`: `R` shows `W`'s value in `W`'s field, or
//!    a newer value of that field. Allowed: `R` may show *nothing* (no session) if something
//!    that may have ended the session (a logout of it, or a revocation that may have reached
//!    it: see *endings* below) did not end before `W` started and started before `R` ended; and
//!    `R` may show nothing if it overlapped a login carrying the token it carried (its browser
//!    did not have the new id yet; a login that moved the session and then found it ended at
//!    its new id answers 409, and leaves the old id a forwarding mark all the same). A read that shows the session shows it alive, so
//!    after `W`'s write: it has no excuse. Nor has a read carrying an old token *after* the
//!    login that moved it ended: its browser should hold the new id, so something re-sent the
//!    old one. A session's own "sign out my other devices" is no excuse: it keeps the session.
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
//!    as in 1.
//! 6. **One move per id.** At most one login answers a new token for any one carried token (a
//!    second login at once follows the first and answers none).
//! 7. **A revocation ends every session the user had when it began, and stays done.** After an
//!    acknowledged revocation, every session it must end — for `revoke_owner(u)` each session
//!    bound to `u` before the revocation started; for `revoke_others` each other session bound
//!    to the asker's user before then (when the asker was signed in: it answers whose it was);
//!    for a `revoke(reference)` answered `true`, the session listed under the reference — is
//!    final as after a logout (rule 2): a later read carrying any of its tokens shows nothing,
//!    and a later write with one lands in a new session. A session bound while the revocation
//!    ran may or may not be ended (the revocation and the sign-in were concurrent).
//!
//! *Endings* (the excuses of rules 1 and 5): a logout carrying a token of the session (any
//! answer: a failed one may have ended it); `revoke_owner(u)`, and another session's
//! `revoke_others` of user `u`, for a session with a sign-in of `u` that started before the
//! revocation ended; a `revoke(reference)` of the session (or of an unknown reference of a
//! user the session was signed in as).

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
    /// Bind the session to `user` (the owner field) and `cycle_id()`.
    SignIn { user: u64 },
    /// `destroy()`.
    Logout,
    /// `owner_sessions()`: the event's `reference` is the asking session's own.
    List,
    /// `revoke(reference)` of the event's `reference`; `revoked` is 1 when it ended one.
    Revoke,
    /// `revoke_others()`: `user` is whose session asked, `revoked` how many ended.
    RevokeOthers,
    /// `SessionLayer::revoke_owner(user)`, from outside a request.
    RevokeOwner { user: u64 },
}

impl Kind {
    fn is_login(self) -> bool {
        matches!(self, Kind::Login | Kind::SignIn { .. })
    }
}

/// One request of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) browser: usize,
    pub(crate) tab: usize,
    /// The app instance it went to.
    pub(crate) instance: usize,
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
    /// For a login: whether it moved a stored session (`moved`) rather than start one.
    pub(crate) moved: bool,
    /// For a listing, the asking session's own reference; for `revoke`, the one revoked.
    pub(crate) reference: Option<String>,
    /// For `revoke_others`: whose session asked (`None`: nobody's).
    pub(crate) user: Option<u64>,
    /// For a revocation: how many sessions it says it ended.
    pub(crate) revoked: Option<usize>,
    /// For a refusal: why (the `x-session-error` header), for the report.
    pub(crate) error: Option<String>,
}

impl Event {
    /// A request with nothing but its kind and times filled in (the rest: nothing carried,
    /// set, seen or answered).
    pub(crate) fn new(browser: usize, tab: usize, kind: Kind, start: u64, end: u64) -> Self {
        Self {
            browser,
            tab,
            instance: 0,
            kind,
            start,
            end,
            status: 200,
            sent: None,
            set: None,
            seen: None,
            moved: false,
            reference: None,
            user: None,
            revoked: None,
            error: None,
        }
    }

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
            "b{}t{}@{} {:?} [{}..{}] {} sent={} set={}",
            self.browser,
            self.tab,
            self.instance,
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
        if self.kind.is_login() && self.acknowledged() {
            write!(f, " {}", if self.moved { "moved" } else { "new" })?;
        }
        if let Some(reference) = &self.reference {
            write!(f, " ref={}", reference.chars().take(6).collect::<String>())?;
        }
        if let Some(user) = self.user {
            write!(f, " user={user}")?;
        }
        if let Some(revoked) = self.revoked {
            write!(f, " revoked={revoked}")?;
        }
        if let Some(error) = &self.error {
            write!(f, " ({error})")?;
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
pub(crate) const REVOKED: &str = "7. a revocation ends every session the user had, for good";

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
            if let (true, true, true, Some(sent), Some(new)) = (
                event.kind.is_login(),
                event.acknowledged(),
                event.moved,
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

    /// The session a write (or a sign-in) went into.
    fn written(&self, event: &Event) -> Option<String> {
        event
            .new_token()
            .or(event.sent.as_deref())
            .map(|token| self.root(token))
    }
}

/// Who signed which session in, and what each revocation may and must end.
struct Owners<'h> {
    history: &'h [Event],
    /// Per session: its sign-ins (user, event index).
    sign_ins: HashMap<String, Vec<(u64, usize)>>,
    /// Per reference a listing showed as the asking session's own: that session.
    referenced: HashMap<String, String>,
}

impl<'h> Owners<'h> {
    fn of(history: &'h [Event], sessions: &Sessions) -> Self {
        let mut sign_ins: HashMap<String, Vec<(u64, usize)>> = HashMap::new();
        let mut referenced = HashMap::new();
        for (index, event) in history.iter().enumerate() {
            match event.kind {
                Kind::SignIn { user } => {
                    if let Some(session) = sessions.written(event) {
                        sign_ins.entry(session).or_default().push((user, index));
                    }
                }
                Kind::List if event.acknowledged() => {
                    if let (Some(reference), Some(session)) =
                        (&event.reference, sessions.carried(event))
                    {
                        referenced.insert(reference.clone(), session);
                    }
                }
                _ => {}
            }
        }
        Owners {
            history,
            sign_ins,
            referenced,
        }
    }

    /// Whether `session` was signed in as `user` by a sign-in that started before `time` (it
    /// may have been bound by then).
    fn maybe_bound(&self, session: &str, user: u64, time: u64) -> bool {
        self.sign_ins.get(session).is_some_and(|all| {
            all.iter()
                .any(|&(u, i)| u == user && self.history[i].start < time)
        })
    }

    /// Whether `session` was bound to `user` before `time`: an acknowledged sign-in of `user`
    /// into it ended before then.
    fn bound_before(&self, session: &str, user: u64, time: u64) -> bool {
        self.sign_ins.get(session).is_some_and(|all| {
            all.iter().any(|&(u, i)| {
                let sign_in = &self.history[i];
                u == user && sign_in.acknowledged() && sign_in.end < time
            })
        })
    }

    /// The users `session` was ever signed in as.
    fn users_of(&self, session: &str) -> Vec<u64> {
        self.sign_ins
            .get(session)
            .map(|all| all.iter().map(|&(u, _)| u).collect())
            .unwrap_or_default()
    }

    /// The sessions with a sign-in.
    fn signed_in(&self) -> impl Iterator<Item = &String> {
        self.sign_ins.keys()
    }

    /// Whether the revocation `event` may have ended `session` (`asker`: the session it carried).
    fn may_end(&self, event: &Event, asker: Option<&str>, session: &str) -> bool {
        match event.kind {
            Kind::RevokeOwner { user } => self.maybe_bound(session, user, event.end),
            Kind::RevokeOthers => {
                let Some(asker) = asker.filter(|asker| *asker != session) else {
                    return false;
                };
                self.users_of(asker)
                    .into_iter()
                    .any(|user| self.maybe_bound(session, user, event.end))
            }
            Kind::Revoke => match event
                .reference
                .as_ref()
                .and_then(|r| self.referenced.get(r))
            {
                Some(target) => target == session,
                // An unknown reference: any session of the asker's users.
                None => asker.is_some_and(|asker| {
                    self.users_of(asker)
                        .into_iter()
                        .any(|user| self.maybe_bound(session, user, event.end))
                }),
            },
            _ => false,
        }
    }

    /// The sessions the acknowledged revocation `event` must have ended.
    fn must_end(&self, event: &Event, asker: Option<&str>) -> Vec<String> {
        if !event.acknowledged() {
            return Vec::new();
        }
        match event.kind {
            Kind::RevokeOwner { user } => self
                .signed_in()
                .filter(|session| self.bound_before(session, user, event.start))
                .cloned()
                .collect(),
            Kind::RevokeOthers => {
                let (Some(user), Some(asker)) = (event.user, asker) else {
                    return Vec::new();
                };
                if !self.bound_before(asker, user, event.start) {
                    return Vec::new();
                }
                self.signed_in()
                    .filter(|session| {
                        *session != asker && self.bound_before(session, user, event.start)
                    })
                    .cloned()
                    .collect()
            }
            Kind::Revoke if event.revoked == Some(1) => event
                .reference
                .as_ref()
                .and_then(|reference| self.referenced.get(reference))
                .cloned()
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Every broken promise of `history`.
pub(crate) fn check(history: &[Event]) -> Vec<Violation> {
    let sessions = Sessions::of(history);
    let owners = Owners::of(history, &sessions);
    let mut violations = Vec::new();
    let mut found = |rule, what: String, events: Vec<usize>| {
        violations.push(Violation { rule, what, events });
    };

    // The login that moved each token (rule 6: at most one).
    let mut mover: HashMap<&str, usize> = HashMap::new();
    for (index, event) in history.iter().enumerate() {
        if event.kind.is_login()
            && event.acknowledged()
            && event.new_token().is_some()
            && event.moved
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
    // What may have ended each session: its logouts, and the revocations that may have
    // reached it.
    let mut endings: HashMap<String, Vec<usize>> = HashMap::new();
    let mut logouts: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, event) in history.iter().enumerate() {
        if event.kind == Kind::Logout
            && let Some(session) = sessions.carried(event)
        {
            logouts.entry(session.clone()).or_default().push(index);
            endings.entry(session).or_default().push(index);
        }
    }
    let signed_in: Vec<String> = owners.signed_in().cloned().collect();
    for (index, event) in history.iter().enumerate() {
        if !matches!(
            event.kind,
            Kind::RevokeOwner { .. } | Kind::RevokeOthers | Kind::Revoke
        ) {
            continue;
        }
        let asker = sessions.carried(event);
        for session in &signed_in {
            if owners.may_end(event, asker.as_deref(), session) {
                endings.entry(session.clone()).or_default().push(index);
            }
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

    // Every login, by the token it carried: one may have moved the session (and then failed,
    // when a logout or a revocation ended it at its new id before it answered).
    let mut logins: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, event) in history.iter().enumerate() {
        if event.kind.is_login()
            && let Some(sent) = event.sent.as_deref()
        {
            logins.entry(sent).or_default().push(index);
        }
    }
    // May `read` show nothing although its session held data? (rules 1 and 5)
    let may_see_nothing = |read: &Event, session: &str| {
        let moving = read
            .sent
            .as_deref()
            .and_then(|sent| logins.get(sent))
            .is_some_and(|all| all.iter().any(|&login| read.overlaps(&history[login])));
        let ended = endings
            .get(session)
            .is_some_and(|all| all.iter().any(|&end| history[end].start < read.end));
        moving || ended
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
                // Something overlapping or after the write, started before the read ended,
                // may have ended the session first. (A read that saw the session saw it before
                // that ended it, so after the write: it must show it.)
                None if endings.get(&session).is_some_and(|all| {
                    all.iter()
                        .any(|&e| history[e].end > write.start && history[e].start < read.end)
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

    // Rules 2 and 7: what ended stays ended.
    let mut finals: Vec<(&'static str, usize, String)> = Vec::new();
    for (session, all) in &logouts {
        for &l in all {
            if history[l].acknowledged() {
                finals.push((FINAL, l, session.clone()));
            }
        }
    }
    for (index, event) in history.iter().enumerate() {
        let asker = sessions.carried(event);
        for session in owners.must_end(event, asker.as_deref()) {
            finals.push((REVOKED, index, session));
        }
    }
    for (rule, e, session) in finals {
        let ending = &history[e];
        for (index, event) in history.iter().enumerate() {
            if !ending.precedes(event)
                || sessions.carried(event).as_deref() != Some(session.as_str())
            {
                continue;
            }
            match event.kind {
                Kind::Read if event.acknowledged() && event.seen.is_some() => {
                    found(rule, "a later read saw the session".into(), vec![e, index]);
                }
                Kind::Write { .. } if event.acknowledged() && event.new_token().is_none() => {
                    found(
                        rule,
                        "a later write went into the session".into(),
                        vec![e, index],
                    );
                }
                _ => {}
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
        let browsers: Vec<usize> = violation
            .events
            .iter()
            .map(|&index| history[index].browser)
            .collect();
        let (from, to) = violation
            .events
            .iter()
            .fold((u64::MAX, 0), |(from, to), &index| {
                (from.min(history[index].start), to.max(history[index].end))
            });
        out.push_str("  the browsers' requests meanwhile (and every revocation):\n");
        for (index, event) in history.iter().enumerate() {
            let revocation = matches!(
                event.kind,
                Kind::Revoke | Kind::RevokeOthers | Kind::RevokeOwner { .. }
            );
            if (browsers.contains(&event.browser) || revocation)
                && event.end >= from
                && event.start <= to
            {
                out.push_str(&format!("    #{index} {event}\n"));
            }
        }
    }
    out
}
