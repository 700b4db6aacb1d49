//! The REST door's error form: every error a REST caller sees is the JSON of `AppError`,
//! including the plain-text rejections of axum's extractors and its 405/413
//! (`error::json_errors`).

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// The door's renderer of the HTTP layer's refusals (`http::door`).
pub fn render(_: &HeaderMap, error: AppError) -> Response {
    error.into_response()
}
