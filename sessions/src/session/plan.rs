//! [`plan`]: what to do with a request's session, decided in one place, from plain facts.
//!
//! It is a pure function: no store, no HTTP, no clock of its own. The request's session gathers
//! the [`Facts`] and runs the [`Plan`] (`apply.rs`); the unit tests below go through the
//! decisions one by one.
//!
//! The rules it follows (the promise behind each is in `SessionStore`'s docs and SECURITY.md):
//!
//! * a request that changed nothing writes nothing, unless its expiry refresh is due;
//! * nothing is written for a response that is a server error (5xx), but a logout;
//! * a session is created only when something is in it (or the handler asked for its id);
//! * a write that carried a stale id (one a login moved away from) is refused with a 409, rather
//!   than starting a new session whose cookie would replace the login's;
//! * the deadline moves only when the refresh is due, the policy changed, or the id changes, and
//!   the cookie is sent only then: a response never re-sends an unchanged id.

use std::time::SystemTime;

use http::StatusCode;

use super::failure::Failure;
use super::state::Action;
use crate::expiry::{Deadline, Expiry};

/// When the plan is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// After the handler, for a response of this status.
    Response { status: StatusCode },
    /// Inside the handler: `SessionHandle::save()`.
    Handler,
}

/// What the load found, as the plan needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Nothing was loaded.
    NotLoaded,
    /// The store failed; what that means for a write that needed the session.
    Failed(Failure),
    /// No live session; `moved`: the carried id is one a `cycle_id()` moved away from.
    Absent { moved: bool },
    /// A live session (stored, or a sealed cookie that opened).
    Live {
        deadline: Deadline,
        needs_reseal: bool,
    },
}

/// Everything the plan looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts {
    /// The session lives in the cookie (else in a server-side store).
    pub(crate) cookie_store: bool,
    /// The request carried a session (an id, or a sealed cookie).
    pub(crate) carried: bool,
    /// There is a stored session this request may end: the request carried an id, or an
    /// earlier write of this request stored one.
    pub(crate) has_home: bool,
    pub(crate) seen: Seen,
    pub(crate) action: Action,
    /// Changes wait to be saved.
    pub(crate) changes: bool,
    /// The handler asked for the id of a session not stored yet.
    pub(crate) must_store: bool,
    /// A change could not be encoded.
    pub(crate) encode_error: bool,
    /// The session as the handler left it holds nothing (only looked at to create or seal).
    pub(crate) view_empty: bool,
    /// The session's expiry policy.
    pub(crate) expiry: Expiry,
    /// The handler set the policy in this request.
    pub(crate) expiry_set: bool,
    /// An earlier write of this request decided what the client must be told.
    pub(crate) announced: bool,
    pub(crate) now: SystemTime,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Nothing.
    Nothing,
    /// Load the session first, then plan again.
    Load,
    /// No store work: only tell the client what an earlier write of this request decided.
    Announce,
    /// File a new session under the issued id.
    Create { deadline: Deadline },
    /// Save the changes (none: a refresh) to the stored session; `deadline`: move it there.
    Save { deadline: Option<Deadline> },
    /// Move the stored session to the issued id, with the changes.
    Cycle { deadline: Deadline },
    /// End the session: delete the stored one, wherever a `cycle_id()` moved it, and clear
    /// the cookie.
    Destroy,
    /// End the stored session (as `Destroy`) and file what the handler put in the session
    /// after destroying it as a new one, under a new id.
    Replace { deadline: Deadline },
    /// Seal the session into the cookie.
    Seal { deadline: Deadline },
    /// No store work: the client forgets the dead session it sent.
    Forget,
    /// Answer with this error instead: what the handler did cannot be stored.
    Fail(Failure),
}

