//! The model of one `#[derive(Session)]` input, built from syn.

use proc_macro2::Span;
use syn::{Data, DeriveInput, Fields, Ident};

use crate::attr;
use crate::ctxt::Ctxt;

/// A struct with named fields, and its `#[session(..)]` options.
pub(crate) struct Input<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) vis: &'a syn::Visibility,
    pub(crate) generics: &'a syn::Generics,
    pub(crate) attrs: attr::Container,
    pub(crate) fields: Vec<Field<'a>>,
}

/// One field.
pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) vis: &'a syn::Visibility,
    pub(crate) ty: &'a syn::Type,
    pub(crate) attrs: attr::Field,
}

impl Field<'_> {
    /// The name the field is stored under.
    pub(crate) fn stored_name(&self) -> String {
        match &self.attrs.rename {
            Some(rename) => rename.value.clone(),
            None => self.ident.unraw().to_string(),
        }
    }

    /// The span of the stored name (the rename literal, or the field's name).
    pub(crate) fn stored_name_span(&self) -> Span {
        match &self.attrs.rename {
            Some(rename) => rename.span,
            None => self.ident.span(),
        }
    }

    pub(crate) fn is_stored(&self) -> bool {
        self.attrs.skip.is_none()
    }
}

use syn::ext::IdentExt;

impl<'a> Input<'a> {
    /// The model of `input`, whose `#[session(..)]` on the struct reads as `attrs`; `None`
    /// when the input is not a struct with named fields (the error is in `cx`).
    pub(crate) fn from_syn(
        cx: &Ctxt,
        input: &'a DeriveInput,
        attrs: attr::Container,
    ) -> Option<Input<'a>> {
        let ident = &input.ident;
        let named = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => named,
                Fields::Unnamed(_) | Fields::Unit => {
                    let message = if matches!(data.fields, Fields::Unit) {
                        format!(
                            "#[derive(Session)] on a unit struct stores nothing: give it named fields, `struct {ident} {{ visits: u64 }}`"
                        )
                    } else {
                        format!(
                            "#[derive(Session)] needs named fields, each stored under its name: write `struct {ident} {{ items: Vec<Item> }}` instead of a tuple struct"
                        )
                    };
                    cx.error_spanned_by(ident, message);
                    return None;
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    format!(
                        "#[derive(Session)] works on structs with named fields, not enums: keep the enum as a field, `struct {ident}Session {{ state: {ident} }}`, with the enum deriving Serialize and Deserialize"
                    ),
                );
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "#[derive(Session)] works on structs with named fields, not unions: use a struct",
                );
                return None;
            }
        };
        let fields = named
            .named
            .iter()
            .filter_map(|field| {
                Some(Field {
                    ident: field.ident.as_ref()?,
                    vis: &field.vis,
                    ty: &field.ty,
                    attrs: attr::field(cx, &field.attrs),
                })
            })
            .collect();
        Some(Input {
            ident,
            vis: &input.vis,
            generics: &input.generics,
            attrs,
            fields,
        })
    }

    /// The stored type name, `name = ".."` (required: `check` reports a missing one).
    pub(crate) fn type_name(&self) -> String {
        self.attrs
            .name
            .as_ref()
            .map_or_else(String::new, |name| name.value.clone())
    }

    /// The name to suggest where `name` is missing or unusable: the struct's in `snake_case`.
    pub(crate) fn suggested_name(&self) -> String {
        snake_case(&self.ident.unraw().to_string())
    }

    pub(crate) fn version(&self) -> u32 {
        self.attrs.version.as_ref().map_or(1, |v| v.value)
    }

    pub(crate) fn stored_fields(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|f| f.is_stored())
    }
}

/// `ShoppingCart` → `shopping_cart`, `CartV2` → `cart_v2`, `HTTPState` → `http_state`.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None | Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_uppercase() => next.is_some_and(char::is_lowercase),
                Some(_) => false,
            };
            if boundary {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("Cart"), "cart");
        assert_eq!(snake_case("ShoppingCart"), "shopping_cart");
        assert_eq!(snake_case("CartV2"), "cart_v2");
        assert_eq!(snake_case("HTTPState"), "http_state");
        assert_eq!(snake_case("User2Fa"), "user2_fa");
    }
}
