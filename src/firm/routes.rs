//! Staff area pages (under `/staff`) and the public "Request a portal" page.

use minijinja::context;
use poem::web::{Data, Path, Query};
use poem::{Request, Response, handler};

use crate::accounts::session;
use crate::accounts::{AccountError, invite};
use crate::error::{AppResult, UserFacing};
use crate::infra::web::csrf::{self, CsrfForm};
use crate::infra::web::{Visitor, client_ip};
use crate::state::AppState;
use crate::web::{
    Empty, NoticeQuery, StaffSession, bad_request, clear_flow, flow_token, form_status, message,
    notice, public_form, see_other, set_flow, staff_page, user_error,
};

#[derive(serde::Deserialize)]
pub struct SigninForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

fn signin_page(
    req: &Request,
    state: &AppState,
    email: &str,
    error: Option<String>,
    notice_key: Option<&str>,
) -> AppResult<Response> {
    let notice = match notice_key {
        Some("expired") => Some("That step expired. Please sign in again."),
        Some("signed-out") => Some("You have signed out."),
        _ => None,
    };
    let ctx = context! { email, notice, staff_area => true };
    public_form(req, state, "staff/signin.html", error, ctx)
}

#[handler]
pub async fn signin_form(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    signin_page(req, state, "", None, q.notice.as_deref())
}

#[handler]
pub async fn signin(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<SigninForm>,
) -> AppResult<Response> {
    match user_error(super::signin_password(state, &f.email, &f.password, &Visitor::of(req)).await)?
    {
        Ok((started, _)) => {
            set_flow(req, state, &started.token);
            Ok(see_other("/staff/totp"))
        }
        Err(message) => signin_page(req, state, &f.email, Some(message), None),
    }
}

async fn totp_page(req: &Request, state: &AppState, error: Option<String>) -> AppResult<Response> {
    let factor = match super::second_factor(state, flow_token(req, state).as_deref()).await {
        Ok(f) => f,
        Err(AccountError::Internal(e)) => return Err(e),
        Err(_) => return Ok(see_other("/staff/signin?notice=expired")),
    };
    let (secret, qr) = match factor.enrol {
        Some(e) => (Some(e.secret), Some(e.qr_svg)),
        None => (None, None),
    };
    let ctx = context! { email => factor.staff.email, secret, qr_svg => qr.map(minijinja::Value::from_safe_string), staff_area => true };
    public_form(req, state, "staff/totp.html", error, ctx)
}

#[handler]
pub async fn totp_form(req: &Request, Data(state): Data<&AppState>) -> AppResult<Response> {
    totp_page(req, state, None).await
}

#[derive(serde::Deserialize)]
pub struct TotpForm {
    #[serde(default)]
    code: String,
}

#[handler]
pub async fn totp(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<TotpForm>,
) -> AppResult<Response> {
    match super::signin_totp(
        state,
        flow_token(req, state).as_deref(),
        &f.code,
        &Visitor::of(req),
    )
    .await
    {
        Ok(token) => {
            clear_flow(req, state);
            csrf::rotate_browser_id(req);
            let c = &state.web.cookies;
            req.cookie().add(c.make(&c.staff_session, &token, None));
            Ok(see_other("/staff"))
        }
        Err(AccountError::FlowExpired) => Ok(see_other("/staff/signin?notice=expired")),
        Err(e) => totp_page(req, state, Some(message(e)?)).await,
    }
}

#[handler]
pub async fn signout(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let actor = who.staff.actor();
    session::end(
        state,
        &who.token,
        actor,
        &who.staff.email,
        &Visitor::of(req),
    )
    .await?;
    let c = &state.web.cookies;
    req.cookie().add(c.expire(&c.staff_session));
    csrf::rotate_browser_id(req);
    Ok(see_other("/staff/signin?notice=signed-out"))
}

#[derive(Default)]
struct HomeMessages {
    error: Option<String>,
    notice: Option<String>,
}

async fn home_page(
    req: &Request,
    state: &AppState,
    who: &StaffSession,
    msgs: HomeMessages,
) -> AppResult<Response> {
    let clients = invite::list_clients(state).await.map_err(bad_request)?;
    let requests = super::open_requests(state).await.map_err(bad_request)?;
    let status = form_status(&msgs.error);
    let mail = mail_panel(state).await?;
    let ctx = context! {
        clients => minijinja::Value::from(minijinja::value::Serde(&clients)),
        requests => minijinja::Value::from(minijinja::value::Serde(&requests)),
        mail => minijinja::Value::from(minijinja::value::Serde(&mail)),
        error => msgs.error, notice => msgs.notice,
    };
    staff_page(req, state, who, "staff/home.html", status, ctx)
}

