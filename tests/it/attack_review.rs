//! The attack review of issue 6, re-run with variations: each test performs an
//! attack for real against the running portal and checks that it does no harm.
//! Code-email budgets, the staff authenticator lock, cross-site requests, slow
//! and numerous connections, forwarded addresses and file modes.

use std::num::NonZero;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::auth_abuse::{forgot_pin, mail_settled};
use crate::common::{BOB_PIN, Browser, PIN, Page, STAFF_PASSWORD, TestPortal, staff_browser};
use crate::network::{
    address, behind_proxies, closed_within, drip_until_cut, healthy, hold_open, recorded_address,
    slow_limits,
};

const JANE: &str = "jane@example.com";
const ANN: &str = "ann@smithlee.example";

/// Access-code emails queued so far, to anyone.
fn codes_queued(portal: &TestPortal) -> i64 {
    portal.query_i64("SELECT count(*) FROM mail_queue WHERE subject LIKE 'Your access code%'")
}

fn proxied(c: &mut portal::Config) {
    c.server.trust_proxy_headers = true;
}

// ---------- 1. code-email budgets ----------

#[tokio::test]
async fn every_spelling_of_an_address_spends_one_budget() {
    let portal = TestPortal::start_with(proxied).await;
    let jose = "jos\u{e9}@example.com";
    portal.client("José Díaz", jose, PIN).await;
    let before = codes_queued(&portal);
    // Case, NFC and NFD, blanks around: one address, one budget.
    let spellings = [
        "jos\u{e9}@example.com",
        "JOS\u{c9}@EXAMPLE.COM",
        "jose\u{301}@example.com",
        "Jose\u{301}@Example.Com",
        "  jos\u{e9}@example.com ",
    ];
    let asks = spellings.iter().cycle().take(30).enumerate();
    join_all(asks.map(|(n, s)| {
        let portal = &portal;
        async move { forgot_pin(portal, &format!("198.51.100.{n}"), s).await }
    }))
    .await;
    let budget = i64::from(portal.state.config.accounts.codes_per_email_per_hour.get());
    let sent = codes_queued(&portal) - before;
    assert!(sent <= budget, "{sent} codes for one mailbox");
    mail_settled(&portal).await;
    // A trailing dot is not another spelling of the domain: it is refused.
    let b = portal.browser_from("198.51.100.200");
    let page = b.enter_email("jos\u{e9}@example.com.").await;
    page.refused("Enter a valid email address");

    // The owner still signs in, from one of those very networks.
    portal
        .browser_from("198.51.100.1")
        .sign_in(&portal, jose, PIN)
        .await
        .expect("Welcome");
    portal.stop().await;
}

#[tokio::test]
async fn no_resend_button_lets_a_stranger_spend_the_owners_own_budget() {
    let portal = TestPortal::start_with(|c| {
        c.server.trust_proxy_headers = true;
        c.accounts.codes_per_account_per_hour = NonZero::new(3).unwrap();
    })
    .await;
    portal.client("Jane Doe", JANE, PIN).await; // one of her three codes
    // Every resend a stranger can reach, from many networks, without her PIN.
    for n in 0..10 {
        let stranger = portal.browser_from(&format!("203.0.113.{n}"));
        stranger.enter_email(JANE).await;
        let page = stranger.post("/signin/resend", &[]).await;
        assert!(!page.has("We sent a new access code"), "{}", page.body);
        stranger.post("/signin/forgot", &[]).await;
        portal.sql("UPDATE auth_flows SET last_code_at = 0"); // no wait between codes
        stranger.post("/signin/reset/resend", &[]).await;
        stranger.start_sign_up("M", JANE).await;
        portal.sql("UPDATE auth_flows SET last_code_at = 0");
        stranger.post("/signup/resend", &[]).await;
        for path in [
            "/security/pin/resend",
            "/security/email/resend",
            "/security/merge/resend",
        ] {
            let page = stranger.post(path, &[]).await;
            assert_eq!(page.path(), "/signin", "{path}");
        }
    }
    mail_settled(&portal).await;
    // Her own budget is whole: a sign-in code on a new browser, then Update PIN.
    let jane = portal.browser_from("198.51.100.50");
    jane.sign_in(&portal, JANE, PIN).await;
    let mut seen = portal.smtp.matching(JANE, "access code");
    jane.change_pin(PIN, BOB_PIN)
        .await
        .expect("Confirm your new PIN");
    portal.smtp.next_code(JANE, &mut seen).await;
    portal.stop().await;
}

