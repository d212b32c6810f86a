//! What `#[derive(Session)]` expands to calls into: a facade over `schema`, where the code
//! lives. Not public API: nothing here is covered by semver, and only generated code should
//! name it.

pub use bytes::Bytes;
pub use serde::Serialize;
pub use serde::de::DeserializeOwned;

pub use crate::codec::Format;
pub use crate::dirty::DirtySet;
pub use crate::errors::{DecodeError, EncodeError};
pub use crate::record::Slot;
pub use crate::schema::fields::*;
pub use crate::schema::lazy::{
    Access, Cell, Origin, State, StateOf, check_cell, encode_cell, get, get_mut, set,
    snapshot_cell, take_cell, unmarked, value,
};
pub use crate::schema::{NoPrevious, Session};
