//! Attacks on sign-in, performed for real: strangers spending the owner's code
//! budget, guessing staff authenticator codes, forged and cross-site form posts,
//! flows finishing after their address moved, and look-alike addresses.

use std::num::NonZero;

use crate::common::{BOB_PIN, Browser, PIN, Page, STAFF_PASSWORD, TestPortal, staff_browser};

const JANE: &str = "jane@example.com";
const ANN: &str = "ann@smithlee.example";

/// Access-code emails queued for `to` so far (sent or not).
fn codes_queued(portal: &TestPortal, to: &str) -> i64 {
    portal.query_i64(&format!(
        "SELECT count(*) FROM mail_queue WHERE to_addr = '{to}' AND subject LIKE 'Your access code%'"
    ))
}

pub(crate) async fn mail_settled(portal: &TestPortal) {
    portal
        .eventually_i64(
            "SELECT count(*) FROM mail_queue WHERE sent_at IS NULL AND failed_at IS NULL",
            0,
        )
        .await;
}

// ---- a stranger cannot keep the owner from getting codes ----

#[tokio::test]
async fn strangers_cannot_keep_the_owner_from_signing_in_or_getting_codes() {
    let portal = TestPortal::start_with(|c| c.server.trust_proxy_headers = true).await;
    portal.client("Jane Doe", JANE, PIN).await;
    let codes_before = codes_queued(&portal, JANE);

    // Three networks ask as often as they are let: sign-up with her address (she
    // has an account, so only a notice goes out) and Forgot PIN.
    for n in 0..3 {
        let stranger = portal.browser_from(&format!("203.0.113.{n}"));
        for _ in 0..15 {
            stranger
                .start_sign_up("Mallory", JANE)
                .await
                .expect("Verify your email");
            stranger.enter_email(JANE).await;
            stranger
                .post("/signin/forgot", &[])
                .await
                .expect("Reset your PIN");
        }
        // That network's own budget is spent, and it is told so.
        stranger.enter_email(JANE).await;
        let refused = stranger.post("/signin/forgot", &[]).await;
        refused.refused("Too many attempts from your network");
    }
    // Her mailbox got at most a budget's worth of codes and of notices.
    let budget = i64::from(portal.state.config.accounts.codes_per_email_per_hour.get());
    assert!(codes_queued(&portal, JANE) - codes_before <= budget);
    assert!(
        portal.query_i64(&format!(
            "SELECT count(*) FROM mail_queue WHERE to_addr = '{JANE}' AND subject LIKE 'You already have a portal%'"
        )) <= budget
    );
    mail_settled(&portal).await;

    // Jane, on a new browser on one of those very networks, signs in with her PIN
    // and a code, and gets a code for Update PIN.
    let jane = portal.browser_from("203.0.113.0");
    jane.sign_in(&portal, JANE, PIN)
        .await
        .expect("Welcome, Jane Doe");
    let mut seen = portal.smtp.matching(JANE, "access code");
    jane.change_pin(PIN, BOB_PIN)
        .await
        .expect("Confirm your new PIN");
    jane.post_next_code(&portal, JANE, &mut seen, "/security/pin/verify")
        .await
        .expect("Your PIN was changed");

    // Forgot PIN on a browser she trusts (this one, since the PIN change) spends
    // her own budget too, not the one strangers used up.
    jane.post("/signout", &[]).await;
    jane.enter_email(JANE)
        .await
        .expect("Enter your access code")
        .expect("Forgot PIN?");
    let _sign_in_code = portal.smtp.next_code(JANE, &mut seen).await;
    jane.post("/signin/forgot", &[])
        .await
        .expect("Reset your PIN");
    jane.post_next_code(&portal, JANE, &mut seen, "/signin/reset")
        .await
        .expect("Set a new PIN");
    portal.stop().await;
}

pub(crate) async fn forgot_pin(portal: &TestPortal, ip: &str, email: &str) -> Page {
    let b = portal.browser_from(ip);
    b.enter_email(email).await;
    b.post("/signin/forgot", &[]).await
}

#[tokio::test]
async fn a_spent_address_budget_reads_the_same_as_an_unknown_address() {
    let portal = TestPortal::start_with(|c| {
        c.server.trust_proxy_headers = true;
        c.accounts.codes_per_email_per_hour = NonZero::new(1).unwrap();
    })
    .await;
    portal.client("Jane Doe", JANE, PIN).await; // the sign-up code spends the budget
    let before = codes_queued(&portal, JANE);
    let known = forgot_pin(&portal, "198.51.100.1", JANE).await;
    let unknown = forgot_pin(&portal, "198.51.100.2", "stranger@example.com").await;
    assert_eq!(
        (known.status, known.path()),
        (unknown.status, unknown.path())
    );
    assert_eq!(
        known.text_without(JANE),
        unknown.text_without("stranger@example.com")
    );
    assert_eq!(codes_queued(&portal, JANE), before, "silently not sent");
    portal.stop().await;
}

