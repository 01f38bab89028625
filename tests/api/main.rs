//! Integration tests through HTTP, one file per feature.

mod helpers;

mod applications;
mod audit;
mod auth;
mod body_limits;
mod clients;
mod domains;
mod environments;
mod errors;
mod forward_auth;
mod freshness;
mod headers;
mod health;
mod invitations;
mod isolation;
mod key_usage;
mod key_verdicts;
mod keys;
mod keys_limits;
mod keys_secrets;
mod keys_verify;
mod members;
mod orgs;
mod password_reset;
mod policy;
mod projects;
mod request_bodies;
mod roles;
mod sessions;
mod spec;
mod two_factor;
mod users;
