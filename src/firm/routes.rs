//! Staff area pages (under `/staff`) and the public "Request a portal" page.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{EndpointExt, FromRequest, Request, RequestBody, Response, Route, get, handler, post};

use super::repo::Staff;
use crate::accounts::routes::{
    Empty, NoticeQuery, clear_flow, flow_token, form_status, message, notice, public_form,
    see_other, set_flow, user_error,
};
use crate::accounts::session::{self, Subject};
use crate::accounts::{AccountError, invite};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::infra::audit::Actor;
use crate::infra::web::csrf::{self, CsrfForm};
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
        .at(
            "/requests/:id/invite",
            post(handle_request).data(Invite(true)),
        )
        .at(
            "/requests/:id/dismiss",
            post(handle_request).data(Invite(false)),
        )
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
    let notice = match notice_key {
        Some("expired") => Some("That step expired. Please sign in again."),
        Some("signed-out") => Some("You have signed out."),
        _ => None,
    };
    let ctx = context! { email, notice, staff_area => true };
    public_form(req, state, "staff/signin.html", error, ctx)
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
    let (secret, qr) = match factor.enrol {
        Some(e) => (Some(e.secret), Some(e.qr_svg)),
        None => (None, None),
    };
    let ctx = context! { email => factor.staff.email, secret, qr_svg => qr.map(minijinja::Value::from_safe_string), staff_area => true };
    public_form(req, state, "staff/totp.html", error, ctx)
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
    let clients = invite::list_clients(state).await.map_err(into_app)?;
    let requests = super::open_requests(state).await.map_err(into_app)?;
    let status = form_status(msgs.error.as_ref());
    let ctx = context! {
        clients => minijinja::Value::from(minijinja::value::Serde(&clients)),
        requests => minijinja::Value::from(minijinja::value::Serde(&requests)),
        error => msgs.error, notice => msgs.notice,
    };
    staff_page(req, state, who, "staff/home.html", status, ctx)
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
    let invited = invite::invite_client(state, &f.name, &f.email, actor, &client_ip(req)).await;
    after_action(req, state, &who, invited, "/staff?notice=invited").await
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
    let sent = invite::resend_invitation(state, &f.email, actor, &client_ip(req)).await;
    after_action(req, state, &who, sent, "/staff?notice=reinvited").await
}

/// After a staff action on the home page: its notice, or the home page again with
/// what went wrong.
async fn after_action<T>(
    req: &Request,
    state: &AppState,
    who: &StaffSession,
    done: Result<T, AccountError>,
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

/// Whether staff invite the sender of a portal request, or dismiss it.
#[derive(Clone, Copy)]
struct Invite(bool);

#[handler]
async fn handle_request(
    req: &Request,
    Data(state): Data<&AppState>,
    Data(Invite(invite)): Data<&Invite>,
    who: StaffSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let ip = client_ip(req);
    let handled = super::handle_request(state, &who.staff, &id, *invite, &ip).await;
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
