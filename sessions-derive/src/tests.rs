//! Tests of the expansion as tokens: what it names (hygiene), and how big it is.

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::parse_quote;

use crate::expand::derive;

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

/// Counts the tokens of a token stream, groups' contents included.
fn count_tokens(tokens: TokenStream) -> usize {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) => 1 + count_tokens(group.stream()),
            _ => 1,
        })
        .sum()
}

/// The expansion of a two-field struct stays small: the logic lives in `sessions::__private`,
/// not in every expansion. It was 1,905 tokens (238 lines through rustfmt) before the trait's
/// hooks had defaults and each field one codec const; 1,527 (189 lines) since. Set
/// `SESSIONS_DERIVE_WRITE_EXPANSION=path` to write the expansion there (`rustfmt` formats it).
#[test]
fn expansion_of_a_two_field_struct_stays_small() {
    let input: syn::DeriveInput = parse_quote! {
        #[derive(Session, Default)]
        #[session(name = "cart", version = 1)]
        pub struct Cart {
            items: Vec<Item>,
            coupon: Option<String>,
        }
    };
    let expanded = derive(&input);
    if let Ok(path) = std::env::var("SESSIONS_DERIVE_WRITE_EXPANSION") {
        std::fs::write(path, expanded.to_string()).expect("the expansion is written");
    }
    let tokens = count_tokens(expanded);
    assert!(tokens <= 1_600, "{tokens} tokens");
}
