//! Reads `#[session(..)]` on the struct and on its fields.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprLit, Lit, LitInt, LitStr};

use crate::ctxt::Ctxt;
use crate::symbol::{
    CONTAINER_EXAMPLE, CONTAINER_KEYS, CRATE, DEFAULT, FIELD_EXAMPLE, FIELD_KEYS, MIGRATE_FROM,
    NAME, OWNER, RENAME, SESSION, SKIP, VERSION,
};

/// A value given in an attribute, with the span of its key for error messages.
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// `#[session(..)]` on the struct.
#[derive(Default)]
pub(crate) struct Container {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) version: Option<Spanned<u32>>,
    pub(crate) migrate_from: Option<syn::Type>,
    pub(crate) krate: Option<syn::Path>,
}

/// `#[session(..)]` on a field.
#[derive(Default)]
pub(crate) struct Field {
    pub(crate) rename: Option<Spanned<String>>,
    pub(crate) default: Option<Span>,
    pub(crate) skip: Option<Span>,
    pub(crate) owner: Option<Span>,
}

fn set<T>(cx: &Ctxt, meta: &ParseNestedMeta<'_>, slot: &mut Option<T>, value: T, key: &str) {
    if slot.is_some() {
        cx.error_spanned_by(
            &meta.path,
            format!("`{key}` is given twice in #[session(..)]: keep one"),
        );
    } else {
        *slot = Some(value);
    }
}

pub(crate) fn container(cx: &Ctxt, attrs: &[Attribute]) -> Container {
    let mut out = Container::default();
    each_key(cx, attrs, CONTAINER_EXAMPLE, |meta| {
        container_key(cx, &mut out, meta)
    });
    out
}

/// Calls `key` for each key of every `#[session(..)]` in `attrs`, recording its error and
/// going on with the next key; `example` is what a bare `#[session]` is told to write.
fn each_key(
    cx: &Ctxt,
    attrs: &[Attribute],
    example: &str,
    mut key: impl FnMut(&ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|a| a.path().is_ident(SESSION)) {
        if let syn::Meta::Path(_) = attr.meta {
            cx.error_spanned_by(
                attr,
                format!(
                    "`#[session]` needs its options in parentheses: write e.g. {example}, or remove it"
                ),
            );
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            if let Err(err) = key(&meta) {
                cx.syn_error(err);
                skip_rest(&meta)?;
            }
            Ok(())
        });
        if let Err(err) = result {
            cx.syn_error(err);
        }
    }
}

/// Reads one key of the struct's `#[session(..)]`; an error leaves the rest of the key unread.
fn container_key(cx: &Ctxt, out: &mut Container, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.path.is_ident(NAME) {
        let lit: LitStr = string_value(meta, NAME, "name = \"cart\"")?;
        set(
            cx,
            meta,
            &mut out.name,
            Spanned {
                value: lit.value(),
                span: lit.span(),
            },
            NAME,
        );
    } else if meta.path.is_ident(VERSION) {
        let lit = version_value(meta)?;
        let span = lit.span();
        match lit.base10_parse::<u32>() {
            Ok(value) => set(cx, meta, &mut out.version, Spanned { value, span }, VERSION),
            Err(_) => cx.error_spanned_by(&lit, "`version` must fit in a u32: write `version = 2`"),
        }
    } else if meta.path.is_ident(MIGRATE_FROM) {
        let ty: syn::Type = meta.value()?.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "`migrate_from` takes the older type: write `migrate_from = CartV1`",
            )
        })?;
        set(cx, meta, &mut out.migrate_from, ty, MIGRATE_FROM);
    } else if meta.path.is_ident(CRATE) {
        let path = crate_value(meta)?;
        set(cx, meta, &mut out.krate, path, CRATE);
    } else {
        let key = key_name(&meta.path);
        let message = match key.as_str() {
            RENAME | DEFAULT | SKIP | OWNER => {
                let value = if key == RENAME { " = \"..\"" } else { "" };
                format!(
                    "`{key}` goes on a field, not on the struct: put `#[session({key}{value})]` above the field; the struct takes {CONTAINER_KEYS}"
                )
            }
            _ => format!("unknown #[session] option `{key}`; the struct takes {CONTAINER_KEYS}"),
        };
        return Err(meta.error(message));
    }
    Ok(())
}

