//! S5 Security Settings pages.
//!
//! Merge Emails, Update PIN and Update Email ID are one kind of flow (a [`Change`]):
//! a form on the settings page starts it, a code page asks for the code sent, and
//! the code confirms it or can be sent again. The handlers below serve all three;
//! the route data (`.data(Change::…)` in the route table) says which one a
//! request is for.

use std::ops::Deref;

use minijinja::context;
use poem::web::{Path, Query};
use poem::{FromRequest, Request, RequestBody, Response, handler};
use serde::de::DeserializeOwned;

use super::steps::OnPage;
use super::{
    ClientSession, CodeForm, CodePage, Empty, NoticeQuery, clear_flow, client_page, form_status,
    message, notice, see_other, set_device, set_flow, set_session, user_error,
};
use crate::accounts::codes::{self, Purpose, Started};
use crate::accounts::repo::Client;
use crate::accounts::settings::{self as service, Renewed};
use crate::accounts::{AccountError, AccountResult};
use crate::error::{AppError, AppResult};
use crate::infra::web::Visitor;
use crate::infra::web::csrf::CsrfForm;
use crate::infra::web::page::cookie;
use crate::state::AppState;

/// A change of Security Settings that an access code confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Merge,
    Pin,
    Email,
}

/// What tells the three changes apart in their pages.
struct Flow {
    /// The code page; its form on the settings page posts here too.
    path: &'static str,
    purpose: Purpose,
    page: CodePage,
    /// Where a confirmed change lands.
    done: &'static str,
}

const MERGE: Flow = Flow {
    path: "/security/merge",
    purpose: Purpose::Merge,
    done: "/security?notice=email-merged",
    page: CodePage {
        title: "Verify the other address",
        intro: "We sent a 6-digit access code to",
        action: "/security/merge/verify",
        resend: "/security/merge/resend",
        button: "Verify Code",
        cancel: "/security",
        help: "merge-emails",
    },
};

const PIN: Flow = Flow {
    path: "/security/pin",
    purpose: Purpose::PinChange,
    done: "/security?notice=pin-changed",
    page: CodePage {
        title: "Confirm your new PIN",
        intro: "To confirm it is you, we sent a 6-digit access code to",
        action: "/security/pin/verify",
        resend: "/security/pin/resend",
        button: "Confirm",
        cancel: "/security",
        help: "update-pin",
    },
};

const EMAIL: Flow = Flow {
    path: "/security/email",
    purpose: Purpose::EmailChange,
    done: "/security?notice=email-changed",
    page: CodePage {
        title: "Verify your new email",
        intro: "We sent a 6-digit access code to",
        action: "/security/email/verify",
        resend: "/security/email/resend",
        button: "Confirm",
        cancel: "/security",
        help: "update-email",
    },
};

impl Change {
    fn flow(self) -> &'static Flow {
        match self {
            Change::Merge => &MERGE,
            Change::Pin => &PIN,
            Change::Email => &EMAIL,
        }
    }

    /// Checks the code; a PIN change also renews this browser's session and device.
    async fn finish(
        self,
        state: &AppState,
        client: &Client,
        token: Option<&str>,
        code: &str,
        visitor: &Visitor,
    ) -> AccountResult<Option<Renewed>> {
        let purpose = self.flow().purpose;
        match self {
            Change::Pin => service::pin_change_finish(state, client, token, code, visitor)
                .await
                .map(Some),
            Change::Merge | Change::Email => {
                service::address_finish(state, client, token, purpose, code, visitor)
                    .await
                    .map(|_| None)
            }
        }
    }
}

/// The form on the settings page that starts a change.
pub trait StartForm: DeserializeOwned + Send + Sync + 'static {
    const CHANGE: Change;
    fn start(self, on: &Signed) -> impl Future<Output = AccountResult<Started>> + Send;
}

#[derive(serde::Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
}

impl StartForm for EmailForm {
    const CHANGE: Change = Change::Merge;
    async fn start(self, on: &Signed<'_>) -> AccountResult<Started> {
        service::merge_start(on.state, &on.who.client, &self.email, &on.visitor).await
    }
}

/// Fields not sent are empty.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
pub struct PinChangeForm {
    current: String,
    pin: String,
    confirm: String,
}

impl StartForm for PinChangeForm {
    const CHANGE: Change = Change::Pin;
    async fn start(self, on: &Signed<'_>) -> AccountResult<Started> {
        let (current, pin, confirm) = (&self.current, &self.pin, &self.confirm);
        service::pin_change_start(on.state, &on.who.client, current, pin, confirm, &on.visitor)
            .await
    }
}

/// Fields not sent are empty.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
pub struct EmailChangeForm {
    current: String,
    email: String,
}

impl StartForm for EmailChangeForm {
    const CHANGE: Change = Change::Email;
    async fn start(self, on: &Signed<'_>) -> AccountResult<Started> {
        let (current, email) = (&self.current, &self.email);
        service::email_change_start(on.state, &on.who.client, current, email, &on.visitor).await
    }
}

