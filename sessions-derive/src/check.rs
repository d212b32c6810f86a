//! Validates the model: every rule a user can break, each with a message that says what to write.

use std::collections::HashMap;

use syn::GenericParam;

use crate::ast::Input;
use crate::ctxt::Ctxt;

/// Methods `Typed<T>` has itself: an accessor with one of these names would be shadowed.
/// `ui-tests/tests/typed_methods.rs` keeps this list equal to `Typed`'s real methods.
const TYPED_METHODS: &[&str] = &[
    "value",
    "into_inner",
    "replace",
    "dirty_fields",
    "is_dirty",
    "is_new",
    "migrated_from",
    "changes",
    "new",
    "deref",
    "deref_mut",
];

pub(crate) fn check(cx: &Ctxt, input: &Input<'_>) {
    check_generics(cx, input);
    check_name(cx, input);
    check_version(cx, input);
    check_fields(cx, input);
}

fn check_generics(cx: &Ctxt, input: &Input<'_>) {
    for param in &input.generics.params {
        if let GenericParam::Lifetime(lifetime) = param {
            cx.error_spanned_by(
                lifetime,
                format!(
                    "a session type cannot borrow: sessions outlive the request, so their data is owned. Remove `{}` and use owned types (`String` for `&str`, `Vec<T>` for `&[T]`)",
                    lifetime.lifetime
                ),
            );
        }
    }
}

fn check_name(cx: &Ctxt, input: &Input<'_>) {
    let Some(name) = &input.attrs.name else {
        cx.error_spanned_by(
            input.ident,
            format!(
                "a session type needs its stored name: add #[session(name = \"{}\")]. The name ties stored sessions to this type, so renaming the struct later does not move its data; keep it when you rename",
                input.suggested_name()
            ),
        );
        return;
    };
    let value = &name.value;
    let error = |message: String| cx.syn_error(syn::Error::new(name.span, message));
    if value.is_empty() {
        error(format!(
            "`name` cannot be empty: write e.g. `name = \"{}\"`",
            input.suggested_name()
        ));
    } else if value.starts_with("__") {
        error(format!(
            "names starting with `__` are reserved for `sessions`: write `name = \"{}\"`",
            suggest(value, "cart")
        ));
    } else if let Some(bad) = value.chars().find(|c| !is_name_char(*c)) {
        error(format!(
            "`name` may hold ASCII letters, digits, `_`, `-`, `.` and `:`, not {bad:?}: write e.g. `name = \"{}\"`",
            suggest(value, "cart")
        ));
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

/// A name like `value` that is allowed: other characters become `_`, leading and trailing
/// underscores go (`"__shopping cart!"` → `"shopping_cart"`), `fallback` if nothing is left.
fn suggest(value: &str, fallback: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let c = if is_name_char(c) { c } else { '_' };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('_');
    if out.is_empty() {
        fallback.to_owned()
    } else {
        out.to_owned()
    }
}

fn check_version(cx: &Ctxt, input: &Input<'_>) {
    let Some(version) = &input.attrs.version else {
        if let Some(from) = &input.attrs.migrate_from {
            cx.error_spanned_by(
                from,
                "a type with `migrate_from` is a newer version: give it `version = 2` (or more), above the type it migrates from",
            );
        }
        return;
    };
    if version.value == 0 {
        cx.syn_error(syn::Error::new(
            version.span,
            "versions start at 1: write `version = 1`",
        ));
    } else if version.value == 1
        && let Some(from) = &input.attrs.migrate_from
    {
        cx.error_spanned_by(
            from,
            "version 1 is the first version and cannot migrate from anything: raise this type to `version = 2` (or more), above the type it migrates from",
        );
    }
}

fn check_fields(cx: &Ctxt, input: &Input<'_>) {
    let mut owner: Option<&syn::Ident> = None;
    let mut stored: HashMap<String, &syn::Ident> = HashMap::new();
    let mut accessors: HashMap<String, &syn::Ident> = HashMap::new();
    for field in &input.fields {
        let attrs = &field.attrs;
        let base = syn::ext::IdentExt::unraw(field.ident).to_string();
        if base.starts_with("__") {
            cx.error_spanned_by(
                field.ident,
                format!(
                    "field names starting with `__` are reserved for the items the derive adds beside the accessors: rename the field, e.g. `{}`",
                    suggest(&base, "field").to_lowercase()
                ),
            );
            continue;
        }
        if let (Some(_), Some(default)) = (attrs.skip, attrs.default) {
            cx.syn_error(syn::Error::new(
                default,
                "`skip` already gives the field its `Default` on load: remove `default`",
            ));
        }
        if let Some(span) = attrs.owner {
            if attrs.skip.is_some() {
                cx.syn_error(syn::Error::new(
                    span,
                    "a `skip` field is never stored, so it cannot say whose session it is: remove `skip`, or put `owner` on a stored field",
                ));
            }
            match owner {
                Some(first) => cx.syn_error(syn::Error::new(
                    span,
                    format!(
                        "field `{first}` is the owner already; a session has one owner: remove `owner` from one of them"
                    ),
                )),
                None => owner = Some(field.ident),
            }
        }
        if let (Some(_), Some(rename)) = (attrs.skip, &attrs.rename) {
            cx.syn_error(syn::Error::new(
                rename.span,
                "a `skip` field is never stored, so `rename` has nothing to rename: remove `rename`",
            ));
        }
        if field.is_stored() {
            let name = field.stored_name();
            let error =
                |message: String| cx.syn_error(syn::Error::new(field.stored_name_span(), message));
            if name.is_empty() {
                error(format!(
                    "a stored name cannot be empty: remove `rename` to store the field as `{0}`, or write e.g. `rename = \"{0}\"`",
                    syn::ext::IdentExt::unraw(field.ident)
                ));
            } else if name.starts_with("__") {
                error(format!(
                    "stored names starting with `__` are reserved (`__type__`, `__v__`): write e.g. #[session(rename = \"{}\")]",
                    suggest(&name, &syn::ext::IdentExt::unraw(field.ident).to_string())
                ));
            } else if let Some(first) = stored.get(&name) {
                error(format!(
                    "field `{}` is stored under `{name}`, which field `{first}` already uses: give one of them another #[session(rename = \"..\")]",
                    field.ident
                ));
            } else {
                stored.insert(name, field.ident);
            }
        }
        for accessor in [base.clone(), format!("{base}_mut"), format!("set_{base}")] {
            if TYPED_METHODS.contains(&accessor.as_str()) {
                cx.error_spanned_by(
                    field.ident,
                    format!(
                        "field `{base}` would get an accessor `{accessor}()`, which `Typed` already has: rename the field in Rust and keep the stored name with #[session(rename = \"{base}\")]"
                    ),
                );
            } else if let Some(other) = accessors.get(&accessor) {
                cx.error_spanned_by(
                    field.ident,
                    format!(
                        "fields `{other}` and `{}` would both get an accessor `{accessor}()`: rename one of them in Rust (#[session(rename = \"..\")] keeps its stored name)",
                        field.ident
                    ),
                );
            } else {
                accessors.insert(accessor, field.ident);
            }
        }
    }
}