#[tokio::test]
async fn a_domain_written_with_look_alike_characters_is_not_another_mailbox() {
    let portal = TestPortal::start_with(|c| {
        c.accounts.signup = portal::config::Signup::Open;
    })
    .await;
    // Fullwidth letters and an ideographic full stop, which mail systems map onto
    // example.com: each would otherwise be a fresh budget for the same mailbox.
    for spelling in [
        "jane@\u{ff45}xample.com",
        "jane@example\u{3002}com",
        "jane@EXAMPLE\u{ff0e}com",
    ] {
        let page = portal.browser().start_sign_up("Mallory", spelling).await;
        assert_eq!(page.status, 422, "{spelling}");
        page.expect("Enter a valid email address");
    }
    assert_eq!(codes_queued(&portal), 0);
    // Internationalised domains as people type them still work.
    portal
        .browser()
        .start_sign_up("Jürgen", "j@b\u{fc}cher.example")
        .await
        .expect("Verify your email");
    portal.stop().await;
}

#[tokio::test]
async fn another_client_cannot_use_up_the_codes_for_an_address_someone_adds() {
    let (portal, jane) = TestPortal::with_jane().await;
    let bob = portal.client("Bob Roe", "bob@example.com", BOB_PIN).await;
    let work = "jane@work.example";
    // Bob asks to merge, then to move to, Jane's work address until he is refused.
    for _ in 0..12 {
        bob.post("/security/merge", &[("email", work)]).await;
        bob.change_email(BOB_PIN, work).await;
    }
    mail_settled(&portal).await;
    let to_work = portal.smtp.matching(work, "access code");
    let per_address = portal.state.config.accounts.codes_per_email_per_hour.get() as usize;
    assert!(to_work <= per_address, "{to_work} codes from one client");
    // Jane can still add her work address.
    let mut seen = to_work;
    jane.post("/security/merge", &[("email", work)])
        .await
        .expect("Verify the other address");
    jane.post_next_code(&portal, work, &mut seen, "/security/merge/verify")
        .await
        .expect("The address was added to your portal");
    portal.stop().await;
}

/// The value `resp` sets for cookie `name`.
fn cookie_set(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_string()
}

