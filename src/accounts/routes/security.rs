//! S5 Security Settings pages.

use minijinja::context;
use poem::web::{Data, Path, Query};
use poem::{Request, Response, handler};

use super::{
    ClientSession, CodeForm, CodePage, Empty, NoticeQuery, clear_flow, client_page, flow_token,
    form_status, message, notice, see_other, set_device, set_flow, set_session, user_error,
};
use crate::accounts::codes::{self, Purpose};
use crate::accounts::settings as service;
use crate::error::AppResult;
use crate::infra::web::Visitor;
use crate::infra::web::csrf::CsrfForm;
use crate::infra::web::page::cookie;
use crate::state::AppState;

const MERGE_CODE: CodePage = CodePage {
    title: "Verify the other address",
    intro: "We sent a 6-digit access code to",
    action: "/security/merge/verify",
    resend: "/security/merge/resend",
    button: "Verify Code",
    cancel: "/security",
    help: "merge-emails",
};

const PIN_CODE: CodePage = CodePage {
    title: "Confirm your new PIN",
    intro: "To confirm it is you, we sent a 6-digit access code to",
    action: "/security/pin/verify",
    resend: "/security/pin/resend",
    button: "Confirm",
    cancel: "/security",
    help: "update-pin",
};

const EMAIL_CODE: CodePage = CodePage {
    title: "Verify your new email",
    intro: "We sent a 6-digit access code to",
    action: "/security/email/verify",
    resend: "/security/email/resend",
    button: "Confirm",
    cancel: "/security",
    help: "update-email",
};

#[derive(serde::Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
}

#[derive(serde::Deserialize)]
pub struct EmailChangeForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    email: String,
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

/// Which form on the page a message belongs to.
#[derive(Default)]
struct Errors {
    merge: Option<String>,
    pin: Option<String>,
    email: Option<String>,
}

async fn settings_page(
    req: &Request,
    state: &AppState,
    who: &ClientSession,
    errors: Errors,
    notice_key: Option<&str>,
) -> AppResult<Response> {
    let device = cookie(req, &state.web.cookies.device);
    let overview = service::overview(state, who.client.id, &who.token, device.as_deref()).await?;
    let failed = (errors.merge.as_ref())
        .or(errors.pin.as_ref())
        .or(errors.email.as_ref())
        .cloned();
    let ctx = context! {
        overview => minijinja::Value::from(minijinja::value::Serde(&overview)),
        merge_error => errors.merge, pin_error => errors.pin, email_error => errors.email,
        notice => notice(notice_key),
    };
    let mut resp = client_page(req, state, who, "security.html", ctx)?;
    resp.set_status(form_status(&failed));
    Ok(resp)
}

#[handler]
pub async fn page(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    settings_page(req, state, &who, Errors::default(), q.notice.as_deref()).await
}

/// Shows a settings code page for the flow in the cookie, or goes back to settings.
async fn code_page(
    req: &Request,
    state: &AppState,
    who: &ClientSession,
    spec: &CodePage,
    purpose: Purpose,
    error: Option<String>,
    notice_key: Option<&str>,
) -> AppResult<Response> {
    match user_error(codes::load(state, flow_token(req, state).as_deref(), purpose).await)? {
        Ok(flow) if flow.client_id == Some(who.client.id) => {
            spec.render(req, state, Some(who), &flow.email, error, notice_key)
        }
        _ => Ok(see_other("/security?notice=expired")),
    }
}

// ---- Merge Emails ----

#[handler]
pub async fn merge_start(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    CsrfForm(f): CsrfForm<EmailForm>,
) -> AppResult<Response> {
    match user_error(service::merge_start(state, &who.client, &f.email, &Visitor::of(req)).await)? {
        Ok(started) => {
            set_flow(req, state, &started.token);
            Ok(see_other("/security/merge"))
        }
        Err(message) => {
            settings_page(
                req,
                state,
                &who,
                Errors {
                    merge: Some(message),
                    ..Default::default()
                },
                None,
            )
            .await
        }
    }
}

#[handler]
pub async fn merge_form(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    code_page(
        req,
        state,
        &who,
        &MERGE_CODE,
        Purpose::Merge,
        None,
        q.notice.as_deref(),
    )
    .await
}

#[handler]
pub async fn merge_verify(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match service::merge_finish(
        state,
        &who.client,
        token.as_deref(),
        &f.code,
        &Visitor::of(req),
    )
    .await
    {
        Ok(_) => {
            clear_flow(req, state);
            Ok(see_other("/security?notice=email-merged"))
        }
        Err(crate::accounts::AccountError::EmailTaken) => {
            clear_flow(req, state);
            let message = crate::accounts::AccountError::EmailTaken.to_string();
            settings_page(
                req,
                state,
                &who,
                Errors {
                    merge: Some(message),
                    ..Default::default()
                },
                None,
            )
            .await
        }
        Err(e) => {
            code_page(
                req,
                state,
                &who,
                &MERGE_CODE,
                Purpose::Merge,
                Some(message(e)?),
                None,
            )
            .await
        }
    }
}

