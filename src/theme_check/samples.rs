//! Sample contexts for every page and email, shaped as their handlers shape them:
//! the same view structs where the handler serialises one, the same keys otherwise,
//! and what `page::render`, `client_page` and `staff_page` add around them. Where a
//! template branches on something (an error, an empty list, a signed-in user), there
//! is a sample for each side.

use minijinja::context;
use minijinja::value::{Serde, Value};

use super::Sample;
use crate::accounts::repo::{Client, ClientEmail, Device, SessionInfo};
use crate::accounts::settings::Overview;
use crate::documents::repo::Notification;
use crate::documents::{DocView, FolderView};
use crate::firm::repo::PortalRequest;

mod tasks;

const ERROR: &str = "That is not a valid email address.";
const JAN_1: i64 = 1_767_225_600;
const JAN_2: i64 = 1_767_312_000;

fn sample(template: &'static str, label: &'static str, context: Value) -> Sample {
    Sample {
        template,
        label,
        context,
    }
}

/// What `page::render` adds to every page.
fn page(path: &str, ctx: Value) -> Value {
    context! { csrf => "sample-csrf-token", path, ..ctx }
}

/// What `client_page` adds: the signed-in client.
fn client_page(path: &str, ctx: Value) -> Value {
    let user = context! { name => "Jane Doe", email => "jane@example.com" };
    page(path, context! { user, ..ctx })
}

/// What `staff_page` adds: the signed-in staff member.
fn staff_page(path: &str, ctx: Value) -> Value {
    let staff = context! { name => "Sam Smith", email => "sam@smithlee.example", unread => 2 };
    page(path, context! { staff, ..ctx })
}