#[tokio::test]
async fn forgot_pin_cannot_fill_the_database_with_flows() {
    let portal = TestPortal::start().await;
    // A hand-made client that keeps sending the same sign-in flow cookie, so
    // that each Forgot PIN starts a new reset flow.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{}/signin", portal.url))
        .send()
        .await
        .unwrap();
    let browser = cookie_set(&page, "portal_browser");
    let body = page.text().await.unwrap();
    let csrf = regex::Regex::new(r#"name="csrf" value="([^"]+)""#)
        .unwrap()
        .captures(&body)
        .unwrap()[1]
        .to_string();
    let started = http
        .post(format!("{}/signin", portal.url))
        .header("cookie", format!("portal_browser={browser}"))
        .form(&[("email", "nobody@example.com"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    let flow = cookie_set(&started, "portal_flow");
    let cookies = format!("portal_browser={browser}; portal_flow={flow}");
    for _ in 0..320 {
        let r = http
            .post(format!("{}/signin/forgot", portal.url))
            .header("cookie", &cookies)
            .form(&[("csrf", &csrf)])
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_redirection() || r.status() == 422,
            "{}",
            r.status()
        );
    }
    let flows = portal.query_i64("SELECT count(*) FROM auth_flows");
    assert!(flows <= 300, "{flows} flows from one address");
    portal.stop().await;
}

#[tokio::test]
async fn addresses_of_one_ipv6_block_share_the_per_address_budgets() {
    let portal = TestPortal::start_with(proxied).await;
    portal.client("Jane Doe", JANE, PIN).await;
    // A subscriber's /64 holds 2^64 addresses; each request comes from a new one.
    let from = |n: usize| format!("2001:db8:77:1::{n:x}");
    let per_ip = portal.state.config.accounts.codes_per_ip_per_hour.get() as usize;
    for n in 0..per_ip {
        forgot_pin(&portal, &from(n + 1), "someone@example.com").await;
    }
    let refused = forgot_pin(&portal, &from(0xfff), "someone@example.com").await;
    refused.refused("Too many attempts from your network");
    // Written the IPv4-mapped way, an IPv4 client is still the same client.
    for _ in 0..per_ip {
        forgot_pin(&portal, "198.51.100.9", "someone@example.com").await;
    }
    forgot_pin(&portal, "::ffff:198.51.100.9", "someone@example.com")
        .await
        .expect("Too many attempts from your network");
    // The next block is another subscriber.
    forgot_pin(&portal, "2001:db8:77:2::1", "someone@example.com")
        .await
        .expect("Reset your PIN");

    // "Request a portal" (5 an hour) likewise.
    for n in 0..5 {
        portal
            .browser_from(&from(0x100 + n))
            .post(
                "/request-portal",
                &[("name", "Pat Lee"), ("email", "pat@example.com")],
            )
            .await
            .expect("Thank you");
    }
    let refused = portal
        .browser_from(&from(0x200))
        .post(
            "/request-portal",
            &[("name", "Pat Lee"), ("email", "pat@example.com")],
        )
        .await;
    refused.refused("Too many attempts from your network");
    assert_eq!(portal.query_i64("SELECT count(*) FROM portal_requests"), 5);
    portal.stop().await;
}

// ---------- 2. the staff authenticator lock ----------

fn totp_failures(portal: &TestPortal) -> i64 {
    portal.query_i64(&format!(
        "SELECT coalesce(max(failures), 0) FROM auth_throttle WHERE key = 'staff-totp:{ANN}'"
    ))
}

async fn signin(b: &Browser, email: &str, password: &str) -> Page {
    b.post("/staff/signin", &[("email", email), ("password", password)])
        .await
}

fn wrong_code(secret: &str) -> String {
    let right: u32 = portal::firm::totp::current_code(secret)
        .unwrap()
        .parse()
        .unwrap();
    format!("{:06}", (right + 500_000) % 1_000_000)
}

#[tokio::test]
async fn guesses_sent_at_once_stop_at_the_authenticator_ceiling() {
    let portal = TestPortal::start_with(|c| {
        c.accounts.lockout_after = NonZero::new(20).unwrap();
        c.accounts.staff_totp_max_failures = NonZero::new(10).unwrap();
    })
    .await;
    let b = staff_browser(&portal).await;
    b.post("/staff/signout", &[]).await;
    let secret = portal.query_text("SELECT totp_secret FROM staff");
    b.post(
        "/staff/signin",
        &[("email", ANN), ("password", STAFF_PASSWORD)],
    )
    .await
    .expect("Authenticator code");
    let wrong = wrong_code(&secret);
    let form = [("code", wrong.as_str())];
    let pages = join_all((0..40).map(|_| b.post("/staff/totp", &form))).await;
    assert!(pages.iter().all(|p| p.status == 422));
    assert_eq!(totp_failures(&portal), 10);
    assert_eq!(
        portal.query_i64(
            "SELECT count(*) FROM audit_log WHERE event = 'staff_signin_failed' AND detail = 'wrong TOTP code'"
        ),
        10
    );
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM audit_log WHERE event = 'staff_locked'"),
        1
    );
    portal
        .smtp
        .first(ANN, "Your staff sign-in was locked")
        .await;
    assert_eq!(
        portal.smtp.matching(ANN, "Your staff sign-in was locked"),
        1
    );
    portal.sql("UPDATE staff SET totp_last_step = 0");
    let right = portal::firm::totp::current_code(&secret).unwrap();
    b.post("/staff/totp", &[("code", &right)])
        .await
        .expect("Ask an administrator to unlock your account");
    portal.stop().await;
}

#[tokio::test]
async fn no_other_path_resets_the_authenticator_count_or_tells_who_is_staff() {
    let portal = TestPortal::start_with(proxied).await;
    staff_browser(&portal).await;
    let secret = portal.query_text("SELECT totp_secret FROM staff");
    // Another spelling of the address, from another network: the same count.
    let b = portal.browser_from("203.0.113.5");
    signin(&b, "ANN@SmithLee.Example", STAFF_PASSWORD)
        .await
        .expect("Authenticator code");
    for _ in 0..4 {
        b.post("/staff/totp", &[("code", &wrong_code(&secret))])
            .await;
    }
    assert_eq!(totp_failures(&portal), 4);
    // The right password, from yet another network and spelling, clears nothing.
    let c = portal.browser_from("198.51.100.77");
    signin(&c, " ann@smithlee.example ", STAFF_PASSWORD)
        .await
        .expect("Authenticator code");
    assert_eq!(totp_failures(&portal), 4);
    c.post("/staff/totp", &[("code", &wrong_code(&secret))])
        .await;
    for _ in 0..15 {
        portal.sql("UPDATE auth_throttle SET locked_until = 0");
        c.post("/staff/totp", &[("code", &wrong_code(&secret))])
            .await;
    }
    assert_eq!(totp_failures(&portal), 20, "locked at the ceiling");

    // A wrong password for the locked account reads as for an unknown address.
    let known = signin(
        &portal.browser_from("192.0.2.10"),
        ANN,
        "wrong password 123",
    )
    .await;
    let unknown = signin(
        &portal.browser_from("192.0.2.11"),
        "zed@smithlee.example",
        "wrong password 123",
    )
    .await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(
        known.text_without(ANN),
        unknown.text_without("zed@smithlee.example")
    );
    // So does a lockout after many wrong passwords.
    for (who, ip) in [(ANN, "192.0.2.20"), ("zed@smithlee.example", "192.0.2.21")] {
        let b = portal.browser_from(ip);
        for _ in 0..5 {
            b.post(
                "/staff/signin",
                &[("email", who), ("password", "nope nope nope")],
            )
            .await;
        }
        b.post(
            "/staff/signin",
            &[("email", who), ("password", STAFF_PASSWORD)],
        )
        .await
        .expect("Too many wrong attempts. Try again in 1 minute.");
    }
    // Unlocking with another spelling of the address works.
    portal::firm::unlock_staff(&portal.state, "Ann@SMITHLEE.example")
        .await
        .unwrap();
    assert_eq!(totp_failures(&portal), 0);
    portal.stop().await;
}

/// The enrolment secret shown on a staff browser's page.
fn shown_secret(page: &Page) -> String {
    regex::Regex::new(r#"<code class="secret">([A-Z2-7]+)</code>"#)
        .unwrap()
        .captures(&page.body)
        .expect("enrolment page")[1]
        .to_string()
}

#[tokio::test]
async fn an_enrolment_page_left_open_cannot_replace_the_authenticator() {
    let portal = TestPortal::start().await;
    portal::firm::add_staff(&portal.state, ANN, "Ann Smith", STAFF_PASSWORD)
        .await
        .unwrap();
    // Someone with the password opens an enrolment page before Ann's first sign-in.
    let mallory = portal.browser();
    let theirs = shown_secret(&signin(&mallory, ANN, STAFF_PASSWORD).await);
    let ann = portal.browser();
    let hers = shown_secret(&signin(&ann, ANN, STAFF_PASSWORD).await);
    let code = portal::firm::totp::current_code(&hers).unwrap();
    let home = ann.post("/staff/totp", &[("code", &code)]).await;
    assert_eq!(home.path(), "/staff");
    // The page left open no longer enrols anything, even once the time step Ann
    // used has passed.
    portal.sql("UPDATE staff SET totp_last_step = 0");
    let code = portal::firm::totp::current_code(&theirs).unwrap();
    let page = mallory.post("/staff/totp", &[("code", &code)]).await;
    assert_eq!(page.path(), "/staff/signin");
    assert_eq!(mallory.get("/staff").await.path(), "/staff/signin");
    assert_eq!(portal.query_text("SELECT totp_secret FROM staff"), hers);
    // After a reset, a code of the old authenticator on a page opened before it
    // is refused too.
    let old_page = portal.browser();
    signin(&old_page, ANN, STAFF_PASSWORD)
        .await
        .expect("Authenticator code");
    portal::firm::reset_staff_totp(&portal.state, ANN)
        .await
        .unwrap();
    portal.sql("UPDATE staff SET totp_last_step = 0");
    let code = portal::firm::totp::current_code(&hers).unwrap();
    let page = old_page.post("/staff/totp", &[("code", &code)]).await;
    assert_eq!(page.path(), "/staff/signin");
    assert_eq!(old_page.get("/staff").await.path(), "/staff/signin");
    portal.stop().await;
}

#[tokio::test]
async fn wrong_passwords_from_one_ipv6_block_share_a_lockout() {
    let portal = TestPortal::start_with(proxied).await;
    portal::firm::add_staff(&portal.state, ANN, "Ann Smith", STAFF_PASSWORD)
        .await
        .unwrap();
    let guess = |ip: String| {
        let portal = &portal;
        async move {
            portal
                .browser_from(&ip)
                .post(
                    "/staff/signin",
                    &[("email", ANN), ("password", "guess guess guess")],
                )
                .await
        }
    };
    for n in 1..=5 {
        guess(format!("2001:db8:99:1::{n}")).await;
    }
    guess("2001:db8:99:1:ffff::6".into())
        .await
        .expect("Too many wrong attempts. Try again in 1 minute.");
    // Ann, in her own office's block, is not locked out by it.
    portal
        .browser_from("2001:db8:42:1::10")
        .post(
            "/staff/signin",
            &[("email", ANN), ("password", STAFF_PASSWORD)],
        )
        .await
        .expect("Set up your authenticator");
    portal.stop().await;
}

// ---------- 3. cross-site requests ----------

#[tokio::test]
async fn cross_site_variations_are_refused_on_every_method_and_body() {
    let portal =
        TestPortal::start_with(|c| c.server.public_url = "http://portal.example".parse().unwrap())
            .await;
    let jane = portal.client("Jane Doe", JANE, PIN).await;
    let port = portal.url.rsplit(':').next().unwrap().to_string();
    let own = portal.url.clone();
    let other_port = format!("http://127.0.0.1:{}", port.parse::<u16>().unwrap() ^ 1);
    let trailing_dot = "http://portal.example.".to_string();
    let https = format!("https://127.0.0.1:{port}");
    let sibling = "http://evil.portal.example".to_string();
    let foreign: Vec<Vec<(&str, &str)>> = vec![
        vec![("origin", "null")],
        vec![("origin", &other_port)],
        vec![("origin", &trailing_dot)],
        vec![("origin", &https)],
        vec![("origin", "https://portal.example")],
        vec![("origin", "http://portal.example:8080")],
        vec![("origin", &sibling), ("sec-fetch-site", "same-site")],
        vec![("origin", "null"), ("sec-fetch-site", "same-origin")],
        vec![("origin", "not a url")],
        // A sibling subdomain, even were its Origin left out.
        vec![("sec-fetch-site", "same-site")],
        vec![("sec-fetch-site", "Cross-Site")],
    ];
    let id = jane.upload("w2.pdf", b"%PDF-1.4 w2").await;
    let pending = jane
        .create_upload("half.bin", "Uploaded", 10)
        .await
        .unwrap();
    let csrf = jane.csrf();
    for headers in &foreign {
        let with = |mut r: reqwest::RequestBuilder| {
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.header("x-csrf-token", &csrf)
        };
        let http = jane.http();
        let requests = [
            with(http.post(jane.url(&format!("/documents/{id}/delete"))))
                .form(&[("csrf", csrf.as_str())]),
            with(http.post(jane.url(&format!("/documents/{id}/rename"))))
                .form(&[("csrf", csrf.as_str()), ("name", "x.pdf")]),
            with(http.delete(jane.url(&pending))).header("tus-resumable", "1.0.0"),
            with(http.patch(jane.url(&pending)))
                .header("tus-resumable", "1.0.0")
                .header("upload-offset", "0")
                .header("content-type", "application/offset+octet-stream")
                .body("0123456789"),
            with(http.put(jane.url("/signout"))).form(&[("csrf", csrf.as_str())]),
            with(http.post(jane.url("/security/sessions/end-others")))
                .multipart(reqwest::multipart::Form::new().text("csrf", csrf.clone())),
        ];
        for req in requests {
            let r = jane.raw(req).await;
            assert_eq!(r.status, 403, "{headers:?}");
        }
    }
    // Nothing happened: the document is there under its name, the upload untouched.
    jane.get("/documents").await.expect("w2.pdf");
    assert_eq!(jane.upload_offset(&pending).await, 0);
    assert_eq!(jane.get("/").await.path(), "/", "still signed in");

    // The right origin is not enough without the token, and another browser's
    // token (or a token from before signing out) does not do.
    let stranger = portal.browser();
    stranger.get("/signin").await;
    for token in ["", stranger.csrf().as_str()] {
        let r = jane
            .raw(
                jane.http()
                    .post(jane.url(&format!("/documents/{id}/delete")))
                    .header("origin", &own)
                    .form(&[("csrf", token)]),
            )
            .await;
        assert_eq!(r.status, 403);
        let r = jane
            .raw(
                jane.http()
                    .delete(jane.url(&pending))
                    .header("origin", &own)
                    .header("x-csrf-token", token)
                    .header("tus-resumable", "1.0.0"),
            )
            .await;
        assert_eq!(r.status, 403);
    }
    jane.get("/documents").await.expect("w2.pdf");

    // Staff publishing (multipart): from another site, or with another browser's
    // token, nothing is published.
    let staff = staff_browser(&portal).await;
    let client = portal.client_id(JANE);
    let publish = |origin: &str, token: String| {
        let form = reqwest::multipart::Form::new()
            .text("csrf", token)
            .text("folder", "2025")
            .text("message", "")
            .text("kind", "other")
            .part(
                "files",
                reqwest::multipart::Part::bytes(b"forged".to_vec()).file_name("forged.txt"),
            );
        staff
            .http()
            .post(staff.url(&format!("/staff/clients/{client}/publish")))
            .header("origin", origin)
            .multipart(form)
    };
    assert_eq!(staff.raw(publish("null", staff.csrf())).await.status, 403);
    assert_eq!(staff.raw(publish(&sibling, staff.csrf())).await.status, 403);
    assert_eq!(staff.raw(publish(&own, stranger.csrf())).await.status, 403);
    assert!(!jane.get("/documents").await.has("forged.txt"));
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM documents WHERE name = 'forged.txt'"),
        0
    );
    portal.stop().await;
}

// ---------- 4. slow, numerous and pipelined connections ----------

/// A body that yields one byte every `every`, for `total` bytes.
fn trickle(total: usize, every: Duration) -> reqwest::Body {
    let stream = futures::stream::unfold(0usize, move |sent| async move {
        if sent >= total {
            return None;
        }
        tokio::time::sleep(every).await;
        Some((
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"x")),
            sent + 1,
        ))
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test]
async fn a_chunked_trickle_is_cut_off_on_forms_uploads_and_publishing() {
    let portal = TestPortal::start_with(slow_limits).await;
    let addr = address(&portal);

    // A form posted in one-byte chunks, by hand.
    let head = b"POST /signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (cut, _) = drip_until_cut(&addr, head, b"1\r\ne\r\n", Duration::from_millis(300)).await;
    assert!(cut, "the chunked trickle was not cut off");

    // Chunk extensions dripped without any data are no better.
    let head = b"POST /signin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;";
    let (cut, _) = drip_until_cut(&addr, head, b"a", Duration::from_millis(200)).await;
    assert!(cut, "dripped chunk extensions were not cut off");

    // An upload, and a staff publish, trickled by a real HTTP client.
    let jane = portal.client("Jane Doe", JANE, PIN).await;
    let location = jane
        .create_upload("slow.bin", "Uploaded", 1000)
        .await
        .unwrap();
    let started = Instant::now();
    let r = jane
        .http()
        .patch(jane.url(&location))
        .header("X-CSRF-Token", jane.csrf())
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", "0")
        .body(trickle(1000, Duration::from_millis(300)))
        .send()
        .await;
    assert!(started.elapsed() < Duration::from_secs(8), "{r:?}");
    assert!(!jane.get("/documents").await.has("slow.bin"));

    let staff = staff_browser(&portal).await;
    let client = portal.client_id(JANE);
    let form = reqwest::multipart::Form::new()
        .text("csrf", staff.csrf())
        .text("folder", "2025")
        .part(
            "files",
            reqwest::multipart::Part::stream(trickle(1000, Duration::from_millis(300)))
                .file_name("slow.txt"),
        );
    let started = Instant::now();
    let _ = staff
        .http()
        .post(staff.url(&format!("/staff/clients/{client}/publish")))
        .multipart(form)
        .send()
        .await;
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM documents WHERE name = 'slow.txt'"),
        0
    );
    assert!(healthy(&portal).await);
    portal.stop().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_and_a_stalled_one_is_closed() {
    let portal = TestPortal::start_with(slow_limits).await;
    let mut s = TcpStream::connect(address(&portal)).await.unwrap();
    // Three requests in one write, and the start of a fourth that never ends.
    let one = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(format!("{one}{one}{one}GET /healthz HTTP/1.1\r\nHost: x\r\n").as_bytes())
        .await
        .unwrap();
    let (took, got) = closed_within(&mut s, Duration::from_secs(5))
        .await
        .expect("the stalled fourth request is cut off");
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    assert!(took >= Duration::from_millis(900));
    portal.stop().await;
}

/// A connection from `source` (any 127.x.y.z works on loopback).
async fn connect_from(source: &str, to: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to.parse().unwrap()).await.unwrap()
}

#[tokio::test]
async fn each_address_has_its_own_connection_allowance() {
    let portal = TestPortal::start_on("[::]:0", |c| {
        c.server.header_timeout_seconds = NonZero::new(30).unwrap();
        c.server.max_connections_per_ip = 3;
    })
    .await;
    let addr = address(&portal);
    // 127.0.0.2 holds its three (seen as ::ffff:127.0.0.2 by a dual-stack socket).
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.2", &addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = connect_from("127.0.0.2", &addr).await;
    assert!(
        closed_within(&mut fourth, Duration::from_secs(3))
            .await
            .is_some(),
        "a fourth from one address is refused"
    );
    // Other addresses are served meanwhile.
    let mut other = connect_from("127.0.0.3", &addr).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (_, reply) = closed_within(&mut other, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&reply).contains("200 OK"));
    assert!(healthy(&portal).await);
    drop(held);
    portal.stop().await;
}

