//! Writes the `Session` impl; `accessors`, `lazy` and `migration` write its parts. The generated
//! code only calls into `sessions::__private`; no logic lives here.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident};

use crate::accessors::accessors;
use crate::ast::{Field, Input};
use crate::attr;
use crate::check;
use crate::ctxt::Ctxt;
use crate::fallback;
use crate::lazy::lazy_hooks;
use crate::migration::{Migration, migration};
use crate::tokens::{bounded_generics, replace_self};

/// The impl, or the errors and a stand-in impl.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let attrs = attr::container(&cx, &input.attrs);
    let private = private_path(attrs.krate.as_ref());
    let model = Input::from_syn(&cx, input, attrs);
    if let Some(model) = &model {
        check::check(&cx, model);
    }
    match (cx.check(), model) {
        (Ok(()), Some(model)) => expand(&Names::new(&model, private)),
        (Ok(()), None) => TokenStream::new(),
        (Err(errors), _) => fallback::expand(input, &private, &errors),
    }
}

/// The path to the runtime crate's `__private` module: `::sessions::__private`, or under the
/// path given with `#[session(crate = ..)]`.
fn private_path(krate: Option<&syn::Path>) -> TokenStream {
    if let Some(path) = krate {
        quote!(#path::__private)
    } else {
        quote!(::sessions::__private)
    }
}

/// What every part of the expansion names, worked out once.
pub(crate) struct Names<'a> {
    pub(crate) input: &'a Input<'a>,
    /// `::sessions::__private`.
    pub(crate) private: TokenStream,
    /// The struct with its type parameters: `Pair<A, B>`.
    pub(crate) this: TokenStream,
    /// The accessor type with its type parameters: `__SessionAccessPair<A, B>`.
    pub(crate) access: TokenStream,
    pub(crate) access_ident: Ident,
    /// The stored type name.
    pub(crate) name: String,
    /// The struct's generics bounded as `Session` needs.
    pub(crate) generics: syn::Generics,
    pub(crate) stored: Vec<Stored<'a>>,
    /// Whether a stored value may load field by field: not with `skip` fields (their values
    /// have no cell), nor without stored fields (nothing to load).
    pub(crate) lazy: bool,
}

/// A stored field.
pub(crate) struct Stored<'a> {
    pub(crate) field: &'a Field<'a>,
    /// Its index in `FIELDS` and in the cells tuple.
    pub(crate) index: syn::Index,
    pub(crate) name: String,
    /// Its type, with `Self` spelled as the struct (for use outside the `Session` impl).
    pub(crate) ty: TokenStream,
    /// The name of its `Codec` const on the accessor type: `__FIELD_0`.
    pub(crate) codec: Ident,
}

impl<'a> Names<'a> {
    fn new(input: &'a Input<'a>, private: TokenStream) -> Self {
        let ident = input.ident;
        let (_, ty_generics, _) = input.generics.split_for_impl();
        let this = quote!(#ident #ty_generics);
        let access_ident = format_ident!("__SessionAccess{}", syn::ext::IdentExt::unraw(ident));
        let stored: Vec<Stored<'a>> = input
            .stored_fields()
            .enumerate()
            .map(|(index, field)| {
                let ty = field.ty;
                Stored {
                    field,
                    index: syn::Index::from(index),
                    name: field.stored_name(),
                    ty: replace_self(&quote!(#ty), &this),
                    codec: format_ident!("__FIELD_{}", index),
                }
            })
            .collect();
        Names {
            lazy: !stored.is_empty() && input.fields.iter().all(Field::is_stored),
            generics: bounded_generics(input, &private),
            access: quote!(#access_ident #ty_generics),
            access_ident,
            name: input.type_name(),
            stored,
            private,
            this,
            input,
        }
    }

    /// The path of a stored field's codec from outside the accessor type.
    pub(crate) fn codec(&self, field: &Stored<'_>) -> TokenStream {
        let (access, codec) = (&self.access, &field.codec);
        quote!(<#access>::#codec)
    }
}

fn expand(names: &Names<'_>) -> TokenStream {
    let Names {
        input,
        private,
        this,
        access,
        name,
        stored,
        ..
    } = names;
    let (impl_generics, _, where_clause) = names.generics.split_for_impl();
    let version = input.version();
    let stored_names = stored.iter().map(|f| &f.name);
    let cell_types = stored.iter().map(|f| &f.ty);
    let cells = quote!((#(#private::Cell<#cell_types>,)*));

    let encode_arms = stored.iter().map(|f| {
        let (index, member, codec) = (f.index.index as usize, f.field.ident, names.codec(f));
        quote! { #index => #codec.encode(format, &self.#member), }
    });
    let assemble_fields = input.fields.iter().map(|field| {
        let member = field.ident;
        if let Some(f) = stored.iter().find(|f| f.field.ident == member) {
            let (at, codec) = (&f.index, names.codec(f));
            quote! { #member: #private::take_cell(&mut cells, |c| &mut c.#at, reader, &#codec)?, }
        } else {
            let ty = field.ty;
            quote_spanned! {ty.span()=> #member: #private::skipped::<#ty>(), }
        }
    });
    let cells_param = if stored.is_empty() {
        quote!(_)
    } else {
        quote!(mut cells)
    };
    let lazy_hooks = lazy_hooks(names);
    let owner = owner(names);
    let Migration {
        previous,
        from_previous,
        link_check,
    } = migration(names);
    let accessors = accessors(names);

    quote! {
        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl #impl_generics #private::Session for #this #where_clause {
            const NAME: &'static ::core::primitive::str = #name;
            const VERSION: ::core::primitive::u32 = #version;
            const FIELDS: &'static [&'static ::core::primitive::str] = &[#(#stored_names),*];
            type Previous = #previous;
            type Access = #access;
            type Cells = #cells;

            fn encode_field(&self, index: ::core::primitive::usize, format: #private::Format)
                -> ::core::result::Result<#private::Bytes, #private::EncodeError> {
                match index {
                    #(#encode_arms)*
                    _ => #private::no_such_field(#name, index),
                }
            }

            fn from_previous(previous: #previous) -> Self {
                #from_previous
            }

            fn assemble(#cells_param: ::core::option::Option<Self::Cells>, reader: &#private::SlotReader<'_>)
                -> ::core::result::Result<Self, #private::DecodeError> {
                ::core::result::Result::Ok(Self { #(#assemble_fields)* })
            }

            #lazy_hooks
            #owner
        }

        #accessors
        #link_check
    }
}

/// `OWNER`, for the `#[session(owner)]` field.
fn owner(names: &Names<'_>) -> Option<TokenStream> {
    let private = &names.private;
    let owner = names
        .stored
        .iter()
        .find(|f| f.field.attrs.owner.is_some())?;
    let (member, ty) = (owner.field.ident, &owner.ty);
    // `::<..>` on the field's type: a type that cannot be an owner is reported there.
    let render =
        quote_spanned! {owner.field.ty.span()=> #private::render_owner::<#ty>(&value.#member) };
    Some(quote! {
        const OWNER: ::core::option::Option<fn(&Self) -> ::core::option::Option<::std::string::String>> =
            ::core::option::Option::Some(|value| #render);
    })
}
