//! The accessor type `Typed<T>` dereferences to: the fields' codecs, and `items()`,
//! `items_mut()` and `set_items(..)` for each field.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

use crate::expand::Names;
use crate::tokens::replace_self;

pub(crate) fn accessors(names: &Names<'_>) -> TokenStream {
    let Names {
        input,
        private,
        this,
        access,
        access_ident,
        name,
        stored,
        ..
    } = names;
    let vis = input.vis;
    let (impl_generics, ty_generics, where_clause) = names.generics.split_for_impl();
    let params = &names.generics.params;
    let state = quote!(#private::StateOf<#this>);

    // The only places that need the field's serde impls (and so report a missing one, once).
    let codecs = stored.iter().map(|f| {
        let (index, codec, ty, stored_name) = (f.index.index as usize, &f.codec, &f.ty, &f.name);
        let make = if f.field.attrs.default.is_some() {
            quote_spanned!(f.field.ty.span()=> codec_or_default)
        } else {
            quote_spanned!(f.field.ty.span()=> codec)
        };
        // `::<#ty>` puts "`Item: Serialize` is not satisfied" on the field's whole type.
        let value = quote_spanned! {f.field.ty.span()=>
            #private::#make::<#ty>(#index, #name, #stored_name)
        };
        quote! { const #codec: #private::Codec<#ty> = #value; }
    });
    let methods = input.fields.iter().map(|field| {
        // The accessors are as visible as the field: a private field has private accessors.
        let vis = field.vis;
        let member = field.ident;
        // The accessors live on the accessor type, where `Self` is not the struct.
        let field_ty = field.ty;
        let ty = replace_self(&quote!(#field_ty), this);
        let base = syn::ext::IdentExt::unraw(member);
        let get = member.clone();
        let get_mut = Ident::new(&format!("{base}_mut"), member.span());
        let set = Ident::new(&format!("set_{base}"), member.span());
        let (read, write, assign, what) = match stored.iter().find(|f| f.field.ident == member) {
            Some(f) => {
                let (at, codec) = (&f.index, &f.codec);
                (
                    quote!(#private::get(&self.0, |v| &v.#member, |c| &c.#at, &Self::#codec)),
                    quote!(#private::get_mut(&mut self.0, |v| &mut v.#member, |c| &mut c.#at, &Self::#codec)),
                    quote!(#private::set(&mut self.0, |v| &mut v.#member, |c| &mut c.#at, &Self::#codec, value)),
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
    });

    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #access_ident <#params> (#state) #where_clause;

        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl #impl_generics #private::Access<#this> for #access #where_clause {
            #[inline]
            fn from_state(state: #state) -> Self { Self(state) }
            #[inline]
            fn state(&self) -> &#state { &self.0 }
            #[inline]
            fn state_mut(&mut self) -> &mut #state { &mut self.0 }
            #[inline]
            fn into_state(self) -> #state { self.0 }
        }

        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic)]
        impl #impl_generics #access_ident #ty_generics #where_clause {
            #(#codecs)*
            #(#methods)*
        }
    }
}