#[tokio::test]
async fn a_dual_stack_listener_still_recognises_the_trusted_proxy() {
    // Behind a proxy on 127.0.0.1, the portal listening on [::] sees the proxy as
    // ::ffff:127.0.0.1: it must still believe its X-Forwarded-For and not cap it
    // like a single client.
    let portal = TestPortal::start_on("[::]:0", |c| {
        c.server.trust_proxy_headers = true;
        c.server.header_timeout_seconds = NonZero::new(30).unwrap();
        c.server.max_connections_per_ip = 2;
    })
    .await;
    portal.invite("Jane Doe", JANE).await;
    let held = hold_open(&address(&portal), 4).await;
    assert!(healthy(&portal).await, "the proxy is not capped");
    let b = portal.browser_from("203.0.113.44");
    b.enter_pin(JANE, "000001").await;
    assert_eq!(
        portal.query_text(
            "SELECT ip FROM audit_log WHERE event = 'signin_failed' ORDER BY seq DESC LIMIT 1"
        ),
        "203.0.113.44"
    );
    drop(held);
    portal.stop().await;
}

// ---------- 5. X-Forwarded-For ----------

#[tokio::test]
async fn forwarded_addresses_in_every_spelling_name_the_right_client() {
    let portal = behind_proxies(&["127.0.0.1", "10.0.0.0/8"]).await;
    portal.invite("Jane Doe", JANE).await;
    let cases: Vec<(Vec<(&'static str, &str)>, &str)> = vec![
        (vec![("X-FORWARDED-FOR", "203.0.113.1")], "203.0.113.1"),
        (vec![("x-forwarded-for", " 203.0.113.2 ")], "203.0.113.2"),
        (vec![("x-forwarded-for", "203.0.113.3:4711")], "203.0.113.3"),
        (vec![("x-forwarded-for", "2001:db8::4")], "2001:db8::4"),
        (
            vec![("x-forwarded-for", "[2001:db8::5]:443")],
            "2001:db8::5",
        ),
        (vec![("x-forwarded-for", "[2001:db8::6]")], "2001:db8::6"),
        (
            vec![("x-forwarded-for", "::ffff:203.0.113.7")],
            "203.0.113.7",
        ),
        (vec![("x-forwarded-for", "2001:DB8:0:0::8")], "2001:db8::8"),
        // Forged entries left of the proxy's own are ignored, in one line or many.
        (
            vec![("x-forwarded-for", "6.6.6.6, 203.0.113.9")],
            "203.0.113.9",
        ),
        (
            vec![
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", "203.0.113.10, 10.0.0.1"),
            ],
            "203.0.113.10",
        ),
        // What is not an address never lets a forged entry further left win.
        (vec![("x-forwarded-for", "6.6.6.6, unknown")], "127.0.0.1"),
        (
            vec![("x-forwarded-for", "6.6.6.6, 203.000.113.11")],
            "127.0.0.1",
        ),
        (
            vec![("x-forwarded-for", "6.6.6.6, 0xcb.0.113.12")],
            "127.0.0.1",
        ),
        (
            vec![("x-forwarded-for", "6.6.6.6, fe80::1%eth0")],
            "127.0.0.1",
        ),
        (vec![("x-forwarded-for", "6.6.6.6,")], "127.0.0.1"),
        // A forged trusted address does not make the walk go further left.
        (
            vec![("x-forwarded-for", "6.6.6.6, 127.0.0.1, 203.0.113.13")],
            "203.0.113.13",
        ),
    ];
    for (headers, want) in cases {
        portal.sql("DELETE FROM auth_throttle"); // no PIN lockout in between
        assert_eq!(
            recorded_address(&portal, headers.clone()).await,
            want,
            "{headers:?}"
        );
    }
    portal.stop().await;

    // The header means nothing from a peer that is not a trusted proxy.
    let portal = behind_proxies(&["::1"]).await;
    portal.invite("Jane Doe", JANE).await;
    for spelling in ["X-Forwarded-For", "x-forwarded-for"] {
        let got = recorded_address(&portal, vec![(spelling, "203.0.113.20")]).await;
        assert_eq!(got, "127.0.0.1");
    }
    portal.stop().await;
}

// ---------- 6. file modes ----------

#[cfg(unix)]
fn loose_modes(dir: &std::path::Path) -> (usize, Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    let (mut checked, mut loose) = (0, Vec::new());
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue; // removed meanwhile
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                loose.push(format!("{} {mode:o}", path.display()));
            }
            checked += 1;
            if meta.is_dir() {
                pending.push(path);
            }
        }
    }
    (checked, loose)
}

