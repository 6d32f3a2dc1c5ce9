//! S2 sign-up pages: Name and Email, access code, Create PIN.

use minijinja::context;
use poem::web::Query;
use poem::{Response, handler};

use super::steps::{OnPage, PinPage, Steps};
use super::{CodePage, NoticeQuery, notice, public_form, see_other, set_flow, user_error};
use crate::accounts::codes::Purpose;
use crate::accounts::signin as service;
use crate::error::AppResult;
use crate::infra::web::csrf::CsrfForm;

pub const SIGNUP: Steps = Steps {
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
    pin_path: "/signup/pin",
};

pub const CREATE_PIN: PinPage = PinPage {
    steps: SIGNUP,
    title: "Create your PIN",
    button: "Create Account",
    help: "signing-up",
    create: true,
    follow: true,
    done: "account-created",
};

/// Fields not sent are empty.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
pub struct SignupForm {
    name: String,
    email: String,
}

/// Name and Email, with what was typed and what went wrong.
fn signup_page(on: &OnPage, typed: &SignupForm, error: Option<String>) -> AppResult<Response> {
    let ctx = context! { name => typed.name.as_str(), email => typed.email.as_str(), notice => None::<&str> };
    public_form(on.req, on.state, "signup.html", error, ctx)
}

#[handler]
pub async fn form(on: OnPage<'_>, Query(q): Query<NoticeQuery>) -> AppResult<Response> {
    let email = q.email.as_deref().unwrap_or("");
    let ctx = context! { name => "", email, notice => notice(q.notice.as_deref()) };
    public_form(on.req, on.state, "signup.html", None, ctx)
}

#[handler]
pub async fn start(on: OnPage<'_>, CsrfForm(f): CsrfForm<SignupForm>) -> AppResult<Response> {
    match user_error(service::signup_start(on.state, &f.name, &f.email, &on.visitor).await)? {
        Ok(started) => {
            set_flow(on.req, on.state, &started.token);
            Ok(see_other(SIGNUP.code.action))
        }
        Err(message) => signup_page(&on, &f, Some(message)),
    }
}
