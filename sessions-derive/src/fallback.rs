//! A stand-in impl emitted beside the errors of an input that failed, so the user sees the real
//! mistake and not a cascade of "`Cart` is not a session type" (thiserror's `fallback.rs`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, GenericParam, parse_quote};

/// The errors, and for a struct without lifetimes a `Session` impl whose items are never used.
pub(crate) fn expand(
    input: &DeriveInput,
    private: &TokenStream,
    errors: &syn::Error,
) -> TokenStream {
    let errors = errors.to_compile_error();
    let lifetimes = input
        .generics
        .params
        .iter()
        .any(|p| matches!(p, GenericParam::Lifetime(_)));
    if !matches!(input.data, Data::Struct(_)) || lifetimes {
        return errors;
    }
    let ident = &input.ident;
    let mut generics = input.generics.clone();
    for param in generics.type_params_mut() {
        param.bounds.push(parse_quote!(::core::marker::Send));
        param.bounds.push(parse_quote!(::core::marker::Sync));
        param.bounds.push(parse_quote!('static));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        #errors
        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl #impl_generics #private::Session for #ident #ty_generics #where_clause {
            const NAME: &'static ::core::primitive::str = "";
            const VERSION: ::core::primitive::u32 = 1;
            const FIELDS: &'static [&'static ::core::primitive::str] = &[];
            type Previous = #private::NoPrevious;
            type Access = #private::State<Self, ()>;
            type Cells = ();
            fn encode_field(&self, _: ::core::primitive::usize, _: #private::Format)
                -> ::core::result::Result<#private::Bytes, #private::EncodeError> {
                #private::invalid_derive()
            }
            fn from_previous(previous: #private::NoPrevious) -> Self {
                #private::no_previous(previous)
            }
            fn assemble(_: ::core::option::Option<()>, _: &#private::SlotReader<'_>)
                -> ::core::result::Result<Self, #private::DecodeError> {
                #private::invalid_derive()
            }
        }
    }
}
