//! Integration tests through HTTP, one file per feature.

mod helpers;

mod auth;
mod errors;
mod health;
mod known_bugs;
mod sessions;
mod spec;