/// Gives every file and directory under `dir` the modes a careless copy would:
/// 0755 and 0644.
#[cfg(unix)]
fn loosen(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path, m| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode(dir, 0o755);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            loosen(&path);
        } else {
            mode(&path, 0o644);
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn nothing_under_the_data_directory_is_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let at = |data: std::path::PathBuf| move |c: &mut portal::Config| c.storage.data_dir = data;
    // Everything the portal writes: database with WAL and SHM, keys, documents,
    // search segments, and an upload still in progress.
    let portal = TestPortal::start_with(at(data.clone())).await;
    let jane = portal.client("Jane Doe", JANE, PIN).await;
    jane.upload("w2.pdf", &crate::common::pdf_with_text("Wages 1234"))
        .await;
    let half = jane
        .create_upload("half.bin", "Uploaded", 200_000)
        .await
        .unwrap();
    let r = jane.patch_upload(&half, 0, vec![7; 70_000]).await;
    assert_eq!(r.status, 204);
    let staff = staff_browser(&portal).await;
    let client: String = rusqlite::Connection::open(data.join("portal.db"))
        .unwrap()
        .query_row("SELECT public_id FROM clients", [], |r| r.get(0))
        .unwrap();
    staff
        .publish(
            &client,
            "2025",
            "",
            &[("1040.pdf", crate::common::pdf_with_text("Refund"))],
        )
        .await
        .expect("published");
    jane.search("Refund").await.expect("1040.pdf");
    let (checked, loose) = loose_modes(&data);
    assert!(loose.is_empty(), "{loose:?}");
    assert!(data.join("portal.db-wal").exists() && data.join("portal.db-shm").exists());
    assert!(checked > 10, "{checked}");
    portal.stop().await;

    // Restored by a tool that gave everything open modes: the next start closes
    // them all again, not only the top directory.
    loosen(&data);
    let portal = TestPortal::start_with(at(data.clone())).await;
    let (_, loose) = loose_modes(&data);
    assert!(loose.is_empty(), "{loose:?}");
    portal.stop().await;
}
