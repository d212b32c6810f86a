//! What `migrate_from` adds: the `Previous` type, the body of `from_previous`, and the check of
//! the link (same name, lower version).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::expand::Names;
use crate::tokens::respan;

pub(crate) struct Migration {
    pub(crate) previous: TokenStream,
    pub(crate) from_previous: TokenStream,
    pub(crate) link_check: TokenStream,
}

pub(crate) fn migration(names: &Names<'_>) -> Migration {
    let private = &names.private;
    let Some(from) = &names.input.attrs.migrate_from else {
        return Migration {
            previous: quote!(#private::NoPrevious),
            from_previous: quote!(#private::no_previous(previous)),
            link_check: TokenStream::new(),
        };
    };
    let (impl_generics, _, where_clause) = names.generics.split_for_impl();
    let (this, access) = (&names.this, &names.access);
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
    if names.input.generics.params.is_empty() {
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
                let () = <#access>::__MIGRATION_CHECK;
                #migrate
            },
            link_check: quote! {
                #[automatically_derived]
                impl #impl_generics #access #where_clause {
                    const __MIGRATION_CHECK: () = #check;
                }
            },
        }
    }
}
