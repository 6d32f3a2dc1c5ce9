//! Composition root: the shared state and the route tree, nothing else.

use std::time::Duration;

use poem::middleware::CookieJarManager;
use poem::{Endpoint, EndpointExt, Response, Route};

use crate::infra::web::body_rate::MinBodyRate;
use crate::infra::web::csrf::CsrfMiddleware;
use crate::infra::web::headers::SecurityHeaders;
use crate::infra::web::request_log::RequestLog;
use crate::state::AppState;
use crate::{accounts, documents, firm, home};

/// The whole HTTP application.
pub fn build(state: AppState) -> impl Endpoint<Output = Response> {
    let routes = documents::routes::add(accounts::routes::add(home::routes::add(Route::new())))
        .nest("/staff", firm::routes::routes());
    let error_state = state.clone();
    routes
        .with(CsrfMiddleware)
        .catch_all_error(move |err| {
            let state = error_state.clone();
            async move { crate::error::error_page(&state, err) }
        })
        .with(MinBodyRate {
            grace: Duration::from_secs(u64::from(state.config.server.body_timeout_seconds)),
            min_bytes_per_second: state.config.server.body_min_bytes_per_second,
        })
        .with(CookieJarManager::new())
        .with(SecurityHeaders)
        .with(RequestLog)
        .data(state.key.clone())
        .data(state.web.clone())
        .data(state)
        .map_to_response()
}