/// Every page with the context its handler gives it.
pub fn pages() -> Vec<Sample> {
    [
        signin(),
        signup(),
        code(),
        new_pin(),
        request_portal(),
        plain_pages(),
        documents(),
        preview(),
        security(),
        staff_public(),
        staff_home(),
        staff_clients(),
        staff_inbox(),
        tasks::pages(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn signin() -> Vec<Sample> {
    let blank = context! { email => "", next => "", error => None::<&str>, notice => None::<&str> };
    let failed = context! {
        email => "jane@", next => "/documents", error => ERROR, notice => "You have signed out.",
    };
    let pin = context! { email => "jane@example.com", error => "That PIN is not right." };
    vec![
        sample("signin.html", "as first shown", page("/signin", blank)),
        sample("signin.html", "with an error", page("/signin", failed)),
        sample("pin.html", "with an error", page("/signin/pin", pin)),
    ]
}

fn signup() -> Vec<Sample> {
    let failed = context! { name => "Jane Doe", email => "jane@", error => ERROR, notice => "" };
    vec![sample(
        "signup.html",
        "with an error",
        page("/signup", failed),
    )]
}

/// `CodePage::render`, public and signed in.
fn code() -> Vec<Sample> {
    let code = |action: &str, error: Option<&str>| {
        context! {
            title => "Check your email", intro => "We sent a 6-digit access code to",
            action, resend => "/signin/resend", button => "Confirm", cancel => "/signin",
            help => "signing-in", email => "jane@example.com", minutes => 10, error,
            notice => error.is_none().then_some("We sent a new code."),
        }
    };
    let wrong = Some("That code is not right.");
    vec![
        sample(
            "code.html",
            "for signing in",
            page("/signin/code", code("/signin/code", None)),
        ),
        sample(
            "code.html",
            "with an error",
            page("/signup/verify", code("/signup/verify", wrong)),
        ),
        sample(
            "code.html",
            "signed in",
            client_page("/security/pin/verify", code("/security/pin/verify", wrong)),
        ),
    ]
}

fn new_pin() -> Vec<Sample> {
    let ctx = |create: bool, error: Option<&str>| {
        context! {
            title => "Create your PIN", action => "/signup/pin", button => "Create Account",
            help => "signing-up", error, create,
        }
    };
    let mismatch = Some("The PINs do not match.");
    vec![
        sample(
            "new_pin.html",
            "for a new account",
            page("/signup/pin", ctx(true, None)),
        ),
        sample(
            "new_pin.html",
            "with an error",
            page("/signin/reset/pin", ctx(false, mismatch)),
        ),
    ]
}

fn request_portal() -> Vec<Sample> {
    let form = context! {
        name => "Jane Doe", email => "jane@", phone => "555-0199",
        message => "Please set up a portal for my 2025 return.", error => ERROR, notice => None::<&str>,
    };
    let sent = context! {
        name => None::<&str>, email => None::<&str>, phone => None::<&str>, message => None::<&str>,
        error => None::<&str>, notice => "Thank you. The firm will be in touch by email.",
    };
    vec![
        sample(
            "request_portal.html",
            "with an error",
            page("/request-portal", form),
        ),
        sample(
            "request_portal.html",
            "after sending",
            page("/request-portal", sent),
        ),
    ]
}

/// Help, notices, and the error page (which `error_page` renders without
/// `page::render`: no csrf or path).
fn plain_pages() -> Vec<Sample> {
    let not_found = context! {
        title => "Page not found", message => "We could not find that page.", status => 404,
        request_id => None::<&str>,
    };
    let failed = context! {
        title => "Something went wrong", message => "Something went wrong on our side.",
        status => 500, request_id => "r-3f9a1c",
    };
    let notice = context! { title => "Done", message => "Your request was sent." };
    vec![
        sample("help.html", "signed out", page("/help", context! {})),
        sample("help.html", "signed in", client_page("/help", context! {})),
        sample("error.html", "not found", not_found),
        sample("error.html", "server error", failed),
        sample("notice.html", "", page("/", notice)),
    ]
}

fn doc(id: &str, name: &str, status: (&'static str, &'static str), from_firm: bool) -> DocView {
    DocView {
        id: id.into(),
        name: name.into(),
        folder: "2025 / Returns".into(),
        size: "1.2 MB".into(),
        date: JAN_1,
        status: status.0,
        status_label: status.1,
        file_type: crate::documents::file_type(name),
        message: from_firm.then(|| "Please sign page 2.".to_string()),
        previewable: name.ends_with(".pdf"),
        from_firm,
        editable: !from_firm,
        saved: false,
    }
}

fn docs() -> Vec<DocView> {
    vec![
        doc("d1", "2025 Form 1040.pdf", ("new", "New"), true),
        doc(
            "d2",
            "W-2 Acme.pdf",
            ("uploaded", "Sent to the firm"),
            false,
        ),
    ]
}

fn documents() -> Vec<Sample> {
    let folders = vec![FolderView {
        name: "2025 / Returns".into(),
        documents: docs(),
    }];
    let searched = context! {
        q => "1040", from => "2025-01-01", to => "", status => vec!["new"], kind => vec!["pdf"],
        sort => "newest",
    };
    let all = context! {
        q => "", from => "", to => "", status => Vec::<&str>::new(), kind => Vec::<&str>::new(),
        sort => "",
    };
    let ctx = |folders: &[FolderView], filter: Value, filtered: bool| {
        let count = folders.len();
        let folders = Value::from(Serde(folders));
        let error = filtered.then_some(ERROR);
        let ctx =
            context! { folders, count, filter, filtered, error, notice => "The file was renamed." };
        client_page("/documents", ctx)
    };
    let send = context! {
        folders => vec!["Uploaded", "Bank statements"], max_file => "2.0 GB", max_files => 20,
    };
    vec![
        sample(
            "documents.html",
            "with documents",
            ctx(&folders, all.clone(), false),
        ),
        sample(
            "documents.html",
            "searched, with an error",
            ctx(&folders, searched, true),
        ),
        sample("documents.html", "empty", ctx(&[], all, false)),
        sample("send_files.html", "", client_page("/documents/send", send)),
    ]
}

fn preview() -> Vec<Sample> {
    let ctx = |doc: DocView, is_pdf: bool, is_image: bool| {
        let doc = Value::from(Serde(doc));
        client_page("/documents/d1/view", context! { doc, is_pdf, is_image })
    };
    let pdf = || doc("d1", "2025 Form 1040.pdf", ("new", "New"), true);
    let other = doc("d3", "Notes.docx", ("viewed", "Viewed"), false);
    vec![
        sample("preview.html", "of a PDF", ctx(pdf(), true, false)),
        sample("preview.html", "of a picture", ctx(pdf(), false, true)),
        sample("preview.html", "of another file", ctx(other, false, false)),
    ]
}

fn overview() -> Overview {
    let email = |email: &str, is_primary| ClientEmail {
        email: email.into(),
        is_primary,
        added_at: JAN_1,
    };
    let session = |user_agent: &str, current| SessionInfo {
        ip: "203.0.113.7".into(),
        user_agent: user_agent.into(),
        created_at: JAN_1,
        last_seen_at: JAN_2,
        current,
    };
    Overview {
        emails: vec![
            email("jane@example.com", true),
            email("jane@work.example", false),
        ],
        devices: vec![Device {
            public_id: "dev1".into(),
            label: "Firefox on Linux".into(),
            ip: "203.0.113.7".into(),
            created_at: JAN_1,
            last_used_at: JAN_2,
            current: true,
        }],
        sessions: vec![
            session("Firefox on Linux", true),
            session("Safari on iPhone", false),
        ],
    }
}

fn security() -> Vec<Sample> {
    let ctx = |error: Option<&str>| {
        let overview = Value::from(Serde(overview()));
        client_page(
            "/security",
            context! {
                overview, merge_error => error, pin_error => error, email_error => error,
                notice => "Your PIN was changed.",
            },
        )
    };
    vec![
        sample("security.html", "", ctx(None)),
        sample("security.html", "with errors", ctx(Some(ERROR))),
    ]
}

fn staff_public() -> Vec<Sample> {
    let signin = context! {
        email => "sam@", error => ERROR, notice => "You have signed out.", staff_area => true,
    };
    let enrol = context! {
        email => "sam@smithlee.example", secret => "JBSWY3DPEHPK3PXP",
        qr_svg => Value::from_safe_string("<svg></svg>".into()),
        error => "That code is not right.", staff_area => true,
    };
    let enrolled = context! {
        email => "sam@smithlee.example", secret => None::<&str>, qr_svg => None::<&str>,
        error => None::<&str>, staff_area => true,
    };
    vec![
        sample(
            "staff/signin.html",
            "with an error",
            page("/staff/signin", signin),
        ),
        sample(
            "staff/totp.html",
            "when enrolling",
            page("/staff/totp", enrol),
        ),
        sample(
            "staff/totp.html",
            "when enrolled",
            page("/staff/totp", enrolled),
        ),
    ]
}

fn clients() -> Vec<Client> {
    let client = |active: bool| Client {
        id: crate::ids::ClientId(1),
        public_id: "c1".into(),
        name: "Jane Doe".into(),
        account_name: Some("Jane".into()),
        pin_hash: None,
        signed_up_at: active.then_some(JAN_2),
        invited_at: Some(JAN_1),
        created_at: JAN_1,
        email: "jane@example.com".into(),
    };
    vec![client(true), client(false)]
}

fn staff_home() -> Vec<Sample> {
    let request = PortalRequest {
        id: 1,
        public_id: "r1".into(),
        name: "John Roe".into(),
        email: "john@example.com".into(),
        phone: "555-0199".into(),
        message: "Please set up a portal.".into(),
        created_at: JAN_1,
    };
    let troubled_mail = context! {
        pending => 2, oldest_age => "3 minutes", last_error => "connection timed out",
        last_error_at => JAN_2, recovered => false, failed => 1, dropped => 1,
    };
    let quiet_mail = context! {
        pending => 0, oldest_age => None::<&str>, last_error => None::<&str>,
        last_error_at => None::<i64>, recovered => false, failed => 0, dropped => 0,
    };
    let full = context! {
        clients => Value::from(Serde(clients())), requests => Value::from(Serde(vec![request])),
        error => ERROR, notice => "Invitation sent.", mail => troubled_mail,
    };
    let empty = context! {
        clients => Vec::<Value>::new(), requests => Vec::<Value>::new(), error => None::<&str>,
        notice => None::<&str>, mail => quiet_mail,
    };
    vec![
        sample("staff/home.html", "", staff_page("/staff", full)),
        sample("staff/home.html", "empty", staff_page("/staff", empty)),
    ]
}

fn staff_clients() -> Vec<Sample> {
    let rows: Vec<Value> = clients()
        .into_iter()
        .map(|c| {
            let active = c.signed_up_at.is_some();
            context! {
                id => c.public_id, name => c.name, email => c.email, active,
                invited_at => c.invited_at, signed_up_at => c.signed_up_at,
            }
        })
        .collect();
    let none = Vec::<Value>::new;
    let client = |active: bool| {
        context! { id => "c1", name => "Jane Doe", email => "jane@example.com", active }
    };
    let docs = Value::from(Serde(docs()));
    let full = context! {
        client => client(true), uploads => docs.clone(), published => docs, error => ERROR,
        tasks => Value::from(Serde(vec![context! { id => "t1", title => "2025 Organizer", type_name => "Organizer", tax_year => 2025, due => Some("2026-03-01"), done => 3, total => 7, state_label => "Open" }])),
        notice => "Published.", year => 2025,
    };
    let empty = context! {
        client => client(false), uploads => none(), published => none(), error => None::<&str>,
        tasks => none(),
        notice => None::<&str>, year => 2025,
    };
    let list = context! { clients => rows, q => "jane" };
    let no_match = context! { clients => none(), q => "zed" };
    vec![
        sample("staff/clients.html", "", staff_page("/staff/clients", list)),
        sample(
            "staff/clients.html",
            "empty",
            staff_page("/staff/clients", no_match),
        ),
        sample(
            "staff/client.html",
            "",
            staff_page("/staff/clients/c1", full),
        ),
        sample(
            "staff/client.html",
            "empty",
            staff_page("/staff/clients/c1", empty),
        ),
    ]
}

fn staff_inbox() -> Vec<Sample> {
    let note = |id, read| Notification {
        id,
        text: "Jane Doe sent 2 files".into(),
        link: "/staff/clients/c1".into(),
        created_at: JAN_1,
        read,
    };
    let items: Vec<Value> = docs()
        .into_iter()
        .map(|d| context! { doc => Value::from(Serde(d)), client => "Jane Doe" })
        .collect();
    let full = context! {
        items, newest => Some(2), unread_shown => true,
        notifications => Value::from(Serde(vec![note(2, false), note(1, true)])),
    };
    let empty = context! {
        items => Vec::<Value>::new(), newest => None::<i64>, unread_shown => false,
        notifications => Vec::<Value>::new(),
    };
    vec![
        sample("staff/inbox.html", "", staff_page("/staff/inbox", full)),
        sample(
            "staff/inbox.html",
            "empty",
            staff_page("/staff/inbox", empty),
        ),
    ]
}

/// Every email (`email/<name>`, for `email/<name>.txt` and `.html`) with the context
/// its sender gives it.
pub fn emails() -> Vec<Sample> {
    [account_emails(), firm_emails(), tasks::emails()]
        .into_iter()
        .flatten()
        .collect()
}

fn account_emails() -> Vec<Sample> {
    let code = context! {
        code => "482913", action => "sign in", minutes => 10, email => "jane@example.com",
    };
    let invitation = context! {
        name => "Jane Doe", email => "jane@example.com",
        link => "https://portal.smithlee.example/signup?email=jane%40example.com",
    };
    let pin = |reset: bool| context! { email => "jane@example.com", reset };
    let changed = context! { old => "jane@example.com", new_masked => "j***@new.example" };
    vec![
        sample("email/access_code", "", code),
        sample("email/invitation", "", invitation),
        sample(
            "email/email_added",
            "",
            context! { added => "jane@work.example" },
        ),
        sample("email/email_changed", "", changed),
        sample("email/pin_changed", "after a reset", pin(true)),
        sample("email/pin_changed", "", pin(false)),
        sample(
            "email/signup_exists",
            "",
            context! { email => "jane@example.com" },
        ),
        sample(
            "email/mail_test",
            "",
            context! { to => "admin@smithlee.example" },
        ),
    ]
}

fn firm_emails() -> Vec<Sample> {
    let published = |names: &[&str], has_message: bool| {
        let names: Vec<String> = names.iter().map(ToString::to_string).collect();
        context! {
            name => "Jane", count => names.len(), names, folder => "2025 / Returns",
            link => "https://portal.smithlee.example/documents", has_message,
        }
    };
    let request = |phone: &str, message: &str| {
        context! { name => "John Roe", email => "john@example.com", phone, message }
    };
    let locked = context! { email => "sam@smithlee.example", failures => 10, ip => "203.0.113.7" };
    // `notify::Batch::email_context`: at most 50 files listed, then "and N more".
    let uploads = |count: usize| {
        let files: Vec<Value> = (1..=count.min(50))
            .map(|i| context! { name => format!("Receipt {i}.pdf"), folder => "Uploaded" })
            .collect();
        context! { client => "Jane Doe", count, files, more => count.saturating_sub(50) }
    };
    let two = ["2025 Form 1040.pdf", "Engagement letter.pdf"];
    vec![
        sample("email/documents_published", "", published(&two, true)),
        sample(
            "email/documents_published",
            "one document",
            published(&["1040.pdf"], false),
        ),
        sample(
            "email/portal_request",
            "",
            request("555-0199", "Please set up a portal."),
        ),
        sample(
            "email/portal_request",
            "without phone or message",
            request("", ""),
        ),
        sample("email/staff_totp_locked", "", locked),
        sample("email/upload_received", "one file", uploads(1)),
        sample("email/upload_received", "many files", uploads(55)),
    ]
}
