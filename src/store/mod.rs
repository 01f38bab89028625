//! The only place with SQL. Every function takes a connection (a transaction derefs to
//! one), binds its parameters, and org-scoped functions filter by the organization id.

pub mod invitations;
pub mod keys;
pub mod orgs;
pub mod resources;
pub mod sessions;
pub mod users;

use rusqlite::OptionalExtension;

/// `query_row` that maps "no row" to `None`.
pub(crate) fn optional<T>(r: rusqlite::Result<T>) -> rusqlite::Result<Option<T>> {
    r.optional()
}
