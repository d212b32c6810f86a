//! Runnable apps using `sessions`; see the README.