// ---- staff authenticator codes cannot be guessed without end ----

#[tokio::test]
async fn guessing_staff_authenticator_codes_locks_the_account_and_tells_its_owner() {
    let portal = TestPortal::start().await;
    let b = staff_browser(&portal).await;
    b.post("/staff/signout", &[])
        .await
        .expect("You have signed out");
    let secret = portal.query_text("SELECT totp_secret FROM staff");
    let right = || portal::firm::totp::current_code(&secret).unwrap();
    let wrong = || {
        format!(
            "{:06}",
            (right().parse::<u32>().unwrap() + 500_000) % 1_000_000
        )
    };
    let password = || {
        b.post(
            "/staff/signin",
            &[("email", ANN), ("password", STAFF_PASSWORD)],
        )
    };
    let failures = || {
        portal.query_i64(&format!(
            "SELECT coalesce(max(failures), 0) FROM auth_throttle WHERE key = 'staff-totp:{ANN}'"
        ))
    };

    for (round, wait) in [(0, "1 minute"), (1, "2 minutes"), (2, "4 minutes")] {
        // The right password does not wipe out the wrong codes before it.
        password().await.expect("Authenticator code");
        assert_eq!(failures(), round * 5);
        for _ in 0..5 {
            let page = b.post("/staff/totp", &[("code", &wrong())]).await;
            page.expect("That code is not right");
        }
        // Locked, longer each round, whatever is typed.
        b.post("/staff/totp", &[("code", &right())])
            .await
            .expect(&format!("Try again in {wait}."));
        password().await.expect(&format!("Try again in {wait}."));
        portal.sql("UPDATE auth_throttle SET locked_until = 0"); // the wait is over
    }

    // The ceiling (20 by default) locks the account until an administrator acts.
    password().await.expect("Authenticator code");
    for _ in 0..4 {
        b.post("/staff/totp", &[("code", &wrong())]).await;
    }
    b.post("/staff/totp", &[("code", &wrong())])
        .await
        .expect("Ask an administrator to unlock your account");
    let notice = portal
        .smtp
        .first(ANN, "Your staff sign-in was locked")
        .await;
    assert!(
        notice.text().contains("20 wrong authenticator codes"),
        "{}",
        notice.text()
    );
    portal.sql("UPDATE auth_throttle SET locked_until = 0");
    portal.sql("UPDATE staff SET totp_last_step = 0");
    b.post("/staff/totp", &[("code", &right())])
        .await
        .expect("Ask an administrator to unlock your account");
    password()
        .await
        .expect("Ask an administrator to unlock your account");
    assert_eq!(b.get("/staff").await.path(), "/staff/signin");
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM audit_log WHERE event = 'staff_locked'"),
        1
    );

    portal::firm::unlock_staff(&portal.state, ANN)
        .await
        .unwrap();
    password().await.expect("Authenticator code");
    let home = b.post("/staff/totp", &[("code", &right())]).await;
    assert_eq!(home.path(), "/staff", "{}", home.body);
    assert_eq!(failures(), 0, "a right code clears the count");
    portal.stop().await;
}

// ---- CSRF: tokens bound to the session, browser ids replaced, origins checked ----