async fn settings_page(
    req: &Request,
    state: &AppState,
    who: &ClientSession,
    error: Option<(Change, String)>,
    notice_key: Option<&str>,
) -> AppResult<Response> {
    let device = cookie(req, &state.web.cookies.device);
    let overview = service::overview(state, who.client.id, &who.token, device.as_deref()).await?;
    // Shown beside the form of the change it is about.
    let error_of = |change| {
        error
            .as_ref()
            .filter(|(c, _)| *c == change)
            .map(|(_, m)| m.clone())
    };
    let ctx = context! {
        overview => minijinja::Value::from(minijinja::value::Serde(&overview)),
        merge_error => error_of(Change::Merge), pin_error => error_of(Change::Pin),
        email_error => error_of(Change::Email), notice => notice(notice_key),
    };
    let mut resp = client_page(req, state, who, "security.html", ctx)?;
    resp.set_status(form_status(&error));
    Ok(resp)
}

#[handler]
pub async fn page(on: Signed<'_>, Query(q): Query<NoticeQuery>) -> AppResult<Response> {
    settings_page(on.req, on.state, &on.who, None, q.notice.as_deref()).await
}

/// A signed-in client's request on the Security Settings pages.
pub struct Signed<'a> {
    on: OnPage<'a>,
    who: ClientSession,
}

impl<'a> FromRequest<'a> for Signed<'a> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let on = OnPage::from_request(req, body).await?;
        let who = ClientSession::from_request(req, body).await?;
        Ok(Signed { on, who })
    }
}

impl<'a> Deref for Signed<'a> {
    type Target = OnPage<'a>;
    fn deref(&self) -> &OnPage<'a> {
        &self.on
    }
}

impl Signed<'_> {
    /// The change this route is for.
    fn change(&self) -> AppResult<Change> {
        self.flow::<Change>().copied()
    }

    /// The settings page, with `message` beside the form of `change`.
    async fn settings_error(&self, change: Change, message: String) -> AppResult<Response> {
        let error = Some((change, message));
        settings_page(self.req, self.state, &self.who, error, None).await
    }

    /// The code page of `change` if the flow in the cookie is one, or back to settings.
    async fn code_page(
        &self,
        change: Change,
        error: Option<String>,
        notice_key: Option<&str>,
    ) -> AppResult<Response> {
        let (req, state, flow) = (self.req, self.state, change.flow());
        match user_error(codes::load(state, self.token(), flow.purpose).await)? {
            Ok(f) if f.client_id == Some(self.who.client.id) => {
                let who = Some(&self.who);
                flow.page
                    .render(req, state, who, &f.email, error, notice_key)
            }
            _ => Ok(see_other("/security?notice=expired")),
        }
    }
}

/// The form on the settings page that starts a change (`F` says which).
#[handler]
pub async fn start<F: StartForm>(on: Signed<'_>, CsrfForm(f): CsrfForm<F>) -> AppResult<Response> {
    let (req, state, change) = (on.req, on.state, F::CHANGE);
    match user_error(f.start(&on).await)? {
        Ok(started) => {
            set_flow(req, state, &started.token);
            Ok(see_other(change.flow().path))
        }
        Err(message) => on.settings_error(change, message).await,
    }
}

#[handler]
pub async fn form(on: Signed<'_>, Query(q): Query<NoticeQuery>) -> AppResult<Response> {
    on.code_page(on.change()?, None, q.notice.as_deref()).await
}

#[handler]
pub async fn verify(on: Signed<'_>, CsrfForm(f): CsrfForm<CodeForm>) -> AppResult<Response> {
    let (req, state, change) = (on.req, on.state, on.change()?);
    let (client, token, visitor) = (&on.who.client, on.token(), &on.visitor);
    match change.finish(state, client, token, &f.code, visitor).await {
        Ok(renewed) => {
            clear_flow(req, state);
            if let Some(renewed) = renewed {
                set_session(req, state, &renewed.session_token);
                set_device(req, state, &renewed.device_token);
            }
            Ok(see_other(change.flow().done))
        }
        // Said on the settings page: another code for this address cannot help.
        Err(AccountError::EmailTaken) => {
            clear_flow(req, state);
            let message = AccountError::EmailTaken.to_string();
            on.settings_error(change, message).await
        }
        Err(e) => on.code_page(change, Some(message(e)?), None).await,
    }
}

#[handler]
pub async fn resend(on: Signed<'_>, CsrfForm(_): CsrfForm<Empty>) -> AppResult<Response> {
    let change = on.change()?;
    let (purpose, client) = (change.flow().purpose, &on.who.client);
    let sent = service::resend(on.state, client, on.token(), purpose, &on.visitor);
    match user_error(sent.await)? {
        Ok(_) => Ok(see_other(&format!(
            "{}?notice=code-sent",
            change.flow().path
        ))),
        Err(message) => on.code_page(change, Some(message), None).await,
    }
}

// ---- devices and sessions ----

#[handler]
pub async fn revoke_device(
    on: Signed<'_>,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    if !service::revoke_device(on.state, &on.who.client, &id, &on.visitor).await? {
        return Err(AppError::NotFound);
    }
    Ok(see_other("/security?notice=device-revoked"))
}

#[handler]
pub async fn end_other_sessions(
    on: Signed<'_>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    service::end_other_sessions(on.state, &on.who.client, &on.who.token, &on.visitor).await?;
    Ok(see_other("/security?notice=sessions-ended"))
}
