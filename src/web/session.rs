//! Who is making a request: the signed-in client or staff member, from the
//! session cookie. Without a session the visitor is sent to the right sign-in page.

use poem::{FromRequest, Request, RequestBody};

use crate::accounts::Client;
use crate::accounts::session::{self, Subject};
use crate::error::{AppError, AppResult};
use crate::firm::Staff;
use crate::infra::web::page::cookie;
use crate::state::AppState;

/// A signed-in client, from the session cookie. Without one the visitor is sent to
/// sign in and brought back afterwards.
pub struct ClientSession {
    pub client: Client,
    pub token: String,
}

impl ClientSession {
    /// The signed-in client, if any, for pages that anyone may see.
    pub async fn optional(req: &Request, state: &AppState) -> AppResult<Option<Self>> {
        let Some(token) = cookie(req, &state.web.cookies.session) else {
            return Ok(None);
        };
        let Some((Subject::Client(id), _)) = session::resolve(state, Some(&token)).await? else {
            return Ok(None);
        };
        Ok(session::client(state, id)
            .await?
            .map(|client| ClientSession { client, token }))
    }
}

impl<'a> FromRequest<'a> for ClientSession {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = req
            .data::<AppState>()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("no state")))?;
        let sign_in = || {
            let next = match req.uri().query() {
                Some(q) if req.method() == poem::http::Method::GET => {
                    format!("{}?{q}", req.uri().path())
                }
                _ if req.method() == poem::http::Method::GET => req.uri().path().to_string(),
                _ => "/".to_string(),
            };
            AppError::SignInRequired { next, staff: false }
        };
        match ClientSession::optional(req, state).await? {
            Some(who) => Ok(who),
            None => Err(sign_in().into()),
        }
    }
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
        let staff = crate::firm::staff_by_id(state, id)
            .await
            .map_err(super::bad_request)?;
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
