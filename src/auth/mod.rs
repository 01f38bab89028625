//! Pure crypto and formats: password hashing, random tokens and ids, cookie
//! attributes. No SQL, no HTTP.

pub mod apikey;
pub mod cookie;
pub mod password;
pub mod token;
pub mod totp;
