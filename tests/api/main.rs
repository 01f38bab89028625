//! Integration tests through HTTP, one file per feature.

mod helpers;

mod auth;
mod contract;
mod errors;
mod health;
mod invitations;
mod known_bugs_orgs;
mod members;
mod orgs;
mod roles;
mod sessions;
mod spec;
mod users;
