//! Staff area pages (under `/staff`) and the public "Request a portal" page.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{FromRequest, Request, RequestBody, Response, Route, get, handler, post};

use super::repo::Staff;
use crate::accounts::routes::{
    Empty, NoticeQuery, clear_flow, flow_token, message, notice, public_page, see_other, set_flow,
    user_error,
};
use crate::accounts::session::{self, Subject};
use crate::accounts::{AccountError, invite};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::infra::audit::Actor;
use crate::infra::web::csrf::CsrfForm;
use crate::infra::web::page::{self, cookie};
use crate::infra::web::{Visitor, client_ip};

/// Routes under `/staff`.
pub fn routes() -> Route {
    crate::documents::staff_routes::add(Route::new())
        .at("/", get(home))
        .at("/signin", get(signin_form).post(signin))
        .at("/totp", get(totp_form).post(totp))
        .at("/signout", post(signout))
        .at(
            "/clients",
            get(crate::documents::staff_routes::clients).post(invite_client),
        )
        .at("/clients/resend", post(resend_invitation))
        .at("/requests/:id/invite", post(invite_request))
        .at("/requests/:id/dismiss", post(dismiss_request))
}

/// Public routes of this capability.
pub fn add_public(route: Route) -> Route {
    route.at("/request-portal", get(request_form).post(request_submit))
}

/// A signed-in staff member. Client sessions never pass.
pub struct StaffSession {
    pub staff: Staff,
    pub token: String,
    /// Unread notifications, shown beside Inbox on every staff page.
    pub unread: i64,
}

impl<'a> FromRequest<'a> for StaffSession {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = req
            .data::<AppState>()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("no state")))?;
        let sign_in = || AppError::SignInRequired {
            next: "/".into(),
            staff: true,
        };
        let Some(token) = cookie(req, &state.web.cookies.staff_session) else {
            return Err(sign_in().into());
        };
        let Some((Subject::Staff(id), _)) = session::resolve(state, Some(&token)).await? else {
            return Err(sign_in().into());
        };
        let staff = super::staff_by_id(state, id).await.map_err(into_app)?;
        match staff {
            Some(staff) if staff.disabled_at.is_none() => {
                let unread = crate::documents::publish::unread_notifications(state).await?;
                Ok(StaffSession {
                    staff,
                    token,
                    unread,
                })
            }
            _ => Err(sign_in().into()),
        }
    }
}

fn into_app(e: AccountError) -> AppError {
    match e {
        AccountError::Internal(e) => e,
        other => AppError::BadRequest(other.to_string()),
    }
}

pub fn staff_page(
    req: &Request,
    state: &AppState,
    who: &StaffSession,
    template: &str,
    status: StatusCode,
    ctx: minijinja::Value,
) -> AppResult<Response> {
    let staff = context! { name => who.staff.name.clone(), email => who.staff.email.clone(), unread => who.unread };
    Ok(page::render(
        req,
        &state.renderer,
        template,
        status,
        context! { staff, ..ctx },
    )?)
}

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
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let notice = match notice_key {
        Some("expired") => Some("That step expired. Please sign in again."),
        Some("signed-out") => Some("You have signed out."),
        _ => None,
    };
    public_page(
        req,
        state,
        "staff/signin.html",
        status,
        context! { email, error, notice, staff_area => true },
    )
}

#[handler]
async fn signin_form(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    signin_page(req, state, "", None, q.notice.as_deref())
}

#[handler]
async fn signin(
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
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let (secret, qr) = match factor.enrol {
        Some(e) => (Some(e.secret), Some(e.qr_svg)),
        None => (None, None),
    };
    public_page(
        req,
        state,
        "staff/totp.html",
        status,
        context! { email => factor.staff.email, secret, qr_svg => qr.map(minijinja::Value::from_safe_string), error, staff_area => true },
    )
}

#[handler]
async fn totp_form(req: &Request, Data(state): Data<&AppState>) -> AppResult<Response> {
    totp_page(req, state, None).await
}

#[derive(serde::Deserialize)]
pub struct TotpForm {
    #[serde(default)]
    code: String,
}

#[handler]
async fn totp(
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
            let c = &state.web.cookies;
            req.cookie().add(c.make(&c.staff_session, &token, None));
            Ok(see_other("/staff"))
        }
        Err(AccountError::FlowExpired) => Ok(see_other("/staff/signin?notice=expired")),
        Err(e) => totp_page(req, state, Some(message(e)?)).await,
    }
}

#[handler]
async fn signout(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let actor = crate::infra::audit::Actor::Staff(who.staff.public_id.clone());
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
    let clients = invite::list_clients(state).await.map_err(into_app)?;
    let requests = super::open_requests(state).await.map_err(into_app)?;
    let status = if msgs.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
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
async fn home(
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
async fn invite_client(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    CsrfForm(f): CsrfForm<InviteForm>,
) -> AppResult<Response> {
    let actor = Actor::Staff(who.staff.public_id.clone());
    match user_error(invite::invite_client(state, &f.name, &f.email, actor, &client_ip(req)).await)?
    {
        Ok(_) => Ok(see_other("/staff?notice=invited")),
        Err(error) => {
            home_page(
                req,
                state,
                &who,
                HomeMessages {
                    error: Some(error),
                    ..Default::default()
                },
            )
            .await
        }
    }
}

#[derive(serde::Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    email: String,
}

#[handler]
async fn resend_invitation(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    CsrfForm(f): CsrfForm<ResendForm>,
) -> AppResult<Response> {
    let actor = Actor::Staff(who.staff.public_id.clone());
    match user_error(invite::resend_invitation(state, &f.email, actor, &client_ip(req)).await)? {
        Ok(_) => Ok(see_other("/staff?notice=reinvited")),
        Err(error) => {
            home_page(
                req,
                state,
                &who,
                HomeMessages {
                    error: Some(error),
                    ..Default::default()
                },
            )
            .await
        }
    }
}

async fn handle(
    req: &Request,
    state: &AppState,
    who: &StaffSession,
    id: &str,
    invite: bool,
) -> AppResult<Response> {
    match user_error(super::handle_request(state, &who.staff, id, invite, &client_ip(req)).await)? {
        Ok(()) => Ok(see_other("/staff?notice=handled")),
        Err(error) => {
            home_page(
                req,
                state,
                who,
                HomeMessages {
                    error: Some(error),
                    ..Default::default()
                },
            )
            .await
        }
    }
}

#[handler]
async fn invite_request(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    handle(req, state, &who, &id, true).await
}

#[handler]
async fn dismiss_request(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    handle(req, state, &who, &id, false).await
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
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = context! {
        name => f.map(|f| f.name.clone()), email => f.map(|f| f.email.clone()),
        phone => f.map(|f| f.phone.clone()), message => f.map(|f| f.message.clone()),
        error, notice => notice(notice_key),
    };
    public_page(req, state, "request_portal.html", status, ctx)
}

#[handler]
async fn request_form(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    request_page(req, state, None, None, q.notice.as_deref())
}

#[handler]
async fn request_submit(
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
