//! Writes the `Session` impl, the accessor type and the migration checks. The generated code
//! only calls into `sessions::__private`; no logic lives here.

use proc_macro2::{TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, GenericParam, Ident, parse_quote};

use crate::ast::{Field, Input};
use crate::attr;
use crate::check;
use crate::ctxt::Ctxt;
use crate::symbol::{CRATE, SESSION};

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
    if let Some(path) = &input.attrs.krate {
        quote!(#path)
    } else {
        quote!(::sessions)
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
        .any(|p| matches!(p, GenericParam::Lifetime(_)))
    {
        return TokenStream::new();
    }
    let ident = &input.ident;
    let krate: syn::Path = input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident(SESSION))
        .find_map(|a| {
            let mut found = None;
            let _ = a.parse_nested_meta(|meta| {
                if meta.path.is_ident(CRATE) {
                    found = attr::crate_value(&meta).ok();
                }
                while !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                    meta.input.parse::<TokenTree>()?;
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
            const NAME: &'static ::core::primitive::str = "";
            const VERSION: ::core::primitive::u32 = 1;
            const FIELDS: &'static [&'static ::core::primitive::str] = &[];
            type Previous = #krate::__private::NoPrevious;
            type Access = #krate::__private::State<Self, ()>;
            type Cells = ();
            const LAZY: ::core::primitive::bool = false;
            fn encode_field(&self, index: ::core::primitive::usize, _: #krate::__private::Format)
                -> ::core::result::Result<#krate::__private::Bytes, #krate::__private::EncodeError> {
                #krate::__private::no_such_field("", index)
            }
            fn cells() {}
            fn check_cells(_: &(), reader: &#krate::__private::SlotReader<'_>)
                -> ::core::result::Result<(), #krate::__private::DecodeError> {
                #krate::__private::invalid_derive(reader)
            }
            fn assemble(_: (), reader: &#krate::__private::SlotReader<'_>)
                -> ::core::result::Result<Self, #krate::__private::DecodeError> {
                #krate::__private::invalid_derive(reader)
            }
            fn snapshot(_: &(), _: &#krate::__private::DirtySet, _: &#krate::__private::SlotReader<'_>)
                -> ::core::result::Result<Self, #krate::__private::EncodeError> {
                #krate::__private::never_lazy("")
            }
            fn encode_cell(_: &(), _: ::core::primitive::usize, _: #krate::__private::Format)
                -> ::core::result::Result<#krate::__private::Bytes, #krate::__private::EncodeError> {
                #krate::__private::never_lazy("")
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
    let unraw = syn::ext::IdentExt::unraw(ident);
    let access = format_ident!("__SessionAccess{}", unraw);
    let cells = format_ident!("__SessionCells{}", unraw);

    let name = input.type_name();
    let version = input.version();
    let stored: Vec<&Field<'_>> = input.stored_fields().collect();
    let stored_names: Vec<String> = stored.iter().map(|f| f.stored_name()).collect();
    let lazy = input.fields.iter().all(Field::is_stored);

    let impl_generics_owned = bounded_generics(input);
    let (impl_generics, ty_generics, where_clause) = impl_generics_owned.split_for_impl();
    let def_generics = input.generics;
    let def_where = &input.generics.where_clause;
    let this = quote!(#ident #ty_generics);
    let cells_ty = quote!(<#cells #ty_generics>);
    // Outside the `Session` impl, `Self` in a field's type is not the struct.
    let outside = |ty: &syn::Type| replace_self(&quote!(#ty), &this);
    let cell_types: Vec<TokenStream> = stored.iter().map(|f| outside(f.ty)).collect();
    let cell_index: Vec<syn::Index> = (0..stored.len()).map(syn::Index::from).collect();
    let decoders: Vec<Ident> = stored.iter().map(|f| hook("__decode_", f.ident)).collect();
    let encoders: Vec<Ident> = stored.iter().map(|f| hook("__encode_", f.ident)).collect();
    let members: Vec<&Ident> = stored.iter().map(|f| f.ident).collect();

    // The only places that need the field's serde impls (and so report a missing one, once).
    let field_hooks = stored.iter().enumerate().map(|(index, field)| {
        let ty = &cell_types[index];
        let span = field.ty.span();
        let stored_name = &stored_names[index];
        let (decode, encode) = (&decoders[index], &encoders[index]);
        let read = if field.attrs.default.is_some() {
            quote_spanned! {span=> #private::field_or_default::<#ty>(reader, #stored_name) }
        } else {
            quote_spanned! {span=> #private::field::<#ty>(reader, #stored_name) }
        };
        // `::<#ty>` puts "`Item: Serialize` is not satisfied" on the field's whole type.
        let write =
            quote_spanned! {span=> #private::encode::<#ty>(format, #name, #stored_name, value) };
        quote! {
            #[inline]
            fn #encode(format: #private::Format, value: &#ty)
                -> ::core::result::Result<#private::Bytes, #private::EncodeError> {
                #write
            }
            #[inline]
            fn #decode(reader: &#private::SlotReader<'_>)
                -> ::core::result::Result<#ty, #private::DecodeError> {
                #read
            }
        }
    });

    let encode_arms = (0..stored.len()).map(|index| {
        let (member, encode) = (members[index], &encoders[index]);
        quote! { #index => #cells_ty::#encode(format, &self.#member), }
    });
    let encode_cell_arms = (0..stored.len()).map(|index| {
        let (at, encode, stored_name) = (&cell_index[index], &encoders[index], &stored_names[index]);
        quote! { #index => #private::encode_cell(&cells.#at, format, #name, #stored_name, #cells_ty::#encode), }
    });

    let assemble_fields = input.fields.iter().map(|field| {
        let member = field.ident;
        match stored.iter().position(|f| f.ident == member) {
            Some(index) => {
                let (at, decode) = (&cell_index[index], &decoders[index]);
                quote! { #member: #private::take_cell(cells.#at, reader, #cells_ty::#decode)?, }
            }
            None => {
                let ty = field.ty;
                quote_spanned! {ty.span()=> #member: #private::skipped::<#ty>(), }
            }
        }
    });

    // Types with `skip` fields always load whole: their lazy hooks are never called.
    let lazy_hooks = if lazy {
        let checks = (0..stored.len()).map(|index| {
            let (at, decode, stored_name) = (&cell_index[index], &decoders[index], &stored_names[index]);
            quote! { #private::check_cell::<Self, _>(&cells.#at, reader, #stored_name, #cells_ty::#decode)?; }
        });
        let snapshot_fields = (0..stored.len()).map(|index| {
            let (member, at, stored_name) =
                (members[index], &cell_index[index], &stored_names[index]);
            let (decode, encode) = (&decoders[index], &encoders[index]);
            quote! {
                #member: #private::snapshot_cell(&cells.#at, dirty.contains(#index), reader,
                    #stored_name, #cells_ty::#encode, #cells_ty::#decode)?,
            }
        });
        quote! {
            fn check_cells(cells: &Self::Cells, reader: &#private::SlotReader<'_>)
                -> ::core::result::Result<(), #private::DecodeError> {
                #(#checks)*
                ::core::result::Result::Ok(())
            }
            fn snapshot(cells: &Self::Cells, dirty: &#private::DirtySet, reader: &#private::SlotReader<'_>)
                -> ::core::result::Result<Self, #private::EncodeError> {
                ::core::result::Result::Ok(Self { #(#snapshot_fields)* })
            }
            fn encode_cell(cells: &Self::Cells, index: ::core::primitive::usize, format: #private::Format)
                -> ::core::result::Result<#private::Bytes, #private::EncodeError> {
                match index {
                    #(#encode_cell_arms)*
                    _ => #private::no_such_field(#name, index),
                }
            }
        }
    } else {
        quote! {
            fn check_cells(_: &Self::Cells, reader: &#private::SlotReader<'_>)
                -> ::core::result::Result<(), #private::DecodeError> {
                #private::invalid_derive(reader)
            }
            fn snapshot(_: &Self::Cells, _: &#private::DirtySet, _: &#private::SlotReader<'_>)
                -> ::core::result::Result<Self, #private::EncodeError> {
                #private::never_lazy(#name)
            }
            fn encode_cell(_: &Self::Cells, _: ::core::primitive::usize, _: #private::Format)
                -> ::core::result::Result<#private::Bytes, #private::EncodeError> {
                #private::never_lazy(#name)
            }
        }
    };

    let accessors = accessors(input, &private, &stored, &cells_ty, &decoders);
    let owner = input
        .fields
        .iter()
        .find(|field| field.attrs.owner.is_some() && field.is_stored())
        .map(|field| {
            let member = field.ident;
            let span = field.ty.span();
            // `::<..>` on the field's type: a type that cannot be an owner is reported there.
            let ty = outside(field.ty);
            let render = quote_spanned! {span=> #private::render_owner::<#ty>(&self.#member) };
            quote! {
                const HAS_OWNER: ::core::primitive::bool = true;
                fn owner(&self) -> ::core::option::Option<::std::string::String> {
                    #render
                }
            }
        });
    let Migration {
        previous,
        from_previous,
        link_check,
    } = migration(input, &private, &access);

    let doc_access = format!("Typed accessors of [`{ident}`], reached through `Typed<{ident}>`.");
    let doc_cells = format!("The fields of a [`{ident}`] loaded one by one.");
    quote! {
        #[doc = #doc_access]
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #access #def_generics (#private::State<#this, #cells #ty_generics>) #def_where;

        #[doc = #doc_cells]
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #cells #def_generics (
            #(#private::Cell<#cell_types>,)*
            ::core::marker::PhantomData<fn() -> #this>,
        ) #def_where;

        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl #impl_generics #cells #ty_generics #where_clause {
            #(#field_hooks)*
        }

        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl #impl_generics #private::Session for #this #where_clause {
            const NAME: &'static ::core::primitive::str = #name;
            const VERSION: ::core::primitive::u32 = #version;
            const FIELDS: &'static [&'static ::core::primitive::str] = &[#(#stored_names),*];
            type Previous = #previous;
            type Access = #access #ty_generics;
            type Cells = #cells #ty_generics;
            const LAZY: ::core::primitive::bool = #lazy;

            fn encode_field(&self, index: ::core::primitive::usize, format: #private::Format)
                -> ::core::result::Result<#private::Bytes, #private::EncodeError> {
                match index {
                    #(#encode_arms)*
                    _ => #private::no_such_field(#name, index),
                }
            }

            fn cells() -> Self::Cells {
                #cells(#(#private::Cell::<#cell_types>::new(),)* ::core::marker::PhantomData)
            }

            fn assemble(cells: Self::Cells, reader: &#private::SlotReader<'_>)
                -> ::core::result::Result<Self, #private::DecodeError> {
                ::core::result::Result::Ok(Self { #(#assemble_fields)* })
            }

            #lazy_hooks

            #owner

            fn from_previous(previous: #previous) -> Self {
                #from_previous
            }
        }

        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl #impl_generics #private::Access<#this> for #access #ty_generics #where_clause {
            #[inline]
            fn from_state(state: #private::State<#this, #cells #ty_generics>) -> Self { Self(state) }
            #[inline]
            fn state(&self) -> &#private::State<#this, #cells #ty_generics> { &self.0 }
            #[inline]
            fn state_mut(&mut self) -> &mut #private::State<#this, #cells #ty_generics> { &mut self.0 }
            #[inline]
            fn into_state(self) -> #private::State<#this, #cells #ty_generics> { self.0 }
        }

        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl #impl_generics #access #ty_generics #where_clause {
            #(#accessors)*
        }

        #link_check
    }
}

/// The name of a per-field hook: `__decode_items`.
fn hook(prefix: &str, member: &Ident) -> Ident {
    format_ident!("{}{}", prefix, syn::ext::IdentExt::unraw(member))
}

/// `items()`, `items_mut()` and `set_items(..)` for each field.
fn accessors(
    input: &Input<'_>,
    private: &TokenStream,
    stored: &[&Field<'_>],
    cells_ty: &TokenStream,
    decoders: &[Ident],
) -> Vec<TokenStream> {
    let ident = input.ident;
    let (_, ty_generics, _) = input.generics.split_for_impl();
    let this = quote!(#ident #ty_generics);
    input
        .fields
        .iter()
        .map(|field| {
            // The accessors are as visible as the field: a private field has private accessors.
            let vis = field.vis;
            let member = field.ident;
            // The accessors live on the accessor type, where `Self` is not the struct.
            let field_ty = field.ty;
            let ty = replace_self(&quote!(#field_ty), &this);
            let base = syn::ext::IdentExt::unraw(member);
            let get = member.clone();
            let get_mut = Ident::new(&format!("{base}_mut"), member.span());
            let set = Ident::new(&format!("set_{base}"), member.span());
            let (read, write, assign, what) = match stored.iter().position(|f| f.ident == member) {
                Some(index) => {
                    let at = syn::Index::from(index);
                    let decode = &decoders[index];
                    (
                        quote!(#private::get(&self.0, |v| &v.#member, |c| &c.#at, #cells_ty::#decode)),
                        quote!(#private::get_mut(&mut self.0, #index, |v| &mut v.#member, |c| &mut c.#at, #cells_ty::#decode)),
                        quote!(#private::set(&mut self.0, #index, |v| &mut v.#member, |c| &mut c.#at, value)),
                        format!("marks `{base}` dirty"),
                    )
                }
                None => (
                    quote!(&#private::value(&self.0).#member),
                    quote!(&mut #private::unmarked(&mut self.0).#member),
                    quote!(#private::unmarked(&mut self.0).#member = value),
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
                    #read
                }
                #[doc = #doc_mut]
                #[inline]
                #vis fn #get_mut(&mut self) -> &mut #ty {
                    #write
                }
                #[doc = #doc_set]
                #[inline]
                #vis fn #set(&mut self, value: #ty) {
                    #assign;
                }
            }
        })
        .collect()
}

/// What `migrate_from` adds: the `Previous` type, the body of `from_previous`, and the check of
/// the link (same name, lower version).
struct Migration {
    previous: TokenStream,
    from_previous: TokenStream,
    link_check: TokenStream,
}

fn migration(input: &Input<'_>, private: &TokenStream, access: &Ident) -> Migration {
    let Some(from) = &input.attrs.migrate_from else {
        return Migration {
            previous: quote!(#private::NoPrevious),
            from_previous: quote!(#private::no_previous(previous)),
            link_check: TokenStream::new(),
        };
    };
    let ident = input.ident;
    let impl_generics_owned = bounded_generics(input);
    let (impl_generics, ty_generics, where_clause) = impl_generics_owned.split_for_impl();
    let this = quote!(#ident #ty_generics);
    let span = from.span();
    // Every token of the check carries the span of the `migrate_from` type, so a failed check
    // points there and not at `#[derive(Session)]`. The check reaches the older type through a
    // generic `T::Previous`, a `Session` by the trait's bound, so a `migrate_from` type that is
    // no session type is reported once, at `type Previous`, not twice.
    let private_at = respan(private, span);
    let check = quote_spanned! {span=>
        {
            const fn check_migrate_from<T: #private_at::Session>() {
                #private_at::check_migration::<T, <T as #private_at::Session>::Previous>()
            }
            check_migrate_from::<#this>()
        }
    };
    let previous = quote_spanned!(span=> #from);
    let migrate = quote_spanned! {span=> #private::migrate::<Self, #from>(previous) };
    if input.generics.params.is_empty() {
        // Checked once, in a `const _` that `cargo check` evaluates too.
        Migration {
            previous,
            from_previous: migrate,
            link_check: quote_spanned! {span=> const _: () = #check; },
        }
    } else {
        // A generic link can only be checked per instance: in an associated const, evaluated
        // for each instance whose `from_previous` is used.
        Migration {
            previous,
            from_previous: quote_spanned! {span=>
                let () = <#access #ty_generics>::__MIGRATION_CHECK;
                #migrate
            },
            link_check: quote! {
                #[automatically_derived]
                impl #impl_generics #access #ty_generics #where_clause {
                    const __MIGRATION_CHECK: () = #check;
                }
            },
        }
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

/// `tokens` with `Self` replaced by `this` (`<this>` before `::`).
fn replace_self(tokens: &TokenStream, this: &TokenStream) -> TokenStream {
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
fn respan(tokens: &TokenStream, span: proc_macro2::Span) -> TokenStream {
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

#[cfg(test)]
mod tests {
    use proc_macro2::{Spacing, TokenStream, TokenTree};
    use syn::parse_quote;

    use super::derive;

    /// Keywords after which `::` starts a path from the root.
    const BEFORE_ROOT: &[&str] = &[
        "as", "const", "dyn", "for", "impl", "in", "let", "mut", "pub", "return", "static", "where",
    ];

    /// The first segment of every path that starts with `::`, and every segment that follows
    /// `crate_name` (which must always be followed by `::`).
    fn roots(
        tokens: TokenStream,
        crate_name: &str,
        roots_out: &mut Vec<String>,
        after: &mut Vec<String>,
    ) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, tree) in trees.iter().enumerate() {
            match tree {
                TokenTree::Group(group) => roots(group.stream(), crate_name, roots_out, after),
                TokenTree::Ident(ident) if ident == crate_name => {
                    match (trees.get(i + 1), trees.get(i + 2), trees.get(i + 3)) {
                        (
                            Some(TokenTree::Punct(a)),
                            Some(TokenTree::Punct(b)),
                            Some(TokenTree::Ident(next)),
                        ) if a.as_char() == ':' && b.as_char() == ':' => {
                            after.push(next.to_string());
                        }
                        _ => panic!("`{crate_name}` not followed by a path segment"),
                    }
                }
                TokenTree::Punct(colon)
                    if colon.as_char() == ':' && colon.spacing() == Spacing::Joint =>
                {
                    let leading = match i.checked_sub(1).map(|p| &trees[p]) {
                        Some(TokenTree::Ident(prev)) => {
                            BEFORE_ROOT.contains(&prev.to_string().as_str())
                        }
                        Some(TokenTree::Punct(prev)) => match prev.as_char() {
                            '>' => {
                                matches!(i.checked_sub(2).map(|p| &trees[p]), Some(TokenTree::Punct(p)) if p.as_char() == '-')
                            }
                            ':' => false,
                            _ => true,
                        },
                        None | Some(TokenTree::Group(_) | TokenTree::Literal(_)) => true,
                    };
                    if leading && let Some(TokenTree::Ident(root)) = trees.get(i + 2) {
                        roots_out.push(root.to_string());
                    }
                }
                _ => {}
            }
        }
    }

    fn inputs(attr: &TokenStream) -> Vec<syn::DeriveInput> {
        vec![
            parse_quote! {
                #[derive(Session)]
                #[session(#attr name = "cart", version = 2, migrate_from = CartV1)]
                pub struct Cart {
                    items: Vec<String>,
                    #[session(rename = "c", default)]
                    coupon: Option<String>,
                    #[session(skip)]
                    cache: u8,
                }
            },
            parse_quote! {
                #[derive(Session)]
                #[session(name = "pair")]
                #[session(#attr version = 3, migrate_from = PairV2<A, B>)]
                pub struct Pair<A: Clone, B> where B: Default {
                    a: A,
                    #[session(skip)]
                    b: B,
                }
            },
            // Has errors: the stand-in impl must use the custom path too.
            parse_quote! {
                #[derive(Session)]
                #[session(name = "broken")]
                #[session(#attr version = 0)]
                struct Broken { value: u8 }
            },
        ]
    }

    #[test]
    fn expansion_names_only_core_std_and_the_private_module() {
        for (attr, crate_name, allowed) in [
            (
                TokenStream::new(),
                "sessions",
                &["core", "std", "sessions"][..],
            ),
            (
                parse_quote!(crate = my_sessions,),
                "my_sessions",
                &["core", "std"][..],
            ),
            (
                parse_quote!(crate = ::my_sessions,),
                "my_sessions",
                &["core", "std", "my_sessions"][..],
            ),
            (
                parse_quote!(crate = "my_sessions",),
                "my_sessions",
                &["core", "std"][..],
            ),
        ] {
            for input in inputs(&attr) {
                let expanded = derive(&input);
                let text = expanded.to_string();
                let (mut found_roots, mut after) = (Vec::new(), Vec::new());
                roots(expanded, crate_name, &mut found_roots, &mut after);
                for root in &found_roots {
                    assert!(allowed.contains(&root.as_str()), "`::{root}` in {text}");
                }
                assert!(!after.is_empty(), "no `{crate_name}::` in {text}");
                assert!(
                    after.iter().all(|next| next == "__private"),
                    "{after:?} in {text}"
                );
                if crate_name != "sessions" {
                    assert!(
                        !text
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .any(|w| w == "sessions"),
                        "`sessions` named beside `crate = ..`: {text}"
                    );
                }
            }
        }
    }
}
