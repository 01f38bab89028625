//! Integration tests through HTTP, one file per feature.

mod helpers;

mod auth;
mod contract;
mod errors;
mod health;
mod invitations;
mod keys;
mod keys_fine_points;
mod keys_limits;
mod keys_secrets;
mod keys_verify;
mod members;
mod orgs;
mod roles;
mod rules;
mod sessions;
mod spec;
mod users;
