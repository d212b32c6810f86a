//! Token-level helpers of the expansion: the impl's generics, `Self` outside an impl, spans.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;
use syn::{Ident, parse_quote};

use crate::ast::Input;

/// The struct's generics plus what `Session` needs of each type parameter: `Send + Sync +
/// 'static` always; `Serialize + DeserializeOwned` when a stored field mentions it; `Default`
/// when a `skip` or `default` field mentions it (as serde does).
pub(crate) fn bounded_generics(input: &Input<'_>, private: &TokenStream) -> syn::Generics {
    let mut generics = input.generics.clone();
    let stored_types: Vec<&syn::Type> = input.stored_fields().map(|f| f.ty).collect();
    let default_types: Vec<&syn::Type> = input
        .fields
        .iter()
        .filter(|f| !f.is_stored() || f.attrs.default.is_some())
        .map(|f| f.ty)
        .collect();
    let where_clause = generics.make_where_clause();
    for param in input.generics.type_params() {
        let ident = &param.ident;
        let mut bounds: Vec<syn::TypeParamBound> = vec![
            parse_quote!(::core::marker::Send),
            parse_quote!(::core::marker::Sync),
            parse_quote!('static),
        ];
        if stored_types.iter().any(|ty| mentions(&quote!(#ty), ident)) {
            bounds.push(parse_quote!(#private::Serialize));
            bounds.push(parse_quote!(#private::DeserializeOwned));
        }
        if default_types.iter().any(|ty| mentions(&quote!(#ty), ident)) {
            bounds.push(parse_quote!(::core::default::Default));
        }
        where_clause
            .predicates
            .push(parse_quote!(#ident: #(#bounds)+*));
    }
    generics
}

/// `tokens` with `Self` replaced by `this` (`<this>` before `::`).
pub(crate) fn replace_self(tokens: &TokenStream, this: &TokenStream) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    let mut out = TokenStream::new();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Ident(ident) if ident == "Self" => {
                let path_follows =
                    matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == ':');
                let this = respan(this, ident.span());
                out.extend(if path_follows { quote!(<#this>) } else { this });
            }
            TokenTree::Group(group) => {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), replace_self(&group.stream(), this));
                inner.set_span(group.span());
                out.extend([TokenTree::Group(inner)]);
            }
            other => out.extend([other.clone()]),
        }
    }
    out
}

/// `tokens` with every span set to `span`.
pub(crate) fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(&group.stream(), span));
                inner.set_span(span);
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// Whether a type's tokens mention the identifier `ident`.
fn mentions(tokens: &TokenStream, ident: &Ident) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Ident(i) => i == *ident,
        TokenTree::Group(group) => mentions(&group.stream(), ident),
        _ => false,
    })
}
