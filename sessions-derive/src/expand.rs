//! Writes the `Session` impl, the accessor type and the migration checks. The generated code
//! only calls into `sessions::__private`; no logic lives here.

use proc_macro2::{TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, GenericParam, Ident, parse_quote};

use crate::ast::{Field, Input};
use crate::check;
use crate::ctxt::Ctxt;

pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let model = Input::from_syn(&cx, input);
    if let Some(model) = &model {
        check::check(&cx, model);
    }
    match cx.check() {
        Ok(()) => match model {
            Some(model) => expand(&model),
            None => TokenStream::new(),
        },
        Err(err) => {
            let errors = err.to_compile_error();
            let fallback = fallback(input);
            quote! { #errors #fallback }
        }
    }
}

/// The path to the runtime crate.
fn krate(input: &Input<'_>) -> TokenStream {
    match &input.attrs.krate {
        Some(path) => quote!(#path),
        None => quote!(::sessions),
    }
}

/// A stand-in impl emitted beside the errors of a struct that failed the checks, so the user
/// sees the real mistake and not a cascade of "`Cart` is not a session type".
fn fallback(input: &DeriveInput) -> TokenStream {
    let syn::Data::Struct(_) = &input.data else {
        return TokenStream::new();
    };
    if input
        .generics
        .params
        .iter()
        .any(|p| !matches!(p, GenericParam::Type(_)))
    {
        return TokenStream::new();
    }
    let ident = &input.ident;
    let krate: syn::Path = input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("session"))
        .find_map(|a| {
            let mut found = None;
            let _ = a.parse_nested_meta(|meta| {
                if meta.path.is_ident("crate") {
                    found = meta.value()?.parse::<syn::Path>().ok();
                } else if meta.input.peek(syn::Token![=]) {
                    let _: syn::Expr = meta.value()?.parse()?;
                }
                Ok(())
            });
            found
        })
        .unwrap_or_else(|| parse_quote!(::sessions));
    let mut generics = input.generics.clone();
    for param in generics.type_params_mut() {
        param.bounds.push(parse_quote!(::core::marker::Send));
        param.bounds.push(parse_quote!(::core::marker::Sync));
        param.bounds.push(parse_quote!('static));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl #impl_generics #krate::__private::Session for #ident #ty_generics #where_clause {
            const NAME: &'static str = "";
            const VERSION: u32 = 1;
            const FIELDS: &'static [&'static str] = &[];
            type Previous = #krate::__private::NoPrevious;
            type Access = #krate::__private::State<Self>;
            fn encode_field(&self, index: usize, _: #krate::__private::Format)
                -> ::core::result::Result<#krate::__private::Bytes, #krate::__private::EncodeError> {
                #krate::__private::no_such_field("", index)
            }
            fn decode(reader: &#krate::__private::SlotReader<'_>)
                -> ::core::result::Result<Self, #krate::__private::DecodeError> {
                #krate::__private::invalid_derive(reader)
            }
            fn from_previous(previous: #krate::__private::NoPrevious) -> Self {
                #krate::__private::no_previous(previous)
            }
        }
    }
}