pub(crate) fn field(cx: &Ctxt, attrs: &[Attribute]) -> Field {
    let mut out = Field::default();
    each_key(cx, attrs, FIELD_EXAMPLE, |meta| {
        field_key(cx, &mut out, meta)
    });
    out
}

/// Reads one key of a field's `#[session(..)]`; an error leaves the rest of the key unread.
fn field_key(cx: &Ctxt, out: &mut Field, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.path.is_ident(RENAME) {
        let lit = string_value(meta, RENAME, "rename = \"stored_name\"")?;
        set(
            cx,
            meta,
            &mut out.rename,
            Spanned {
                value: lit.value(),
                span: lit.span(),
            },
            RENAME,
        );
    } else if meta.path.is_ident(DEFAULT) {
        no_value(meta, DEFAULT)?;
        set(cx, meta, &mut out.default, meta.path.span_of(), DEFAULT);
    } else if meta.path.is_ident(SKIP) {
        no_value(meta, SKIP)?;
        set(cx, meta, &mut out.skip, meta.path.span_of(), SKIP);
    } else if meta.path.is_ident(OWNER) {
        no_value(meta, OWNER)?;
        set(cx, meta, &mut out.owner, meta.path.span_of(), OWNER);
    } else {
        let key = key_name(&meta.path);
        let message = match key.as_str() {
            NAME | VERSION | MIGRATE_FROM | CRATE => format!(
                "`{key}` goes on the struct, not on a field: put it in the `#[session(..)]` above `struct`; a field takes {FIELD_KEYS}"
            ),
            _ => format!("unknown #[session] field option `{key}`; a field takes {FIELD_KEYS}"),
        };
        return Err(meta.error(message));
    }
    Ok(())
}

/// A key as written (`crate` included, which `Path::get_ident` reads as a keyword).
fn key_name(path: &syn::Path) -> String {
    quote::ToTokens::to_token_stream(path)
        .to_string()
        .replace(' ', "")
}

/// Skips what is left of a key that could not be read (`= value` or `(..)`), up to the next `,`,
/// so the keys after it are still read and their mistakes reported too.
fn skip_rest(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    let input = meta.input;
    while !input.is_empty() && !input.peek(syn::Token![,]) {
        input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

trait SpanOf {
    fn span_of(&self) -> Span;
}

impl SpanOf for syn::Path {
    fn span_of(&self) -> Span {
        syn::spanned::Spanned::span(self)
    }
}

fn string_value(meta: &ParseNestedMeta<'_>, key: &str, example: &str) -> syn::Result<LitStr> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` takes a string: write `{example}`"),
        )),
    }
}

fn version_value(meta: &ParseNestedMeta<'_>) -> syn::Result<LitInt> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => Ok(lit),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Err(syn::Error::new_spanned(
            &lit,
            format!(
                "`version` takes a number, not a string: write `version = {}`",
                lit.value()
            ),
        )),
        other => Err(syn::Error::new_spanned(
            other,
            "`version` takes a whole number: write `version = 2`",
        )),
    }
}

pub(crate) fn crate_value(meta: &ParseNestedMeta<'_>) -> syn::Result<syn::Path> {
    let input = meta.value()?;
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return lit.parse();
    }
    input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "`crate` takes a path: write `crate = ::my_sessions`",
        )
    })
}

fn no_value(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) || meta.input.peek(syn::token::Paren) {
        return Err(meta.error(format!("`{key}` takes no value: write `#[session({key})]`")));
    }
    Ok(())
}
