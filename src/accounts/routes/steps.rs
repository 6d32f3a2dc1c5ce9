//! What the sign-in, Forgot PIN and sign-up pages share: which page a flow's stage
//! is shown on, the code page and its errors, and the new-PIN page.

use minijinja::context;
use poem::web::Query;
use poem::{FromRequest, Request, RequestBody, Response, handler};

use super::{
    CodeForm, CodePage, Empty, NoticeQuery, clear_flow, flow_token, message, public_form,
    see_other, user_error,
};
use crate::accounts::AccountError;
use crate::accounts::codes::{self, Purpose};
use crate::accounts::repo::Flow;
use crate::accounts::signin as service;
use crate::error::{AppError, AppResult};
use crate::infra::web::Visitor;
use crate::infra::web::csrf::CsrfForm;
use crate::infra::web::page::cookie;
use crate::state::AppState;

/// A request on a page of the accounts flows: the state, and the token of the flow
/// the browser is in (from its cookie).
pub struct OnPage<'a> {
    pub req: &'a Request,
    pub state: &'a AppState,
    pub token: Option<String>,
    pub visitor: Visitor,
}

impl<'a> FromRequest<'a> for OnPage<'a> {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = req
            .data::<AppState>()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("no state")))?;
        let (token, visitor) = (flow_token(req, state), Visitor::of(req));
        Ok(OnPage {
            req,
            state,
            token,
            visitor,
        })
    }
}

impl<'a> OnPage<'a> {
    /// What the route says its flow is (its [`Steps`] or [`PinPage`], or a
    /// Security Settings change).
    pub fn flow<T: Send + Sync + 'static>(&self) -> AppResult<&'a T> {
        let flow = self.req.data::<T>();
        flow.ok_or_else(|| AppError::internal(anyhow::anyhow!("no flow for this route")))
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The trusted-device cookie.
    pub fn device(&self) -> Option<String> {
        cookie(self.req, &self.state.web.cookies.device)
    }
}

/// The pages of a flow that a visitor goes through before having a session. Its
/// code page is at `code.action`, and `code.cancel` is where the flow begins.
#[derive(Clone)]
pub struct Steps {
    pub purpose: Purpose,
    pub code: CodePage,
    pub pin_path: &'static str,
}

/// The code page of a flow (route data: its [`Steps`]).
#[handler]
pub async fn code_form(on: OnPage<'_>, Query(q): Query<NoticeQuery>) -> AppResult<Response> {
    let steps = on.flow::<Steps>()?;
    steps.code_form(on.req, on.state, q.notice.as_deref()).await
}

/// "Send a new code" (route data: the flow's [`Steps`]).
#[handler]
pub async fn resend(on: OnPage<'_>, CsrfForm(_): CsrfForm<Empty>) -> AppResult<Response> {
    let (steps, token, device) = (on.flow::<Steps>()?, on.token(), on.device());
    let purpose = steps.purpose;
    match user_error(
        service::resend_code(on.state, token, purpose, device.as_deref(), &on.visitor).await,
    )? {
        Ok(_) => Ok(see_other(&format!(
            "{}?notice=code-sent",
            steps.code.action
        ))),
        Err(message) => steps.code_error(on.req, on.state, token, message).await,
    }
}

/// The code of a sign-up or Forgot PIN flow: the new PIN is asked for next.
#[handler]
pub async fn verify_before_pin(
    on: OnPage<'_>,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let (steps, token) = (on.flow::<Steps>()?, on.token());
    let verified = service::verify_before_pin(on.state, token, steps.purpose, &f.code);
    match user_error(verified.await)? {
        Ok(()) => Ok(see_other(steps.pin_path)),
        Err(message) => steps.code_error(on.req, on.state, token, message).await,
    }
}

/// The new-PIN page (route data: its [`PinPage`]).
#[handler]
pub async fn pin_form(on: OnPage<'_>) -> AppResult<Response> {
    let page = on.flow::<PinPage>()?;
    match page.steps.at(on.req, on.state, "pin", page.follow).await? {
        Ok(_) => page.render(on.req, on.state, None),
        Err(elsewhere) => Ok(elsewhere),
    }
}

/// Fields not sent are empty.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
pub struct NewPinForm {
    pin: String,
    confirm: String,
}

/// "Create Account" or "Save PIN": the flow ends, and sign-in is next.
#[handler]
pub async fn set_pin(on: OnPage<'_>, CsrfForm(f): CsrfForm<NewPinForm>) -> AppResult<Response> {
    let (page, token, visitor) = (on.flow::<PinPage>()?, on.token(), &on.visitor);
    let purpose = page.steps.purpose;
    let finished = service::pin_finish(on.state, token, purpose, &f.pin, &f.confirm, visitor);
    match finished.await {
        Ok(email) => {
            clear_flow(on.req, on.state);
            let to = format!("/signin?notice={}&email={}", page.done, encode(&email));
            Ok(see_other(&to))
        }
        Err(AccountError::FlowExpired) => Ok(page.steps.expired()),
        Err(e) => page.render(on.req, on.state, Some(message(e)?)),
    }
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
                Ok(flow) if follow && flow.stage == "code" => Err(see_other(self.code.action)),
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
    async fn code_form(
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

/// The last page of a sign-up or Forgot PIN flow, which sets the PIN.
#[derive(Clone)]
pub struct PinPage {
    /// The flow's; the page is at its `pin_path`.
    pub steps: Steps,
    pub title: &'static str,
    pub button: &'static str,
    pub help: &'static str,
    /// Creating the first PIN of an account, rather than replacing one.
    pub create: bool,
    /// Whether a flow still at its code stage is sent there (else to the start).
    pub follow: bool,
    /// What sign-in says once the PIN is set.
    pub done: &'static str,
}

impl PinPage {
    fn render(
        &self,
        req: &Request,
        state: &AppState,
        error: Option<String>,
    ) -> AppResult<Response> {
        let ctx = context! {
            title => self.title, action => self.steps.pin_path, button => self.button,
            help => self.help, create => self.create,
        };
        public_form(req, state, "new_pin.html", error, ctx)
    }
}

/// A value for a URL's query string.
pub fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
