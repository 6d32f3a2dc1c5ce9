//! S2 sign-up pages: Name and Email, access code, Create PIN.

use minijinja::context;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};

use super::signin::encode;
use super::steps::{PinPage, Steps, public_form};
use super::{
    CodeForm, CodePage, Empty, NoticeQuery, clear_flow, flow_token, message, notice, see_other,
    set_flow, user_error,
};
use crate::accounts::AccountError;
use crate::accounts::codes::Purpose;
use crate::accounts::signin as service;
use crate::app::AppState;
use crate::error::AppResult;
use crate::infra::web::Visitor;
use crate::infra::web::csrf::CsrfForm;

const SIGNUP: Steps = Steps {
    purpose: Purpose::Signup,
    code: CodePage {
        title: "Verify your email",
        intro: "If this address may open a portal here, we sent a 6-digit access code to",
        action: "/signup/verify",
        resend: "/signup/resend",
        button: "Confirm",
        cancel: "/signup",
        help: "signing-up",
    },
    code_path: "/signup/verify",
    pin_path: "/signup/pin",
};

const CREATE_PIN: PinPage = PinPage {
    title: "Create your PIN",
    action: "/signup/pin",
    button: "Create Account",
    help: "signing-up",
    create: true,
};

#[derive(serde::Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
}

#[derive(serde::Deserialize)]
pub struct NewPinForm {
    #[serde(default)]
    pin: String,
    #[serde(default)]
    confirm: String,
}

fn signup_page(
    req: &Request,
    state: &AppState,
    name: &str,
    email: &str,
    error: Option<String>,
    notice_key: Option<&str>,
) -> AppResult<Response> {
    let ctx = context! { name, email, notice => notice(notice_key) };
    public_form(req, state, "signup.html", error, ctx)
}

#[handler]
pub async fn form(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    signup_page(
        req,
        state,
        "",
        q.email.as_deref().unwrap_or(""),
        None,
        q.notice.as_deref(),
    )
}

#[handler]
pub async fn start(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<SignupForm>,
) -> AppResult<Response> {
    match user_error(service::signup_start(state, &f.name, &f.email, &Visitor::of(req)).await)? {
        Ok(started) => {
            set_flow(req, state, &started.token);
            Ok(see_other("/signup/verify"))
        }
        Err(message) => signup_page(req, state, &f.name, &f.email, Some(message), None),
    }
}

#[handler]
pub async fn code_form(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    SIGNUP.code_form(req, state, q.notice.as_deref()).await
}

#[handler]
pub async fn code(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    let verified = service::verify_before_pin(state, token.as_deref(), Purpose::Signup, &f.code);
    match user_error(verified.await)? {
        Ok(()) => Ok(see_other("/signup/pin")),
        Err(message) => {
            SIGNUP
                .code_error(req, state, token.as_deref(), message)
                .await
        }
    }
}

#[handler]
pub async fn resend(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match user_error(service::signup_resend(state, token.as_deref(), &Visitor::of(req)).await)? {
        Ok(_) => Ok(see_other("/signup/verify?notice=code-sent")),
        Err(message) => {
            SIGNUP
                .code_error(req, state, token.as_deref(), message)
                .await
        }
    }
}

#[handler]
pub async fn pin_form(req: &Request, Data(state): Data<&AppState>) -> AppResult<Response> {
    match SIGNUP.at(req, state, "pin", true).await? {
        Ok(_) => CREATE_PIN.render(req, state, None),
        Err(elsewhere) => Ok(elsewhere),
    }
}

#[handler]
pub async fn pin(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<NewPinForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match service::signup_finish(
        state,
        token.as_deref(),
        &f.pin,
        &f.confirm,
        &Visitor::of(req),
    )
    .await
    {
        Ok(email) => {
            clear_flow(req, state);
            Ok(see_other(&format!(
                "/signin?notice=account-created&email={}",
                encode(&email)
            )))
        }
        Err(AccountError::FlowExpired) => Ok(SIGNUP.expired()),
        Err(e) => CREATE_PIN.render(req, state, Some(message(e)?)),
    }
}
