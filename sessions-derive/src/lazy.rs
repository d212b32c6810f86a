//! The hooks of a type that loads field by field: its cells filled on load, a whole copy made
//! from them, and a changed field encoded from its cell.

use proc_macro2::TokenStream;
use quote::quote;

use crate::expand::Names;

/// `load_cells`, `snapshot` and `encode_cell`; nothing for a type that always loads whole
/// (the trait's defaults say so).
pub(crate) fn lazy_hooks(names: &Names<'_>) -> TokenStream {
    if !names.lazy {
        return TokenStream::new();
    }
    let Names {
        private,
        name,
        stored,
        ..
    } = names;
    let loads = stored.iter().map(|f| {
        let codec = names.codec(f);
        quote! { #private::check_cell::<Self, _>(reader, &#codec)?, }
    });
    let copies = stored.iter().map(|f| {
        let (member, at, codec) = (f.field.ident, &f.index, names.codec(f));
        quote! { #member: #private::snapshot_cell(&cells.#at, dirty, reader, &#codec)?, }
    });
    let encodes = stored.iter().map(|f| {
        let (index, at, codec) = (f.index.index as usize, &f.index, names.codec(f));
        quote! { #index => #private::encode_cell(&cells.#at, format, &#codec), }
    });
    quote! {
        fn load_cells(reader: &#private::SlotReader<'_>)
            -> ::core::result::Result<::core::option::Option<Self::Cells>, #private::DecodeError> {
            ::core::result::Result::Ok(::core::option::Option::Some((#(#loads)*)))
        }

        fn snapshot(cells: &Self::Cells, dirty: &#private::DirtySet, reader: &#private::SlotReader<'_>)
            -> ::core::result::Result<Self, #private::EncodeError> {
            ::core::result::Result::Ok(Self { #(#copies)* })
        }

        fn encode_cell(cells: &Self::Cells, index: ::core::primitive::usize, format: #private::Format)
            -> ::core::result::Result<#private::Bytes, #private::EncodeError> {
            match index {
                #(#encodes)*
                _ => #private::no_such_field(#name, index),
            }
        }
    }
}
