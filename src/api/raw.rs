//! A JSON body that is already text, documented as `T`: for answers rendered once and
//! served many times.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use poem::{Body, IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;

pub struct RawJson<T> {
    body: Arc<String>,
    _schema: PhantomData<fn() -> T>,
}

impl<T> RawJson<T> {
    /// `body` must be the JSON rendering of a `T`. It is sent as it is, never copied.
    pub fn new(body: Arc<String>) -> Self {
        RawJson {
            body,
            _schema: PhantomData,
        }
    }
}

/// A shared text as the bytes of a response body.
struct Shared(Arc<String>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl<T: Send> IntoResponse for RawJson<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(Body::from_bytes(Bytes::from_owner(Shared(self.body))))
    }
}

impl<T: Type + Send> ApiResponse for RawJson<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/json; charset=utf-8",
                    schema: T::schema_ref(),
                }],
                headers: Vec::new(),
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}
