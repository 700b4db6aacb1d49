//! The REST front door (`/api/v1`). Messaging routes join it in later issues.

mod clients;
mod extract;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

pub use extract::JsonBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/whoami", get(clients::whoami))
        .route(
            "/api/v1/clients",
            get(clients::list_clients).post(clients::create_client),
        )
        .route(
            "/api/v1/clients/{id}/disable",
            post(clients::disable_client),
        )
}
