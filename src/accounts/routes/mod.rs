//! Pages of S1–S6. Handlers parse the form, call the service, and render or redirect.

mod security;
mod signin;
mod signup;

use minijinja::context;
use poem::{Request, Response, Route, get, post};

use crate::error::AppResult;
use crate::state::AppState;
// The shared page glue, for the page modules below (`use super::...`).
use crate::web::{
    ClientSession, Empty, NoticeQuery, clear_flow, client_page, flow_token, form_status, message,
    notice, public_page, see_other, set_device, set_flow, set_session, user_error,
};

pub fn add(route: Route) -> Route {
    route
        .at("/signin", get(signin::form).post(signin::start))
        .at("/signin/pin", get(signin::pin_form).post(signin::pin))
        .at("/signin/code", get(signin::code_form).post(signin::code))
        .at("/signin/resend", post(signin::resend))
        .at("/signin/forgot", post(signin::forgot))
        .at(
            "/signin/reset",
            get(signin::reset_form).post(signin::reset_code),
        )
        .at("/signin/reset/resend", post(signin::reset_resend))
        .at(
            "/signin/reset/pin",
            get(signin::reset_pin_form).post(signin::reset_pin),
        )
        .at("/signout", post(signin::signout))
        .at("/signup", get(signup::form).post(signup::start))
        .at("/signup/verify", get(signup::code_form).post(signup::code))
        .at("/signup/resend", post(signup::resend))
        .at("/signup/pin", get(signup::pin_form).post(signup::pin))
        .at("/security", get(security::page))
        .at(
            "/security/merge",
            get(security::merge_form).post(security::merge_start),
        )
        .at("/security/merge/verify", post(security::merge_verify))
        .at("/security/merge/resend", post(security::merge_resend))
        .at(
            "/security/pin",
            get(security::pin_form).post(security::pin_start),
        )
        .at("/security/pin/verify", post(security::pin_verify))
        .at("/security/pin/resend", post(security::pin_resend))
        .at(
            "/security/email",
            get(security::email_form).post(security::email_start),
        )
        .at("/security/email/verify", post(security::email_verify))
        .at("/security/email/resend", post(security::email_resend))
        .at(
            "/security/devices/:id/revoke",
            post(security::revoke_device),
        )
        .at(
            "/security/sessions/end-others",
            post(security::end_other_sessions),
        )
}

/// How a code page looks and where its forms go.
pub struct CodePage {
    pub title: &'static str,
    pub intro: &'static str,
    pub action: &'static str,
    pub resend: &'static str,
    pub button: &'static str,
    pub cancel: &'static str,
    pub help: &'static str,
}

impl CodePage {
    pub fn render(
        &self,
        req: &Request,
        state: &AppState,
        who: Option<&ClientSession>,
        email: &str,
        error: Option<String>,
        notice_key: Option<&str>,
    ) -> AppResult<Response> {
        let status = form_status(&error);
        let ctx = context! {
            title => self.title, intro => self.intro, action => self.action, resend => self.resend,
            button => self.button, cancel => self.cancel, help => self.help, email,
            minutes => state.config.accounts.code_ttl_minutes, error, notice => notice(notice_key),
        };
        match who {
            Some(who) => {
                let mut resp = client_page(req, state, who, "code.html", ctx)?;
                resp.set_status(status);
                Ok(resp)
            }
            None => public_page(req, state, "code.html", status, ctx),
        }
    }
}

#[derive(serde::Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub code: String,
}