fn expand(input: &Input<'_>) -> TokenStream {
    let krate = krate(input);
    let private = quote!(#krate::__private);
    let ident = input.ident;
    let vis = input.vis;
    let access = format_ident!("__SessionAccess{}", syn::ext::IdentExt::unraw(ident));

    let name = input.type_name();
    let version = input.version();
    let stored: Vec<&Field<'_>> = input.stored_fields().collect();
    let stored_names: Vec<String> = stored.iter().map(|f| f.stored_name()).collect();

    let impl_generics_owned = bounded_generics(input);
    let (impl_generics, ty_generics, where_clause) = impl_generics_owned.split_for_impl();
    let def_generics = input.generics;
    let def_where = &input.generics.where_clause;
    let this = quote!(#ident #ty_generics);

    let encode_arms = stored.iter().enumerate().map(|(index, field)| {
        let member = field.ident;
        let stored_name = &stored_names[index];
        quote_spanned! {field.ty.span()=>
            #index => #private::encode(format, #name, #stored_name, &self.#member),
        }
    });

    let decode_fields = input.fields.iter().map(|field| {
        let member = field.ident;
        let ty = field.ty;
        if !field.is_stored() {
            quote_spanned! {ty.span()=> #member: #private::skipped::<#ty>(), }
        } else if field.attrs.default.is_some() {
            let stored_name = field.stored_name();
            quote_spanned! {ty.span()=> #member: #private::field_or_default::<#ty>(reader, #stored_name)?, }
        } else {
            let stored_name = field.stored_name();
            quote_spanned! {ty.span()=> #member: #private::field::<#ty>(reader, #stored_name)?, }
        }
    });

    let accessors = input.fields.iter().map(|field| {
        let member = field.ident;
        let ty = field.ty;
        let base = syn::ext::IdentExt::unraw(member);
        let get = member.clone();
        let get_mut = Ident::new(&format!("{base}_mut"), member.span());
        let set = Ident::new(&format!("set_{base}"), member.span());
        let (mutate, what) = match stored.iter().position(|f| f.ident == member) {
            Some(index) => (
                quote!(#private::touch(&mut self.0, #index)),
                format!("marks `{base}` dirty"),
            ),
            None => (
                quote!(#private::unmarked(&mut self.0)),
                format!("`{base}` is `skip`: never stored, never dirty"),
            ),
        };
        let doc_get = format!("The `{base}` field.");
        let doc_mut = format!("The `{base}` field, mutably; {what}.");
        let doc_set = format!("Sets the `{base}` field; {what}.");
        quote! {
            #[doc = #doc_get]
            #[inline]
            #[must_use]
            #vis fn #get(&self) -> &#ty {
                &#private::value(&self.0).#member
            }
            #[doc = #doc_mut]
            #[inline]
            #vis fn #get_mut(&mut self) -> &mut #ty {
                &mut #mutate.#member
            }
            #[doc = #doc_set]
            #[inline]
            #vis fn #set(&mut self, value: #ty) {
                #mutate.#member = value;
            }
        }
    });

    let (previous, from_previous, link_check) = match &input.attrs.migrate_from {
        Some(from) => {
            let span = from.span();
            let check = quote_spanned! {span=>
                #private::check_migration::<#this, #from>()
            };
            let const_check = if input.generics.params.is_empty() {
                quote! { const _: () = #check; }
            } else {
                TokenStream::new()
            };
            (
                quote_spanned!(span=> #from),
                quote_spanned! {span=>
                    let () = <#access #ty_generics>::__MIGRATION_CHECK;
                    #private::migrate::<Self, #from>(previous)
                },
                quote! {
                    #[automatically_derived]
                    impl #impl_generics #access #ty_generics #where_clause {
                        const __MIGRATION_CHECK: () = #check;
                    }
                    #const_check
                },
            )
        }
        None => (
            quote!(#private::NoPrevious),
            quote!(#private::no_previous(previous)),
            TokenStream::new(),
        ),
    };

    let doc_access = format!("Typed accessors of [`{ident}`], reached through `Typed<{ident}>`.");
    quote! {
        #[doc = #doc_access]
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #access #def_generics (#private::State<#this>) #def_where;

        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl #impl_generics #private::Session for #this #where_clause {
            const NAME: &'static str = #name;
            const VERSION: u32 = #version;
            const FIELDS: &'static [&'static str] = &[#(#stored_names),*];
            type Previous = #previous;
            type Access = #access #ty_generics;

            fn encode_field(&self, index: usize, format: #private::Format)
                -> ::core::result::Result<#private::Bytes, #private::EncodeError> {
                match index {
                    #(#encode_arms)*
                    _ => #private::no_such_field(#name, index),
                }
            }

            fn decode(reader: &#private::SlotReader<'_>)
                -> ::core::result::Result<Self, #private::DecodeError> {
                ::core::result::Result::Ok(Self { #(#decode_fields)* })
            }

            fn from_previous(previous: #previous) -> Self {
                #from_previous
            }
        }

        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl #impl_generics #private::Access<#this> for #access #ty_generics #where_clause {
            #[inline]
            fn from_state(state: #private::State<#this>) -> Self { Self(state) }
            #[inline]
            fn state(&self) -> &#private::State<#this> { &self.0 }
            #[inline]
            fn state_mut(&mut self) -> &mut #private::State<#this> { &mut self.0 }
            #[inline]
            fn into_state(self) -> #private::State<#this> { self.0 }
        }

        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl #impl_generics #access #ty_generics #where_clause {
            #(#accessors)*
        }

        #link_check
    }
}

/// The struct's generics plus what `Session` needs of each type parameter: `Send + Sync +
/// 'static` always; `Serialize + DeserializeOwned` when a stored field mentions it; `Default`
/// when a `skip` or `default` field mentions it (as serde does).
fn bounded_generics(input: &Input<'_>) -> syn::Generics {
    let krate = krate(input);
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
            bounds.push(parse_quote!(#krate::__private::Serialize));
            bounds.push(parse_quote!(#krate::__private::DeserializeOwned));
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

/// Whether a type's tokens mention the identifier `ident`.
fn mentions(tokens: &TokenStream, ident: &Ident) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Ident(i) => i == *ident,
        TokenTree::Group(group) => mentions(&group.stream(), ident),
        _ => false,
    })
}
