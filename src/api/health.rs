//! `GET /api/health`: is the server up and does the database answer.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::domain::State;

/// Liveness of the server and its database.
#[derive(Debug, Object)]
pub struct Health {
    /// `ok` when everything answers, `unavailable` otherwise.
    pub status: String,
    /// `ok` when the database answers a query, `unavailable` otherwise.
    pub database: String,
    /// The server's version.
    pub version: String,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The server and its database are up.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// The database does not answer.
    #[oai(status = 503)]
    Unavailable(Json<Health>),
}

pub struct HealthApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check; needs no credentials.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self, st: Data<&State>) -> HealthResponse {
        let up = st.db.ping().is_ok();
        let word = |ok: bool| if ok { "ok" } else { "unavailable" }.to_owned();
        let body = Json(Health {
            status: word(up),
            database: word(up),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        });
        if up {
            HealthResponse::Ok(body)
        } else {
            tracing::error!("health check: the database does not answer");
            HealthResponse::Unavailable(body)
        }
    }
}