#[tokio::test]
async fn form_tokens_from_before_sign_in_or_another_session_are_refused() {
    let portal = TestPortal::start().await;
    let b = portal.signed_up("Jane Doe", JANE, PIN).await;
    b.get("/signin").await;
    let before = b.csrf();
    b.sign_in(&portal, JANE, PIN).await;
    let during = b.csrf();
    assert_ne!(before, during);

    let refused = b
        .post_without_csrf("/signout", &[("csrf", before.as_str())])
        .await;
    assert_eq!(refused.status, 403);
    refused.expect("did not come from this portal");
    let bob = portal.client("Bob Roe", "bob@example.com", BOB_PIN).await;
    let bobs = bob.csrf();
    let refused = b
        .post_without_csrf("/signout", &[("csrf", bobs.as_str())])
        .await;
    assert_eq!(refused.status, 403, "another session's token");
    assert_eq!(b.get("/").await.path(), "/", "still signed in");

    // Signing out replaces the browser id: no earlier token works again.
    b.post("/signout", &[]).await.expect("You have signed out");
    for old in [&before, &during] {
        let page = b
            .post_without_csrf("/signin", &[("email", JANE), ("csrf", old.as_str())])
            .await;
        assert_eq!(page.status, 403);
    }
    b.enter_email(JANE).await.expect("Enter your access code");

    // The same for staff.
    let staff = staff_browser(&portal).await;
    let signed_in = staff.csrf();
    let outsider = portal.browser();
    outsider.get("/staff/signin").await;
    let before = outsider.csrf();
    let staff2 = {
        outsider
            .post(
                "/staff/signin",
                &[("email", ANN), ("password", STAFF_PASSWORD)],
            )
            .await;
        portal.sql("UPDATE staff SET totp_last_step = 0");
        let secret = portal.query_text("SELECT totp_secret FROM staff");
        let code = portal::firm::totp::current_code(&secret).unwrap();
        let home = outsider.post("/staff/totp", &[("code", &code)]).await;
        assert_eq!(home.path(), "/staff", "{}", home.body);
        outsider
    };
    for old in [&before, &signed_in] {
        let page = staff2
            .post_without_csrf("/staff/signout", &[("csrf", old.as_str())])
            .await;
        assert_eq!(page.status, 403);
    }
    assert_eq!(staff2.get("/staff").await.path(), "/staff");
    portal.stop().await;
}

/// Posts the sign-out form with a valid token and the given browser headers.
async fn sign_out_with(b: &Browser, headers: &[(&str, &str)]) -> u16 {
    let mut req = b.http().post(b.url("/signout")).form(&[("csrf", b.csrf())]);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    b.raw(req).await.status
}

#[tokio::test]
async fn cross_site_requests_are_refused_even_with_a_valid_token() {
    let (portal, b) = TestPortal::with_jane().await;
    let own = portal.url.clone();
    let foreign: [&[(&str, &str)]; 5] = [
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        &[("origin", "http://127.0.0.1.evil.example")],
        &[("sec-fetch-site", "cross-site")],
        &[("origin", own.as_str()), ("sec-fetch-site", "cross-site")],
    ];
    for headers in foreign {
        assert_eq!(sign_out_with(&b, headers).await, 403, "{headers:?}");
        assert_eq!(b.get("/").await.path(), "/", "still signed in");
    }

    // The portal's own upload script (POST, PATCH, DELETE with its own origin) works;
    // the same from another site does not.
    let create = |origin: &str| {
        b.http()
            .post(b.url("/uploads"))
            .header("origin", origin)
            .header("sec-fetch-site", "same-origin")
            .header("x-csrf-token", b.csrf())
            .header("tus-resumable", "1.0.0")
            .header("upload-length", "5")
            .header("upload-metadata", "filename YS50eHQ=,folder VXBsb2FkZWQ=")
    };
    assert_eq!(b.raw(create("https://evil.example")).await.status, 403);
    let created = b.raw(create(&own)).await;
    assert_eq!(created.status, 201);
    let location = created.headers["location"].to_str().unwrap().to_string();
    let patch = |origin: &str| {
        b.http()
            .patch(b.url(&location))
            .header("origin", origin)
            .header("x-csrf-token", b.csrf())
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", "0")
            .body("hello")
    };
    assert_eq!(b.raw(patch("https://evil.example")).await.status, 403);
    assert_eq!(b.upload_offset(&location).await, 0, "nothing was written");
    assert_eq!(b.raw(patch(&own)).await.status, 204);

    // Same-origin sign-out works.
    assert_eq!(
        sign_out_with(
            &b,
            &[("origin", own.as_str()), ("sec-fetch-site", "same-origin")]
        )
        .await,
        200,
        "signed out and shown the sign-in page"
    );
    assert_eq!(b.get("/").await.path(), "/signin");
    portal.stop().await;
}

#[tokio::test]
async fn the_public_url_and_the_host_reached_are_both_own_origins() {
    let portal =
        TestPortal::start_with(|c| c.server.public_url = "http://portal.example".parse().unwrap())
            .await;
    let b = portal.browser();
    b.get("/signin").await;
    let post = |origin: &str| {
        b.http()
            .post(b.url("/signin"))
            .header("origin", origin)
            .form(&[("email", JANE.to_string()), ("csrf", b.csrf())])
    };
    assert_eq!(b.raw(post("http://portal.example")).await.status, 200);
    assert_eq!(b.raw(post(&portal.url)).await.status, 200);
    assert_eq!(
        b.raw(post("https://portal.example")).await.status,
        403,
        "another scheme"
    );
    assert_eq!(b.raw(post("http://evil.example")).await.status, 403);
    portal.stop().await;
}

