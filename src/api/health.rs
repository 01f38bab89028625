//! `GET /api/health`: is the server up and does the database answer.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::db::Unhealthy;
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
    /// Why it is unavailable: `database_unreachable` (the database does not answer a
    /// query), `database_file_missing` (the file was deleted while the server runs),
    /// `database_file_replaced` (another file now stands under its path). Absent when
    /// everything answers.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The server and its database are up.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// The database does not answer, or its file was deleted or replaced (`reason`).
    #[oai(status = 503)]
    Unavailable(Json<Health>),
}

pub struct HealthApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check; needs no credentials.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self, st: Data<&State>) -> HealthResponse {
        let health = st.db.health();
        let word = |ok: bool| if ok { "ok" } else { "unavailable" }.to_owned();
        let body = Json(Health {
            status: word(health.is_ok()),
            database: word(health.is_ok()),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            reason: health.err().map(|u| u.as_str().to_owned()),
        });
        match health {
            Ok(()) => HealthResponse::Ok(body),
            // A missing or replaced file was logged once, when it was found.
            Err(Unhealthy::File(_)) => HealthResponse::Unavailable(body),
            Err(Unhealthy::NoAnswer) => {
                tracing::error!("health check: the database does not answer");
                HealthResponse::Unavailable(body)
            }
        }
    }
}
