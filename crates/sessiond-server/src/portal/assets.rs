//! The portal's static files, compiled into the binary so that it serves them without a data
//! directory.

use axum::http::header;
use axum::response::IntoResponse;

const STYLESHEET: &str = include_str!("../../static/style.css");
const LOGO: &str = include_str!("../../static/logo.svg");

/// `GET /static/style.css`: the one stylesheet. Callers: anyone.
pub(super) async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLESHEET)
}

/// `GET /static/logo.svg`: the logo, also the favicon. Callers: anyone.
pub(super) async fn logo() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml")], LOGO)
}
