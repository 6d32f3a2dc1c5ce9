//! S5 Security Settings pages.
//!
//! Merge Emails, Update PIN and Update Email ID are one kind of flow (a [`Change`]):
//! a form on the settings page starts it, a code page asks for the code sent, and
//! the code confirms it or can be sent again. The handlers below serve all three;
//! the route data says which one a request is for.

use minijinja::context;
use poem::web::{Data, Path, Query};
use poem::{EndpointExt, Request, Response, Route, get, handler, post};
use serde::de::DeserializeOwned;

use super::steps::form_status;
use super::{
    ClientSession, CodeForm, CodePage, Empty, NoticeQuery, clear_flow, client_page, flow_token,
    message, notice, see_other, set_device, set_flow, set_session, user_error,
};
use crate::accounts::codes::{self, Purpose, Started};
use crate::accounts::repo::Client;
use crate::accounts::settings::{self as service, Renewed};
use crate::accounts::{AccountError, AccountResult};
use crate::app::AppState;
use crate::error::AppResult;
use crate::infra::web::Visitor;
use crate::infra::web::csrf::CsrfForm;
use crate::infra::web::page::cookie;

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
        match self {
            Change::Merge => service::merge_finish(state, client, token, code, visitor)
                .await
                .map(|_| None),
            Change::Pin => service::pin_change_finish(state, client, token, code, visitor)
                .await
                .map(Some),
            Change::Email => service::email_change_finish(state, client, token, code, visitor)
                .await
                .map(|_| None),
        }
    }
}

/// The form on the settings page that starts a change.
pub trait StartForm: DeserializeOwned + Send + Sync + 'static {
    const CHANGE: Change;
    fn start(
        &self,
        state: &AppState,
        client: &Client,
        visitor: &Visitor,
    ) -> impl Future<Output = AccountResult<Started>> + Send;
}

#[derive(serde::Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
}

impl StartForm for EmailForm {
    const CHANGE: Change = Change::Merge;
    async fn start(
        &self,
        state: &AppState,
        client: &Client,
        visitor: &Visitor,
    ) -> AccountResult<Started> {
        service::merge_start(state, client, &self.email, visitor).await
    }
}

#[derive(serde::Deserialize)]
pub struct PinChangeForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    pin: String,
    #[serde(default)]
    confirm: String,
}

impl StartForm for PinChangeForm {
    const CHANGE: Change = Change::Pin;
    async fn start(
        &self,
        state: &AppState,
        client: &Client,
        visitor: &Visitor,
    ) -> AccountResult<Started> {
        service::pin_change_start(
            state,
            client,
            &self.current,
            &self.pin,
            &self.confirm,
            visitor,
        )
        .await
    }
}

#[derive(serde::Deserialize)]
pub struct EmailChangeForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    email: String,
}

impl StartForm for EmailChangeForm {
    const CHANGE: Change = Change::Email;
    async fn start(
        &self,
        state: &AppState,
        client: &Client,
        visitor: &Visitor,
    ) -> AccountResult<Started> {
        service::email_change_start(state, client, &self.current, &self.email, visitor).await
    }
}

/// The pages of the three changes: the code page (GET) and its form (POST) at the
/// change's path, and its verify and resend buttons.
pub fn add_changes(route: Route) -> Route {
    let route = add_change::<EmailForm>(route);
    let route = add_change::<PinChangeForm>(route);
    add_change::<EmailChangeForm>(route)
}

fn add_change<F: StartForm>(route: Route) -> Route {
    let change = F::CHANGE;
    let flow = change.flow();
    route
        .at(
            flow.path,
            get(form).post(start::<F>::default()).data(change),
        )
        .at(flow.page.action, post(verify).data(change))
        .at(flow.page.resend, post(resend).data(change))
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
    resp.set_status(form_status(error.as_ref()));
    Ok(resp)
}

#[handler]
pub async fn page(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    settings_page(req, state, &who, None, q.notice.as_deref()).await
}

/// Shows the code page of the change in the cookie, or goes back to settings.
async fn code_page(
    req: &Request,
    state: &AppState,
    who: &ClientSession,
    change: Change,
    error: Option<String>,
    notice_key: Option<&str>,
) -> AppResult<Response> {
    let flow = change.flow();
    match user_error(codes::load(state, flow_token(req, state).as_deref(), flow.purpose).await)? {
        Ok(f) if f.client_id == Some(who.client.id) => {
            flow.page
                .render(req, state, Some(who), &f.email, error, notice_key)
        }
        _ => Ok(see_other("/security?notice=expired")),
    }
}

#[handler]
async fn start<F: StartForm>(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    CsrfForm(f): CsrfForm<F>,
) -> AppResult<Response> {
    match user_error(f.start(state, &who.client, &Visitor::of(req)).await)? {
        Ok(started) => {
            set_flow(req, state, &started.token);
            Ok(see_other(F::CHANGE.flow().path))
        }
        Err(message) => settings_page(req, state, &who, Some((F::CHANGE, message)), None).await,
    }
}

#[handler]
async fn form(
    req: &Request,
    Data(state): Data<&AppState>,
    Data(change): Data<&Change>,
    who: ClientSession,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    code_page(req, state, &who, *change, None, q.notice.as_deref()).await
}

#[handler]
async fn verify(
    req: &Request,
    Data(state): Data<&AppState>,
    Data(change): Data<&Change>,
    who: ClientSession,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    let visitor = Visitor::of(req);
    match (change.finish(state, &who.client, token.as_deref(), &f.code, &visitor)).await {
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
            let taken = Some((*change, AccountError::EmailTaken.to_string()));
            settings_page(req, state, &who, taken, None).await
        }
        Err(e) => code_page(req, state, &who, *change, Some(message(e)?), None).await,
    }
}

#[handler]
async fn resend(
    req: &Request,
    Data(state): Data<&AppState>,
    Data(change): Data<&Change>,
    who: ClientSession,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    let flow = change.flow();
    let visitor = Visitor::of(req);
    let sent = service::resend(state, &who.client, token.as_deref(), flow.purpose, &visitor);
    match user_error(sent.await)? {
        Ok(_) => Ok(see_other(&format!("{}?notice=code-sent", flow.path))),
        Err(message) => code_page(req, state, &who, *change, Some(message), None).await,
    }
}

// ---- devices and sessions ----

#[handler]
pub async fn revoke_device(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    if !service::revoke_device(state, &who.client, &id, &Visitor::of(req)).await? {
        return Err(crate::error::AppError::NotFound);
    }
    Ok(see_other("/security?notice=device-revoked"))
}

#[handler]
pub async fn end_other_sessions(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    service::end_other_sessions(state, &who.client, &who.token, &Visitor::of(req)).await?;
    Ok(see_other("/security?notice=sessions-ended"))
}
