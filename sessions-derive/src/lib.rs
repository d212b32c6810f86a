//! `#[derive(Session)]` for the `sessions` crate. Use it through `sessions`, which re-exports it:
//! `use sessions::prelude::*;`. The attributes are documented there.
//!
//! The pipeline, one file a stage: `attr` reads `#[session(..)]`, `ast` builds the model,
//! `check` validates it, `expand` writes the impl (with `accessors`, `lazy` and `migration`
//! for its parts, `tokens` for the token-level helpers), and `fallback` writes a stand-in impl
//! beside the errors of an input that failed. Every mistake is collected (`ctxt`) and reported
//! at once, each with a span and a message that says what to write instead.

mod accessors;
mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod fallback;
mod lazy;
mod migration;
mod symbol;
#[cfg(test)]
mod tests;
mod tokens;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `sessions::Session`. See the `sessions` crate docs for the attributes.
#[proc_macro_derive(Session, attributes(session))]
pub fn derive_session(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
