//! Compile-pass and compile-fail cases of `#[derive(Session)]`.
//!
//! `pass/*.rs` must compile and their `main` must run; `fail/*.rs` must fail with exactly the
//! errors in the `.stderr` beside them. Regenerate snapshots with
//! `TRYBUILD=overwrite cargo test -p sessions-ui-tests`, then read every one.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("pass/*.rs");
    cases.compile_fail("fail/*.rs");
}
