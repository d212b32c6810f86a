//! Integration tests of `sessions` live in `tests/`.
