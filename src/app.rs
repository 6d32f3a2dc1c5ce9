//! Composition root: every URL of the portal in one table, the list of
//! background jobs, and the middleware around them. Nothing else: handlers and
//! jobs live in their capabilities, the shared state in `state`.

use std::time::Duration;

use futures_util::future::BoxFuture;
use poem::middleware::CookieJarManager;
use poem::{Endpoint, EndpointExt, Response, Route, get, head, post};

use crate::config::Config;
use crate::infra::web::body_rate::MinBodyRate;
use crate::infra::web::csrf::csrf_guard;
use crate::infra::web::headers::security_headers;
use crate::infra::web::request_log::request_log;
use crate::state::AppState;
use crate::{accounts, documents, firm, home, tasks};

/// Every URL of the portal and the handler that serves it (the accounts pages
/// in `sign_in_and_up` and `security_settings`, the staff area in `staff`).
pub fn routes() -> Route {
    use documents::routes as docs;
    use firm::routes as firm;
    use home::routes as home;
    let route = Route::new()
        // H4, B3, O3: home, help, theme assets, brand, health
        .at("/", get(home::home))
        .at("/help", get(home::help))
        .at("/static/*path", get(home::asset))
        .at("/brand.css", get(home::brand_css))
        .at("/brand/logo", get(home::logo))
        .at("/healthz", get(home::health))
        // S3b: a visitor asks for a portal
        .at(
            "/request-portal",
            get(firm::request_form).post(firm::request_submit),
        );
    security_settings(sign_in_and_up(route))
        // D1–D6: the client's documents and resumable uploads. HEAD is routed
        // explicitly so that it reaches the handler as HEAD (poem would otherwise
        // run it as GET): it gets headers only and no audit entry.
        .at("/documents", get(docs::documents))
        .at("/documents/send", get(docs::send_page))
        .at(
            "/documents/:id/download",
            get(docs::download).head(docs::download),
        )
        .at("/documents/:id/view", get(docs::preview))
        .at(
            "/documents/:id/content",
            get(docs::content).head(docs::content),
        )
        .at("/documents/:id/delete", post(docs::delete))
        .at("/documents/:id/rename", post(docs::rename))
        .at("/uploads", post(docs::upload_create))
        .at(
            "/uploads/:id",
            head(docs::upload_head)
                .patch(docs::upload_patch)
                .delete(docs::upload_delete),
        )
        // H2, T1–T3: the client's tasks
        .at("/tasks/:id", get(tasks::routes::client::page))
        .at("/tasks/:id/save", post(tasks::routes::client::save))
        .at("/tasks/:id/upload", post(tasks::routes::client::upload))
        .at("/tasks/:id/submit", post(tasks::routes::client::submit))
        .at(
            "/tasks/:id/messages",
            post(tasks::routes::client::post_message),
        )
        .nest("/staff", staff())
}

/// S2–S4: sign-up, sign-in, Forgot PIN and sign-out.
fn sign_in_and_up(route: Route) -> Route {
    use accounts::routes::{signin, signup, steps};
    route
        // S3, S3a, S4: sign-in, forgotten PIN, sign-out. The code, resend and
        // new-PIN pages of sign-in, Forgot PIN and sign-up are shared handlers;
        // the route data (the flow's `Steps` or `PinPage`) says which flow.
        .at("/signin", get(signin::form).post(signin::start))
        .at("/signin/pin", get(signin::pin_form).post(signin::pin))
        .at(
            "/signin/code",
            get(steps::code_form)
                .post(signin::code)
                .data(signin::SIGNIN),
        )
        .at("/signin/resend", post(steps::resend).data(signin::SIGNIN))
        .at("/signin/forgot", post(signin::forgot))
        .at(
            "/signin/reset",
            get(steps::code_form)
                .post(steps::verify_before_pin)
                .data(signin::RESET),
        )
        .at(
            "/signin/reset/resend",
            post(steps::resend).data(signin::RESET),
        )
        .at(
            "/signin/reset/pin",
            get(steps::pin_form)
                .post(steps::set_pin)
                .data(signin::NEW_PIN),
        )
        .at("/signout", post(signin::signout))
        // S2: sign-up
        .at("/signup", get(signup::form).post(signup::start))
        .at(
            "/signup/verify",
            get(steps::code_form)
                .post(steps::verify_before_pin)
                .data(signup::SIGNUP),
        )
        .at("/signup/resend", post(steps::resend).data(signup::SIGNUP))
        .at(
            "/signup/pin",
            get(steps::pin_form)
                .post(steps::set_pin)
                .data(signup::CREATE_PIN),
        )
}

/// S5: Security Settings.
fn security_settings(route: Route) -> Route {
    use accounts::routes::security::{self, Change, EmailChangeForm, EmailForm, PinChangeForm};
    route
        // Merge Emails, Update PIN and Update Email ID are
        // one code-confirmed flow; the route data (`Change`) says which.
        .at("/security", get(security::page))
        .at(
            "/security/merge",
            get(security::form)
                .post(security::start::<EmailForm>::default())
                .data(Change::Merge),
        )
        .at(
            "/security/merge/verify",
            post(security::verify).data(Change::Merge),
        )
        .at(
            "/security/merge/resend",
            post(security::resend).data(Change::Merge),
        )
        .at(
            "/security/pin",
            get(security::form)
                .post(security::start::<PinChangeForm>::default())
                .data(Change::Pin),
        )
        .at(
            "/security/pin/verify",
            post(security::verify).data(Change::Pin),
        )
        .at(
            "/security/pin/resend",
            post(security::resend).data(Change::Pin),
        )
        .at(
            "/security/email",
            get(security::form)
                .post(security::start::<EmailChangeForm>::default())
                .data(Change::Email),
        )
        .at(
            "/security/email/verify",
            post(security::verify).data(Change::Email),
        )
        .at(
            "/security/email/resend",
            post(security::resend).data(Change::Email),
        )
        .at(
            "/security/devices/:id/revoke",
            post(security::revoke_device),
        )
        .at(
            "/security/sessions/end-others",
            post(security::end_other_sessions),
        )
}

