//! What the sign-in, Forgot PIN and sign-up pages share: which page a flow's stage
//! is shown on, the code page and its errors, and the new-PIN page.

use minijinja::{Value, context};
use poem::http::StatusCode;
use poem::{Request, Response};

use super::{CodePage, flow_token, public_page, see_other, user_error};
use crate::accounts::codes::{self, Purpose};
use crate::accounts::repo::Flow;
use crate::app::AppState;
use crate::error::AppResult;

/// 422 when the form has an error to show, so that scripts can tell.
pub fn form_status<T>(error: Option<&T>) -> StatusCode {
    if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

/// A public page with a form, and the error to show in it if any.
pub fn public_form(
    req: &Request,
    state: &AppState,
    template: &str,
    error: Option<String>,
    ctx: Value,
) -> AppResult<Response> {
    let status = form_status(error.as_ref());
    public_page(req, state, template, status, context! { error, ..ctx })
}

/// The pages of a flow that a visitor goes through before having a session.
pub struct Steps {
    pub purpose: Purpose,
    /// Its `cancel` is where the flow begins again.
    pub code: CodePage,
    pub code_path: &'static str,
    pub pin_path: &'static str,
}

impl Steps {
    /// The flow if it is at `stage`. Otherwise where to go: with `follow`, the page
    /// of the stage the flow is at; else, or without a flow, back to the start.
    pub async fn at(
        &self,
        req: &Request,
        state: &AppState,
        stage: &str,
        follow: bool,
    ) -> AppResult<Result<Flow, Response>> {
        let token = flow_token(req, state);
        Ok(
            match user_error(codes::load(state, token.as_deref(), self.purpose).await)? {
                Ok(flow) if flow.stage == stage => Ok(flow),
                Ok(flow) if follow && flow.stage == "code" => Err(see_other(self.code_path)),
                Ok(flow) if follow && flow.stage == "pin" => Err(see_other(self.pin_path)),
                _ => Err(self.expired()),
            },
        )
    }

    /// Back to the start, saying the step expired.
    pub fn expired(&self) -> Response {
        see_other(&format!("{}?notice=expired", self.code.cancel))
    }

    /// The code page, shown while the flow is at its code stage.
    pub async fn code_form(
        &self,
        req: &Request,
        state: &AppState,
        notice_key: Option<&str>,
    ) -> AppResult<Response> {
        match self.at(req, state, "code", true).await? {
            Ok(flow) => self
                .code
                .render(req, state, None, &flow.email, None, notice_key),
            Err(elsewhere) => Ok(elsewhere),
        }
    }

    /// Re-shows the code page with a message, or restarts when the flow is gone.
    pub async fn code_error(
        &self,
        req: &Request,
        state: &AppState,
        token: Option<&str>,
        message: String,
    ) -> AppResult<Response> {
        match user_error(codes::load(state, token, self.purpose).await)? {
            Ok(flow) => self
                .code
                .render(req, state, None, &flow.email, Some(message), None),
            Err(_) => Ok(self.expired()),
        }
    }
}

/// How a page that sets a new PIN looks and where its form goes.
pub struct PinPage {
    pub title: &'static str,
    pub action: &'static str,
    pub button: &'static str,
    pub help: &'static str,
    /// Creating the first PIN of an account, rather than replacing one.
    pub create: bool,
}

impl PinPage {
    pub fn render(
        &self,
        req: &Request,
        state: &AppState,
        error: Option<String>,
    ) -> AppResult<Response> {
        let ctx = context! {
            title => self.title, action => self.action, button => self.button,
            help => self.help, create => self.create,
        };
        public_form(req, state, "new_pin.html", error, ctx)
    }
}