/// The mail worker's health, for the panel on the staff home page.
#[derive(serde::Serialize)]
struct MailPanel {
    pending: i64,
    oldest_age: Option<String>,
    last_error: Option<String>,
    last_error_at: Option<i64>,
    /// Mail went out after the last error.
    recovered: bool,
    failed: i64,
    dropped: i64,
}

async fn mail_panel(state: &AppState) -> AppResult<MailPanel> {
    let h = crate::infra::mail::health(&state.db).await?;
    Ok(MailPanel {
        pending: h.pending,
        oldest_age: h.oldest_pending_at.map(crate::infra::mail::age),
        recovered: matches!((h.last_sent_at, h.last_error_at), (Some(s), Some(e)) if s >= e),
        last_error: h.last_error,
        last_error_at: h.last_error_at,
        failed: h.failed,
        dropped: h.dropped,
    })
}

#[handler]
pub async fn home(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    let notice = match q.notice.as_deref() {
        Some("invited") => Some("The client was invited by email.".to_string()),
        Some("reinvited") => Some("The invitation was sent again.".to_string()),
        Some("handled") => Some("The request was handled.".to_string()),
        _ => None,
    };
    home_page(
        req,
        state,
        &who,
        HomeMessages {
            notice,
            ..Default::default()
        },
    )
    .await
}

#[derive(serde::Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
}

#[handler]
pub async fn invite_client(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    CsrfForm(f): CsrfForm<InviteForm>,
) -> AppResult<Response> {
    let actor = who.staff.actor();
    let invited = invite::invite_client(state, &f.name, &f.email, actor, &client_ip(req)).await;
    after_action(req, state, &who, invited, "/staff?notice=invited").await
}

#[derive(serde::Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    email: String,
}

#[handler]
pub async fn resend_invitation(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    CsrfForm(f): CsrfForm<ResendForm>,
) -> AppResult<Response> {
    let actor = who.staff.actor();
    let sent = invite::resend_invitation(state, &f.email, actor, &client_ip(req)).await;
    after_action(req, state, &who, sent, "/staff?notice=reinvited").await
}

/// After a staff action on the home page: its notice, or the home page again with
/// what went wrong.
async fn after_action<T, E: UserFacing>(
    req: &Request,
    state: &AppState,
    who: &StaffSession,
    done: Result<T, E>,
    notice: &str,
) -> AppResult<Response> {
    match user_error(done)? {
        Ok(_) => Ok(see_other(notice)),
        Err(error) => {
            let messages = HomeMessages {
                error: Some(error),
                ..Default::default()
            };
            home_page(req, state, who, messages).await
        }
    }
}

/// What staff do with a portal request; the route data of [`handle_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestAction {
    /// Invite the sender to a portal.
    Invite,
    Dismiss,
}

/// "Invite" or "Dismiss" on a portal request.
#[handler]
pub async fn handle_request(
    req: &Request,
    Data(state): Data<&AppState>,
    Data(action): Data<&RequestAction>,
    who: StaffSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let (ip, invite) = (client_ip(req), *action == RequestAction::Invite);
    let handled = super::handle_request(state, &who.staff, &id, invite, &ip).await;
    after_action(req, state, &who, handled, "/staff?notice=handled").await
}

// ---- S3b: Request a portal ----

#[derive(serde::Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    message: String,
}

fn request_page(
    req: &Request,
    state: &AppState,
    f: Option<&RequestForm>,
    error: Option<String>,
    notice_key: Option<&str>,
) -> AppResult<Response> {
    let ctx = context! {
        name => f.map(|f| f.name.clone()), email => f.map(|f| f.email.clone()),
        phone => f.map(|f| f.phone.clone()), message => f.map(|f| f.message.clone()),
        notice => notice(notice_key),
    };
    public_form(req, state, "request_portal.html", error, ctx)
}

#[handler]
pub async fn request_form(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    request_page(req, state, None, None, q.notice.as_deref())
}

#[handler]
pub async fn request_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<RequestForm>,
) -> AppResult<Response> {
    match user_error(
        super::request_portal(
            state,
            &f.name,
            &f.email,
            &f.phone,
            &f.message,
            &Visitor::of(req),
        )
        .await,
    )? {
        Ok(()) => Ok(see_other("/request-portal?notice=request-sent")),
        Err(error) => request_page(req, state, Some(&f), Some(error), None),
    }
}