/// The staff area, under `/staff` (handlers see the path without the prefix).
fn staff() -> Route {
    use crate::firm::routes::{self as firm, RequestAction};
    use documents::staff_routes as docs;
    use tasks::routes::staff as task;
    Route::new()
        // F1: staff sign-in with password and authenticator
        .at("/", get(firm::home))
        .at("/signin", get(firm::signin_form).post(firm::signin))
        .at("/totp", get(firm::totp_form).post(firm::totp))
        .at("/signout", post(firm::signout))
        // F2: clients, invitations, portal requests
        .at("/clients", get(docs::clients).post(firm::invite_client))
        .at("/clients/resend", post(firm::resend_invitation))
        .at("/clients/:id", get(docs::client_page))
        .at(
            "/requests/:id/invite",
            post(firm::handle_request).data(RequestAction::Invite),
        )
        .at(
            "/requests/:id/dismiss",
            post(firm::handle_request).data(RequestAction::Dismiss),
        )
        // F3, D7: publishing, the uploads inbox, notifications
        .at("/clients/:id/publish", post(docs::publish_files))
        .at("/inbox", get(docs::inbox))
        .at("/inbox/read", post(docs::mark_all_read))
        .at("/notifications/:id/open", post(docs::open_notification))
        .at(
            "/documents/:id/download",
            get(docs::download).head(docs::download),
        )
        .at("/documents/:id/saved", post(docs::mark_saved))
        // F3, T1–T3: assigning and reviewing tasks
        .at("/clients/:id/tasks", get(task::new_task).post(task::assign))
        .at("/tasks/:id", get(task::page))
        .at("/tasks/:id/export", get(task::export))
        .at("/tasks/:id/review", post(task::review))
        .at("/tasks/:id/reopen", post(task::reopen))
        .at(
            "/tasks/:id/cancel",
            post(task::finish).data(task::Finish::Cancel),
        )
        .at(
            "/tasks/:id/close",
            post(task::finish).data(task::Finish::Close),
        )
        .at("/tasks/:id/messages", post(task::post_message))
        .at(
            "/tasks/:id/settings",
            get(task::settings_form).post(task::revise),
        )
}

/// A background job, run by `crate::serve` beside the HTTP server.
pub struct Job {
    /// For the log.
    pub name: &'static str,
    pub schedule: Schedule,
}

/// A job's work, given the state.
pub type JobFuture = BoxFuture<'static, ()>;
/// Resolves when the portal shuts down.
pub type Shutdown = BoxFuture<'static, ()>;

pub enum Schedule {
    /// Once, at start. Not waited for at shutdown.
    AtStart(fn(AppState) -> JobFuture),
    /// At start and then every period (from the configuration); a pass under way
    /// finishes before shutdown.
    Every(fn(&Config) -> Duration, fn(AppState) -> JobFuture),
    /// Its own loop, which returns once the shutdown future resolves.
    Worker(fn(AppState, Shutdown) -> JobFuture),
}

/// How often the expired and abandoned leftovers are removed.
const HOUSEKEEPING: Duration = Duration::from_secs(300);

/// Every background job of the portal.
pub fn jobs() -> Vec<Job> {
    let job = |name, schedule| Job { name, schedule };
    vec![
        job(
            "mail delivery",
            Schedule::Worker(|state, stop| Box::pin(state.mailer.clone().run(stop))),
        ),
        job(
            "batched staff upload notices",
            Schedule::Worker(|state, stop| Box::pin(documents::notify::run(state, stop))),
        ),
        job(
            "expired sessions, devices and sign-in flows",
            Schedule::Every(
                |_| HOUSEKEEPING,
                |state| Box::pin(accounts::session::remove_expired(state)),
            ),
        ),
        job(
            "old mail history",
            Schedule::Every(
                |_| HOUSEKEEPING,
                |state| Box::pin(async move { state.mailer.forget_old_history().await }),
            ),
        ),
        job(
            "abandoned uploads",
            Schedule::Every(
                |_| HOUSEKEEPING,
                |state| Box::pin(documents::jobs::sweep_uploads(state)),
            ),
        ),
        job(
            "document retention (D9)",
            Schedule::Every(
                |config| {
                    Duration::from_secs(u64::from(config.retention.run_every_minutes.get()) * 60)
                },
                |state| Box::pin(documents::jobs::retention(state)),
            ),
        ),
        job(
            "task due-date reminders",
            Schedule::Every(
                |_| HOUSEKEEPING,
                |state| Box::pin(tasks::reminders::run(state)),
            ),
        ),
        job(
            "search index repair",
            Schedule::AtStart(|state| Box::pin(documents::jobs::repair_index(state))),
        ),
    ]
}

/// The whole HTTP application.
pub fn build(state: AppState) -> impl Endpoint<Output = Response> {
    let error_state = state.clone();
    routes()
        .around(csrf_guard)
        .catch_all_error(move |err| {
            let state = error_state.clone();
            async move { crate::error::error_page(&state, err) }
        })
        .with(MinBodyRate {
            grace: Duration::from_secs(u64::from(state.config.server.body_timeout_seconds.get())),
            min_bytes_per_second: state.config.server.body_min_bytes_per_second,
        })
        .with(CookieJarManager::new())
        .around(security_headers)
        .around(request_log)
        .data(state.key.clone())
        .data(state.web.clone())
        .data(state)
        .map_to_response()
}