/// What to do with the session at `moment`.
pub(crate) fn plan(facts: &Facts, moment: Moment) -> Plan {
    if facts.encode_error {
        return Plan::Fail(Failure::NOT_ENCODED);
    }
    let server_error = match moment {
        Moment::Response { status } => status.is_server_error(),
        Moment::Handler => false,
    };
    if moment == Moment::Handler && (facts.cookie_store || facts.action != Action::Keep) {
        // The cookie, a cycle and a destroy are written with the response.
        return Plan::Nothing;
    }
    if facts.action == Action::Destroy {
        // What the handler put in the session after destroying it (a "you are logged out"
        // flash) goes into a new one, under a new id.
        let replaced = facts.changes && !facts.view_empty && !server_error;
        return match (replaced, facts.cookie_store) {
            (true, true) => Plan::Seal {
                deadline: facts.expiry.deadline(facts.now, facts.now),
            },
            (true, false) => Plan::Replace {
                deadline: facts.expiry.deadline(facts.now, facts.now),
            },
            (false, _) if facts.has_home => Plan::Destroy,
            (false, _) => Plan::Nothing,
        };
    }
    let writes = facts.changes || facts.action == Action::Cycle || facts.must_store;
    let idle = if facts.announced {
        Plan::Announce
    } else {
        Plan::Nothing
    };
    match facts.seen {
        Seen::NotLoaded if writes => Plan::Load,
        Seen::NotLoaded => idle,
        Seen::Failed(failure) if writes && !server_error => Plan::Fail(failure),
        Seen::Failed(_) => idle,
        _ if server_error => Plan::Nothing,
        Seen::Absent { moved } => {
            if !writes {
                if facts.carried && !moved && !facts.announced {
                    // A dead id (logged out, expired, revoked, unreadable): the client forgets
                    // it. Not a stale one a login moved away from: the client may hold the new
                    // id under the same name already.
                    Plan::Forget
                } else {
                    idle
                }
            } else if moved {
                Plan::Fail(Failure::MOVED)
            } else if facts.view_empty && !facts.must_store {
                // Nothing to keep (every slot removed): no session, no cookie.
                if facts.cookie_store && facts.has_home {
                    Plan::Destroy
                } else {
                    idle
                }
            } else if facts.cookie_store {
                Plan::Seal {
                    deadline: facts.expiry.deadline(facts.now, facts.now),
                }
            } else {
                Plan::Create {
                    deadline: facts.expiry.deadline(facts.now, facts.now),
                }
            }
        }
        Seen::Live {
            deadline,
            needs_reseal,
        } => {
            let moved_on = || facts.expiry.deadline(deadline.created_at, facts.now);
            let refresh = facts.expiry_set || facts.expiry.refresh_due(&deadline, facts.now);
            if facts.cookie_store {
                let changed = facts.changes || facts.action == Action::Cycle;
                return if changed && facts.view_empty {
                    Plan::Destroy
                } else if changed || refresh || needs_reseal {
                    Plan::Seal {
                        deadline: if changed || refresh {
                            moved_on()
                        } else {
                            deadline
                        },
                    }
                } else {
                    idle
                };
            }
            if facts.action == Action::Cycle {
                Plan::Cycle {
                    deadline: moved_on(),
                }
            } else if facts.changes || refresh {
                Plan::Save {
                    deadline: refresh.then(moved_on),
                }
            } else {
                idle
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn now() -> SystemTime {
        UNIX_EPOCH + 100 * HOUR
    }

    /// A stored session created an hour ago, saved a minute ago (24 h idle: no refresh due).
    fn live() -> Seen {
        Seen::Live {
            deadline: Deadline {
                created_at: now() - HOUR,
                expires_at: now() + 24 * HOUR - Duration::from_secs(60),
            },
            needs_reseal: false,
        }
    }

    /// A read-only request of a stored session.
    fn facts() -> Facts {
        Facts {
            cookie_store: false,
            carried: true,
            has_home: true,
            seen: live(),
            action: Action::Keep,
            changes: false,
            must_store: false,
            encode_error: false,
            view_empty: false,
            expiry: Expiry::idle(24 * HOUR),
            expiry_set: false,
            announced: false,
            now: now(),
        }
    }

    fn ok() -> Moment {
        Moment::Response {
            status: StatusCode::OK,
        }
    }

    fn server_error() -> Moment {
        Moment::Response {
            status: StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    #[test]
    fn a_read_only_request_does_nothing() {
        assert_eq!(plan(&facts(), ok()), Plan::Nothing);
        let untouched = Facts {
            seen: Seen::NotLoaded,
            ..facts()
        };
        assert_eq!(plan(&untouched, ok()), Plan::Nothing);
    }

    #[test]
    fn a_change_saves_without_moving_the_deadline() {
        let changed = Facts {
            changes: true,
            ..facts()
        };
        assert_eq!(plan(&changed, ok()), Plan::Save { deadline: None });
    }

    #[test]
    fn a_due_refresh_moves_the_deadline_with_or_without_changes() {
        let old = Seen::Live {
            deadline: Deadline {
                created_at: now() - HOUR,
                expires_at: now() + 12 * HOUR,
            },
            needs_reseal: false,
        };
        let moved_on = Some(Deadline {
            created_at: now() - HOUR,
            expires_at: now() + 24 * HOUR,
        });
        let read = Facts {
            seen: old,
            ..facts()
        };
        assert_eq!(plan(&read, ok()), Plan::Save { deadline: moved_on });
        let write = Facts {
            changes: true,
            ..read
        };
        assert_eq!(plan(&write, ok()), Plan::Save { deadline: moved_on });
    }

    #[test]
    fn a_new_policy_moves_the_deadline() {
        let set = Facts {
            expiry: Expiry::idle(2 * HOUR),
            expiry_set: true,
            changes: true,
            ..facts()
        };
        let Plan::Save {
            deadline: Some(deadline),
        } = plan(&set, ok())
        else {
            panic!("{:?}", plan(&set, ok()))
        };
        assert_eq!(deadline.expires_at, now() + 2 * HOUR);
    }

    #[test]
    fn changes_to_an_unloaded_session_load_it_first() {
        for facts in [
            Facts {
                seen: Seen::NotLoaded,
                changes: true,
                ..facts()
            },
            Facts {
                seen: Seen::NotLoaded,
                action: Action::Cycle,
                ..facts()
            },
        ] {
            assert_eq!(plan(&facts, ok()), Plan::Load);
        }
    }

    #[test]
    fn a_server_error_writes_nothing_but_a_logout() {
        for facts in [
            Facts {
                changes: true,
                ..facts()
            },
            Facts {
                action: Action::Cycle,
                ..facts()
            },
            Facts {
                seen: Seen::Absent { moved: false },
                changes: true,
                ..facts()
            },
        ] {
            assert_eq!(plan(&facts, server_error()), Plan::Nothing);
        }
        let logout = Facts {
            action: Action::Destroy,
            ..facts()
        };
        assert_eq!(plan(&logout, server_error()), Plan::Destroy);
    }

    #[test]
    fn a_failed_load_fails_a_write_but_not_a_read() {
        let failed = Facts {
            seen: Seen::Failed(Failure::UNAVAILABLE),
            ..facts()
        };
        assert_eq!(plan(&failed, ok()), Plan::Nothing);
        let write = Facts {
            changes: true,
            ..failed
        };
        assert_eq!(plan(&write, ok()), Plan::Fail(Failure::UNAVAILABLE));
    }

    #[test]
    fn a_new_session_is_created_only_with_something_in_it() {
        let new = Facts {
            has_home: false,
            seen: Seen::Absent { moved: false },
            changes: true,
            ..facts()
        };
        let created = Plan::Create {
            deadline: Deadline {
                created_at: now(),
                expires_at: now() + 24 * HOUR,
            },
        };
        assert_eq!(plan(&new, ok()), created);
        let empty = Facts {
            view_empty: true,
            ..new
        };
        assert_eq!(plan(&empty, ok()), Plan::Nothing);
        // The handler asked for the id: the session is stored, empty or not.
        let asked = Facts {
            must_store: true,
            changes: false,
            ..empty
        };
        assert_eq!(plan(&asked, ok()), created);
        // A login on a new session files it under the id it issued.
        let login = Facts {
            action: Action::Cycle,
            changes: false,
            ..new
        };
        assert_eq!(plan(&login, ok()), created);
    }

    #[test]
    fn a_write_with_an_id_a_login_moved_away_from_is_refused() {
        let stale = Facts {
            seen: Seen::Absent { moved: true },
            changes: true,
            ..facts()
        };
        assert_eq!(plan(&stale, ok()), Plan::Fail(Failure::MOVED));
        let read = Facts {
            changes: false,
            ..stale
        };
        assert_eq!(plan(&read, ok()), Plan::Nothing);
    }

    #[test]
    fn a_dead_id_is_forgotten_by_a_read() {
        let dead = Facts {
            seen: Seen::Absent { moved: false },
            ..facts()
        };
        assert_eq!(plan(&dead, ok()), Plan::Forget);
        let none = Facts {
            carried: false,
            has_home: false,
            ..dead
        };
        assert_eq!(plan(&none, ok()), Plan::Nothing);
    }

    #[test]
    fn cycle_moves_a_stored_session_and_destroy_wins_over_everything() {
        let login = Facts {
            action: Action::Cycle,
            changes: true,
            ..facts()
        };
        assert!(matches!(plan(&login, ok()), Plan::Cycle { .. }));
        let logout = Facts {
            action: Action::Destroy,
            ..facts()
        };
        assert_eq!(plan(&logout, ok()), Plan::Destroy);
        // Changes made before `destroy()` are gone; an empty session after it is no session.
        let emptied = Facts {
            changes: true,
            view_empty: true,
            ..logout
        };
        assert_eq!(plan(&emptied, ok()), Plan::Destroy);
        let nothing_to_end = Facts {
            has_home: false,
            changes: false,
            ..logout
        };
        assert_eq!(plan(&nothing_to_end, ok()), Plan::Nothing);
        // A flash put in after the logout: a new session replaces the ended one.
        let flash = Facts {
            changes: true,
            view_empty: false,
            ..logout
        };
        assert!(matches!(plan(&flash, ok()), Plan::Replace { .. }));
        assert_eq!(plan(&flash, server_error()), Plan::Destroy);
    }

    #[test]
    fn a_change_that_cannot_be_encoded_fails_the_request() {
        let broken = Facts {
            encode_error: true,
            changes: true,
            ..facts()
        };
        assert_eq!(plan(&broken, ok()), Plan::Fail(Failure::NOT_ENCODED));
        assert_eq!(
            plan(&broken, Moment::Handler),
            Plan::Fail(Failure::NOT_ENCODED)
        );
    }

    #[test]
    fn an_earlier_write_is_announced_when_nothing_else_is_done() {
        let saved = Facts {
            announced: true,
            ..facts()
        };
        assert_eq!(plan(&saved, ok()), Plan::Announce);
        assert_eq!(plan(&saved, server_error()), Plan::Nothing);
    }

    #[test]
    fn inside_the_handler_only_saves_and_creates_run() {
        let write = Facts {
            changes: true,
            ..facts()
        };
        assert_eq!(plan(&write, Moment::Handler), Plan::Save { deadline: None });
        for deferred in [
            Facts {
                action: Action::Cycle,
                ..write
            },
            Facts {
                action: Action::Destroy,
                ..write
            },
            Facts {
                cookie_store: true,
                ..write
            },
        ] {
            assert_eq!(plan(&deferred, Moment::Handler), Plan::Nothing);
        }
        let new = Facts {
            seen: Seen::Absent { moved: false },
            ..write
        };
        assert!(matches!(plan(&new, Moment::Handler), Plan::Create { .. }));
    }

    #[test]
    fn the_cookie_store_seals_what_changed_and_reseals_old_keys() {
        let cookie = Facts {
            cookie_store: true,
            ..facts()
        };
        assert_eq!(plan(&cookie, ok()), Plan::Nothing);
        let changed = Facts {
            changes: true,
            ..cookie
        };
        assert!(matches!(plan(&changed, ok()), Plan::Seal { .. }));
        let old_key = Facts {
            seen: Seen::Live {
                deadline: Deadline {
                    created_at: now() - HOUR,
                    expires_at: now() + 20 * HOUR,
                },
                needs_reseal: true,
            },
            ..cookie
        };
        // Resealed with its deadline unchanged.
        assert_eq!(
            plan(&old_key, ok()),
            Plan::Seal {
                deadline: Deadline {
                    created_at: now() - HOUR,
                    expires_at: now() + 20 * HOUR
                }
            }
        );
        let new_empty = Facts {
            has_home: false,
            seen: Seen::Absent { moved: false },
            changes: true,
            view_empty: true,
            ..cookie
        };
        assert_eq!(plan(&new_empty, ok()), Plan::Nothing);
        // Every slot removed: the cookie goes.
        let emptied = Facts {
            changes: true,
            view_empty: true,
            ..cookie
        };
        assert_eq!(plan(&emptied, ok()), Plan::Destroy);
    }
}
