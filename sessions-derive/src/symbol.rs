//! The keys `#[session(..)]` understands.

pub(crate) const SESSION: &str = "session";

pub(crate) const NAME: &str = "name";
pub(crate) const VERSION: &str = "version";
pub(crate) const MIGRATE_FROM: &str = "migrate_from";
pub(crate) const CRATE: &str = "crate";

pub(crate) const RENAME: &str = "rename";
pub(crate) const DEFAULT: &str = "default";
pub(crate) const SKIP: &str = "skip";
pub(crate) const OWNER: &str = "owner";

pub(crate) const CONTAINER_KEYS: &str =
    "`name = \"..\"`, `version = N`, `migrate_from = Type`, `crate = path`";
pub(crate) const FIELD_KEYS: &str = "`rename = \"..\"`, `default`, `skip`, `owner`";

/// What a bare `#[session]` is told to write, on the struct and on a field.
pub(crate) const CONTAINER_EXAMPLE: &str = "`#[session(name = \"cart\", version = 2)]`";
pub(crate) const FIELD_EXAMPLE: &str = "`#[session(skip)]` or `#[session(rename = \"..\")]`";
