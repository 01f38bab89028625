//! Integration tests through HTTP, one file per feature.

mod helpers;

mod auth;
mod contract;
mod errors;
mod health;
mod keys;
mod keys_limits;
mod keys_secrets;
mod keys_verify;
mod known_bugs_keys;
mod sessions;
mod spec;
