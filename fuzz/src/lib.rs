//! What the fuzz targets share: the session types with a v1 → v2 → v3 migration chain, the
//! structured input of `typed_decode`, and the small axum apps `sealed_cookie` and
//! `layer_headers` drive through the real `SessionLayer`.

pub mod account;
pub mod app;
