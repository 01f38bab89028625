//! Listings: the body is a JSON array holding one page, as in Dokploy, so a request that
//! asks for no page gets the shape it always had; the size of the whole listing travels in
//! the `X-Total-Count` header, which the spec declares so generated clients read it.

use poem::http::HeaderValue;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};

use super::error::ApiResult;
use super::text::Int;
use crate::domain;
use crate::model::{Page, Paging};

/// The header with the number of rows the whole listing has.
pub const TOTAL_HEADER: &str = "X-Total-Count";

/// One page of a listing, answered as an array of `T` with `X-Total-Count`.
pub struct Listed<T> {
    items: Vec<T>,
    total: u64,
}

impl<T> Listed<T> {
    /// The page of `page`, each row shown as `view` shows it.
    pub fn new<R>(page: &Page<R>, view: impl FnMut(&R) -> T) -> Self {
        Listed {
            items: page.items.iter().map(view).collect(),
            total: page.total,
        }
    }
}

impl<T: ToJSON + Send> IntoResponse for Listed<T> {
    fn into_response(self) -> Response {
        let mut resp = Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(self.items.to_json_string());
        resp.headers_mut()
            .insert(TOTAL_HEADER, HeaderValue::from(self.total));
        resp
    }
}

impl<T: ToJSON + Send> ApiResponse for Listed<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "One page of the listing, in its documented order.",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/json; charset=utf-8",
                    schema: Vec::<T>::schema_ref(),
                }],
                headers: vec![MetaHeader {
                    name: TOTAL_HEADER.to_owned(),
                    description: Some(
                        "How many rows the whole listing has, on every page (page through \
                         them with `limit` and `offset`)."
                            .to_owned(),
                    ),
                    required: true,
                    deprecated: false,
                    schema: u64::schema_ref(),
                }],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        Vec::<T>::register(registry);
    }
}

/// A listing's `limit` query parameter: the page size, as the spec documents it.
pub type Limit = Int<1, { Paging::MAX_LIMIT }>;
/// A listing's `offset` query parameter: how many rows to skip.
pub type Offset = Int<0>;

/// The page that a listing's `limit` and `offset` ask for: the first `Paging::MAX_LIMIT`
/// rows when they are absent.
pub fn paging(limit: Option<Limit>, offset: Option<Offset>) -> ApiResult<Paging> {
    Ok(domain::paging(
        limit.map(|v| v.0),
        offset.map(|v| v.0),
        Paging::MAX_LIMIT,
    )?)
}
