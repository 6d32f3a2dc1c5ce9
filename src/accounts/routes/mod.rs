//! Pages of S1–S6. Handlers parse the form, call the service, and render or redirect.

pub mod security;
pub mod signin;
pub mod signup;
pub mod steps;

use minijinja::context;
use poem::{Request, Response};

use crate::error::AppResult;
use crate::state::AppState;
// The shared page glue, for the page modules below (`use super::...`).
use crate::web::{
    ClientSession, Empty, NoticeQuery, clear_flow, client_page, flow_token, form_status, message,
    notice, public_form, public_page, see_other, set_device, set_flow, set_session, user_error,
};

/// How a code page looks and where its forms go.
#[derive(Clone)]
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
