//! Integration tests through HTTP, one file per feature.

mod helpers;

mod auth;
mod errors;
mod orgs;
mod sessions;