// ---- a flow finishes only on the account it began for ----

#[tokio::test]
async fn sign_in_and_forgot_pin_cannot_finish_after_the_address_moved() {
    let (portal, jane) = TestPortal::with_jane().await;
    let bob = portal.client("Bob Roe", "bob@example.com", BOB_PIN).await;
    let mut seen = portal.smtp.matching(JANE, "access code");

    // Three attempts at Jane's address are left half-way: a sign-in waiting for its
    // code, a Forgot PIN waiting for the new PIN, another sign-in waiting for its code.
    let x = portal.browser();
    x.enter_pin(JANE, PIN)
        .await
        .expect("Enter your access code");
    let x_code = portal.smtp.next_code(JANE, &mut seen).await;
    let y = portal.browser();
    y.enter_email(JANE).await;
    y.post("/signin/forgot", &[]).await.expect("Reset your PIN");
    let y_code = portal.smtp.next_code(JANE, &mut seen).await;
    y.post("/signin/reset", &[("code", &y_code)])
        .await
        .expect("Set a new PIN");
    let w = portal.browser();
    w.enter_pin(JANE, PIN)
        .await
        .expect("Enter your access code");
    let w_code = portal.smtp.next_code(JANE, &mut seen).await;

    // Jane moves to a new address; Bob merges her old one into his portal.
    let mut new_seen = 0;
    jane.change_email(PIN, "jane@new.example").await;
    jane.post_next_code(
        &portal,
        "jane@new.example",
        &mut new_seen,
        "/security/email/verify",
    )
    .await
    .expect("Your sign-in email was changed");
    bob.post("/security/merge", &[("email", JANE)]).await;
    bob.post_next_code(&portal, JANE, &mut seen, "/security/merge/verify")
        .await
        .expect("The address was added to your portal");

    // Merged away: the sign-in cannot finish.
    let page = x.submit_code(&x_code).await;
    page.refused("no longer the sign-in address");
    assert_eq!(x.get("/").await.path(), "/signin");

    // Bob makes it his sign-in address: still neither flow finishes on Bob.
    bob.change_email(BOB_PIN, JANE).await;
    bob.post_next_code(&portal, JANE, &mut seen, "/security/email/verify")
        .await
        .expect("Your sign-in email was changed");
    let page = w.submit_code(&w_code).await;
    page.expect("no longer the sign-in address");
    assert_eq!(w.get("/").await.path(), "/signin", "not signed in as Bob");
    y.choose_pin("/signin/reset/pin", "591846")
        .await
        .refused("no longer the sign-in address");

    // Bob's PIN is untouched; Jane signs in at her new address.
    bob.post("/signout", &[]).await;
    portal.browser().sign_in(&portal, JANE, BOB_PIN).await;
    portal
        .browser()
        .sign_in(&portal, "jane@new.example", PIN)
        .await
        .expect("Welcome, Jane Doe");
    portal.stop().await;
}

// ---- look-alike addresses are shown to staff in ASCII with a warning ----

#[tokio::test]
async fn staff_see_look_alike_addresses_in_ascii_with_a_warning() {
    let portal = TestPortal::start().await;
    let staff = staff_browser(&portal).await;
    let lookalike = "jane@ex\u{430}mple.com"; // a Cyrillic а
    staff
        .add_client("Jane Imposter", lookalike)
        .await
        .expect("The client was invited by email");
    staff.add_client("Jane Doe", JANE).await;
    portal
        .browser()
        .post(
            "/request-portal",
            &[("name", "Pat Lee"), ("email", "p\u{430}t@example.com")],
        )
        .await
        .expect("Thank you");

    let ascii = "jane@xn--exmple-4nf.com";
    let warning = "may imitate another address";
    let home = staff.get("/staff").await;
    home.expect(&format!("<span class=\"address-deceptive\">{ascii}</span>"))
        .expect("xn--pt-7kc@example.com")
        .expect(warning)
        .expect(&format!("&lt;{JANE}&gt;"));
    assert_eq!(
        home.body.matches(warning).count(),
        2,
        "only the look-alikes"
    );
    let list = staff.get("/staff/clients").await;
    list.expect(ascii).expect(warning);
    let id = portal.client_id(&lookalike.to_lowercase());
    staff
        .get(&format!("/staff/clients/{id}"))
        .await
        .expect(ascii)
        .expect(warning);
    portal.stop().await;
}
