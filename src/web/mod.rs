//! Shared HTTP glue for the capabilities' pages: who is signed in (client and
//! staff session extractors), rendering pages, redirects and cookies, the fixed
//! notices a redirect may ask for, and turning a capability's error into a
//! message on the page or an error response.
//!
//! It sits between the capabilities' services and their routes: it may call a
//! capability's service (to resolve a session), never its routes or repo.
//! Low-level machinery that knows nothing about capabilities (the server, CSRF,
//! cookies, security headers, the request log) stays in `infra::web`.

pub mod errors;
pub mod page;
pub mod session;

pub use errors::{bad_request, message, user_error};
pub use page::{
    Empty, NoticeQuery, clear_flow, client_page, flow_token, form_status, notice, public_form,
    public_page, see_other, set_device, set_flow, set_session, staff_page,
};
pub use session::{ClientSession, StaffSession};
