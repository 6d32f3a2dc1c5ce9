//! Home page (H4 contact information), help on every screen (B3), static theme
//! assets, the firm's brand stylesheet and logo, and the health endpoint (O3).

use minijinja::context;
use poem::http::{StatusCode, header};
use poem::web::{Data, Path};
use poem::{IntoResponse, Request, Response, handler};

use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::{ClientSession, client_page, public_page};

#[handler]
pub async fn home(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
) -> AppResult<Response> {
    let (pending, completed) = crate::tasks::home_lists(state, who.client.id).await?;
    let ctx = context! {
        pending => minijinja::Value::from(minijinja::value::Serde(pending)),
        completed => minijinja::Value::from(minijinja::value::Serde(completed)),
    };
    client_page(req, state, &who, "home.html", ctx)
}

/// Help is public (it explains signing in too) but keeps the signed-in navigation.
#[handler]
pub async fn help(req: &Request, Data(state): Data<&AppState>) -> AppResult<Response> {
    if let Some(who) = ClientSession::optional(req, state).await? {
        return client_page(req, state, &who, "help.html", context! {});
    }
    public_page(req, state, "help.html", StatusCode::OK, context! {})
}

#[handler]
pub async fn asset(Data(state): Data<&AppState>, Path(path): Path<String>) -> AppResult<Response> {
    let bytes = state.renderer.asset(&path).ok_or(AppError::NotFound)?;
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, mime.as_ref())
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(bytes.into_owned()))
}

/// The firm's colours as CSS variables (validated as hex colours at start).
#[handler]
pub async fn brand_css(Data(state): Data<&AppState>) -> Response {
    let b = &state.config.branding;
    let css = format!(
        ":root {{ --brand: {}; --accent: {}; }}\n",
        b.primary_color, b.accent_color
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .body(css)
}

#[handler]
pub async fn logo(Data(state): Data<&AppState>) -> AppResult<Response> {
    let path = &state.config.branding.logo;
    if path.is_empty() {
        return Err(AppError::NotFound);
    }
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "branding.logo cannot be read");
            return Err(AppError::NotFound);
        }
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, mime.as_ref())
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        // An SVG logo opened directly must not run script.
        .header(
            "content-security-policy",
            "sandbox; default-src 'none'; style-src 'unsafe-inline'",
        )
        .body(bytes))
}

#[handler]
pub async fn health(Data(state): Data<&AppState>) -> Response {
    if state.db.ping().await {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
    }
}
