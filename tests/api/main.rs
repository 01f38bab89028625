//! Integration tests through HTTP, one file per feature.

mod helpers;
mod resource_helpers;

mod applications;
mod auth;
mod contract;
mod environments;
mod errors;
mod health;
mod invitations;
mod isolation;
mod known_bugs_resources;
mod members;
mod orgs;
mod projects;
mod roles;
mod rules;
mod sessions;
mod spec;
mod users;