#[handler]
pub async fn merge_resend(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match user_error(
        service::merge_resend(state, &who.client, token.as_deref(), &Visitor::of(req)).await,
    )? {
        Ok(_) => Ok(see_other("/security/merge?notice=code-sent")),
        Err(message) => {
            code_page(
                req,
                state,
                &who,
                &MERGE_CODE,
                Purpose::Merge,
                Some(message),
                None,
            )
            .await
        }
    }
}

// ---- Update PIN ----

#[handler]
pub async fn pin_start(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    CsrfForm(f): CsrfForm<PinChangeForm>,
) -> AppResult<Response> {
    match user_error(
        service::pin_change_start(
            state,
            &who.client,
            &f.current,
            &f.pin,
            &f.confirm,
            &Visitor::of(req),
        )
        .await,
    )? {
        Ok(started) => {
            set_flow(req, state, &started.token);
            Ok(see_other("/security/pin"))
        }
        Err(message) => {
            settings_page(
                req,
                state,
                &who,
                Errors {
                    pin: Some(message),
                    ..Default::default()
                },
                None,
            )
            .await
        }
    }
}

#[handler]
pub async fn pin_form(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    code_page(
        req,
        state,
        &who,
        &PIN_CODE,
        Purpose::PinChange,
        None,
        q.notice.as_deref(),
    )
    .await
}

#[handler]
pub async fn pin_verify(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match user_error(
        service::pin_change_finish(
            state,
            &who.client,
            token.as_deref(),
            &f.code,
            &Visitor::of(req),
        )
        .await,
    )? {
        Ok(renewed) => {
            clear_flow(req, state);
            set_session(req, state, &renewed.session_token);
            set_device(req, state, &renewed.device_token);
            Ok(see_other("/security?notice=pin-changed"))
        }
        Err(message) => {
            code_page(
                req,
                state,
                &who,
                &PIN_CODE,
                Purpose::PinChange,
                Some(message),
                None,
            )
            .await
        }
    }
}

#[handler]
pub async fn pin_resend(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match user_error(
        service::pin_change_resend(state, &who.client, token.as_deref(), &Visitor::of(req)).await,
    )? {
        Ok(_) => Ok(see_other("/security/pin?notice=code-sent")),
        Err(message) => {
            code_page(
                req,
                state,
                &who,
                &PIN_CODE,
                Purpose::PinChange,
                Some(message),
                None,
            )
            .await
        }
    }
}

// ---- Update Email ID ----

#[handler]
pub async fn email_start(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    CsrfForm(f): CsrfForm<EmailChangeForm>,
) -> AppResult<Response> {
    match user_error(
        service::email_change_start(state, &who.client, &f.current, &f.email, &Visitor::of(req))
            .await,
    )? {
        Ok(started) => {
            set_flow(req, state, &started.token);
            Ok(see_other("/security/email"))
        }
        Err(message) => {
            settings_page(
                req,
                state,
                &who,
                Errors {
                    email: Some(message),
                    ..Default::default()
                },
                None,
            )
            .await
        }
    }
}

#[handler]
pub async fn email_form(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    code_page(
        req,
        state,
        &who,
        &EMAIL_CODE,
        Purpose::EmailChange,
        None,
        q.notice.as_deref(),
    )
    .await
}

#[handler]
pub async fn email_verify(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match service::email_change_finish(
        state,
        &who.client,
        token.as_deref(),
        &f.code,
        &Visitor::of(req),
    )
    .await
    {
        Ok(_) => {
            clear_flow(req, state);
            Ok(see_other("/security?notice=email-changed"))
        }
        Err(crate::accounts::AccountError::EmailTaken) => {
            clear_flow(req, state);
            let message = crate::accounts::AccountError::EmailTaken.to_string();
            settings_page(
                req,
                state,
                &who,
                Errors {
                    email: Some(message),
                    ..Default::default()
                },
                None,
            )
            .await
        }
        Err(e) => {
            code_page(
                req,
                state,
                &who,
                &EMAIL_CODE,
                Purpose::EmailChange,
                Some(message(e)?),
                None,
            )
            .await
        }
    }
}

#[handler]
pub async fn email_resend(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match user_error(
        service::email_change_resend(state, &who.client, token.as_deref(), &Visitor::of(req)).await,
    )? {
        Ok(_) => Ok(see_other("/security/email?notice=code-sent")),
        Err(message) => {
            code_page(
                req,
                state,
                &who,
                &EMAIL_CODE,
                Purpose::EmailChange,
                Some(message),
                None,
            )
            .await
        }
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
