//! S1–S4: invitations, sign-up, sign-in, forgotten PINs, sign-out, abuse limits.

use std::num::NonZero;

use crate::common::{PIN, TestPortal};

#[tokio::test]
async fn invited_client_signs_up_signs_in_and_out() {
    let portal = TestPortal::start().await;
    portal.invite("Jane Doe", "jane@example.com").await;
    let invitation = portal
        .smtp
        .first("jane@example.com", "created a client portal")
        .await;
    assert!(
        invitation
            .text()
            .contains(&format!("{}/signup?email=jane%40example.com", portal.url)),
        "{}",
        invitation.text()
    );
    assert!(
        invitation.data.contains("Content-Type: text/html")
            && invitation.data.contains("Content-Type: text/plain")
    );

    let b = portal.browser();
    b.sign_up(&portal, "Jane Doe", "jane@example.com", PIN)
        .await;
    let home = b.sign_in(&portal, "jane@example.com", PIN).await;
    home.expect("Welcome, Jane Doe")
        .expect("Smith &amp; Lee CPAs")
        .expect("Security Settings")
        .expect("Sign Out");
    assert!(home.has("555-0100"), "contact information is shown");

    let out = b.post("/signout", &[]).await;
    out.expect("You have signed out");
    assert_eq!(
        b.get("/").await.path(),
        "/signin",
        "signed out: home asks to sign in"
    );
    portal.stop().await;
}

#[tokio::test]
async fn trusted_browser_skips_the_pin_but_not_the_code() {
    let (portal, b) = TestPortal::with_jane().await;
    b.post("/signout", &[]).await;
    let page = b.enter_email("jane@example.com").await;
    assert_eq!(
        page.path(),
        "/signin/code",
        "trusted device goes straight to the code"
    );
    // A different browser is asked for the PIN.
    let other = portal.browser();
    assert_eq!(
        other.enter_email("jane@example.com").await.path(),
        "/signin/pin"
    );
    portal.stop().await;
}

#[tokio::test]
async fn signing_in_returns_to_the_page_asked_for() {
    let (portal, b) = TestPortal::with_jane().await;
    b.post("/signout", &[]).await;
    let asked = b.get("/security").await;
    assert_eq!(asked.path(), "/signin");
    let mut seen = portal.smtp.matching("jane@example.com", "access code");
    b.post(
        "/signin",
        &[("email", "jane@example.com"), ("next", "/security")],
    )
    .await;
    let page = b
        .post_next_code(&portal, "jane@example.com", &mut seen, "/signin/code")
        .await;
    assert_eq!(page.path(), "/security");
    // Only local paths are followed.
    b.post("/signout", &[]).await;
    for evil in [
        "//evil.example/x",
        "/\t/evil.example",
        "https://evil.example",
    ] {
        b.post("/signin", &[("email", "jane@example.com"), ("next", evil)])
            .await;
        let landed = b
            .post_next_code(&portal, "jane@example.com", &mut seen, "/signin/code")
            .await;
        assert_eq!(landed.path(), "/", "{evil:?}");
        b.post("/signout", &[]).await;
    }
    portal.stop().await;
}

#[tokio::test]
async fn wrong_expired_replayed_and_foreign_codes_are_refused() {
    let portal = TestPortal::start().await;
    let b = portal.signed_up("Jane Doe", "jane@example.com", PIN).await;

    // Wrong code.
    let mut seen = portal.smtp.matching("jane@example.com", "access code");
    b.enter_pin("jane@example.com", PIN).await;
    let code_a = portal.smtp.next_code("jane@example.com", &mut seen).await;
    let wrong = if code_a == "000000" {
        "111111"
    } else {
        "000000"
    };
    let page = b.submit_code(wrong).await;
    page.refused("That code is not right");

    // A code from another sign-in attempt does not work here.
    let other = portal.browser();
    other.enter_email("jane@example.com").await;
    other.submit_pin(PIN).await;
    let code_b = portal.smtp.next_code("jane@example.com", &mut seen).await;
    if code_b != code_a {
        other
            .submit_code(&code_a)
            .await
            .expect("That code is not right");
    }

    // Expired code.
    portal.sql("UPDATE auth_flows SET code_expires_at = 1 WHERE purpose = 'signin'");
    b.submit_code(&code_a).await.expect("That code has expired");

    // Replay: a used code cannot sign in again.
    let c = portal.browser();
    c.enter_pin("jane@example.com", PIN).await;
    let code_c = portal.smtp.next_code("jane@example.com", &mut seen).await;
    assert_eq!(c.submit_code(&code_c).await.path(), "/");
    c.post("/signout", &[]).await;
    let replay = c.submit_code(&code_c).await;
    assert_eq!(replay.path(), "/signin", "the used flow is gone");
    replay.expect("That step expired");
    portal.stop().await;
}

#[tokio::test]
async fn too_many_wrong_codes_end_the_attempt_even_after_a_new_code() {
    let portal = TestPortal::start().await;
    let b = portal.signed_up("Jane Doe", "jane@example.com", PIN).await;
    let mut seen = portal.smtp.matching("jane@example.com", "access code");
    b.enter_pin("jane@example.com", PIN).await;
    let code = portal.smtp.next_code("jane@example.com", &mut seen).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        b.submit_code(wrong).await.expect("That code is not right");
    }
    // Asking for a new code does not reset the count.
    portal.sql("UPDATE auth_flows SET last_code_at = 1");
    b.post("/signin/resend", &[])
        .await
        .expect("We sent a new access code");
    let fresh = portal.smtp.next_code("jane@example.com", &mut seen).await;
    b.submit_code(wrong).await.expect("Too many wrong codes");
    b.submit_code(&fresh).await.expect("Too many wrong codes");
    portal.stop().await;
}

#[tokio::test]
async fn pin_rules_are_explained_on_the_page() {
    let portal = TestPortal::start().await;
    portal.invite("Jane Doe", "jane@example.com").await;
    let b = portal.browser();
    let mut seen = 0;
    b.start_sign_up("Jane Doe", "jane@example.com").await;
    b.post_next_code(&portal, "jane@example.com", &mut seen, "/signup/verify")
        .await
        .expect("Create PIN");
    for (pin, confirm, message) in [
        ("12ab56", "12ab56", "digits only"),
        ("4829", "4829", "exactly 6 digits"),
        ("482913", "482914", "do not match"),
        ("111111", "111111", "too easy to guess"),
    ] {
        let page = b
            .post("/signup/pin", &[("pin", pin), ("confirm", confirm)])
            .await;
        page.refused(message);
    }
    b.choose_pin("/signup/pin", PIN)
        .await
        .expect("Your account is ready");
    portal.stop().await;
}

#[tokio::test]
async fn wrong_pins_lock_out_for_a_while_known_or_unknown() {
    let portal = TestPortal::start().await;
    portal.invite("Jane Doe", "jane@example.com").await;
    portal
        .browser()
        .sign_up(&portal, "Jane Doe", "jane@example.com", PIN)
        .await;
    for email in ["jane@example.com", "nobody@example.com"] {
        let b = portal.browser();
        b.enter_email(email).await;
        // A malformed PIN is explained, and not counted as a guess.
        b.submit_pin("12ab")
            .await
            .expect("Your PIN is the 6 digits");
        for _ in 0..5 {
            let page = b.submit_pin("000001").await;
            page.expect("The email or PIN is not right");
        }
        let locked = b.submit_pin(PIN).await;
        locked.expect("Too many wrong attempts. Try again in 1 minute,");
    }
    // When the lockout is over, the right PIN works again and resets the count.
    portal.sql("UPDATE auth_throttle SET locked_until = 0");
    let b = portal.browser();
    b.sign_in(&portal, "jane@example.com", PIN).await;
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM auth_throttle WHERE key = 'pin:jane@example.com'"),
        0
    );
    portal.stop().await;
}

#[tokio::test]
async fn answers_do_not_reveal_which_emails_have_portals() {
    let portal = TestPortal::start().await;
    portal.invite("Jane Doe", "jane@example.com").await;
    let known = portal
        .browser()
        .start_sign_up("Jane Doe", "jane@example.com")
        .await;
    let unknown = portal
        .browser()
        .start_sign_up("Jane Doe", "stranger@example.com")
        .await;
    assert_eq!(
        (known.status, known.path()),
        (unknown.status, unknown.path())
    );
    assert_eq!(
        known.text_without("jane@example.com"),
        unknown.text_without("stranger@example.com")
    );
    assert_eq!(
        portal.smtp.matching("stranger@example.com", ""),
        0,
        "an uninvited address gets nothing"
    );
    portal.smtp.first("jane@example.com", "access code").await;

    // Sign-in: both go to the PIN step; a wrong PIN reads the same.
    portal
        .browser()
        .sign_up(&portal, "Jane Doe", "jane@example.com", PIN)
        .await;
    let (a, b) = (portal.browser(), portal.browser());
    let pa = a.enter_email("jane@example.com").await;
    let pb = b.enter_email("stranger@example.com").await;
    assert_eq!((pa.status, pa.path()), (pb.status, pb.path()));
    let wa = a.submit_pin("000001").await;
    let wb = b.submit_pin("000001").await;
    assert_eq!((wa.status, wa.path()), (wb.status, wb.path()));
    assert_eq!(
        wa.text_without("jane@example.com"),
        wb.text_without("stranger@example.com")
    );

    // Signing up again with an address that has a portal: same page, and a note by email.
    let again = portal
        .browser()
        .start_sign_up("Jane Doe", "jane@example.com")
        .await;
    assert_eq!(
        again.text_without("jane@example.com"),
        unknown.text_without("stranger@example.com")
    );
    portal
        .smtp
        .first("jane@example.com", "You already have a portal")
        .await;
    portal.stop().await;
}

#[tokio::test]
async fn open_signup_lets_anyone_create_a_portal() {
    let portal = TestPortal::start_with(|c| c.accounts.signup = portal::config::Signup::Open).await;
    let b = portal.browser();
    b.sign_up(&portal, "Sam Walk-In", "sam@example.com", PIN)
        .await;
    b.sign_in(&portal, "sam@example.com", PIN)
        .await
        .expect("Welcome, Sam Walk-In");
    portal.stop().await;
}

#[tokio::test]
async fn forgot_pin_sets_a_new_one_and_signs_out_everywhere() {
    let (portal, first) = TestPortal::with_jane().await;
    let b = portal.browser();
    let mut seen = portal.smtp.matching("jane@example.com", "access code");
    b.enter_email("jane@example.com").await;
    b.post("/signin/forgot", &[]).await.expect("Reset your PIN");
    b.post_next_code(&portal, "jane@example.com", &mut seen, "/signin/reset")
        .await
        .expect("Set a new PIN");
    b.choose_pin("/signin/reset/pin", "730264")
        .await
        .expect("Your new PIN is set");
    portal
        .smtp
        .first("jane@example.com", "PIN was changed")
        .await;
    assert_eq!(
        first.get("/").await.path(),
        "/signin",
        "the other browser was signed out"
    );
    // The old PIN no longer works; the new one does; the old browser is no longer trusted.
    portal.browser().pin_refused("jane@example.com", PIN).await;
    assert_eq!(
        first.enter_email("jane@example.com").await.path(),
        "/signin/pin"
    );
    portal
        .browser()
        .sign_in(&portal, "jane@example.com", "730264")
        .await;
    portal.stop().await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let (portal, b) = TestPortal::with_jane().await;
    let page = b.post_without_csrf("/signout", &[]).await;
    assert_eq!(page.status, 403);
    page.expect("did not come from this portal");
    assert_eq!(b.get("/").await.path(), "/", "still signed in");
    let forged = b
        .post_without_csrf(
            "/signin",
            &[("email", "jane@example.com"), ("csrf", "forged")],
        )
        .await;
    assert_eq!(forged.status, 403);
    portal.stop().await;
}

#[tokio::test]
async fn sessions_end_after_inactivity() {
    let (portal, b) = TestPortal::with_jane().await;
    portal.sql("UPDATE sessions SET last_seen_at = last_seen_at - 31 * 60");
    assert_eq!(b.get("/").await.path(), "/signin");
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM sessions"),
        0,
        "the idle session is deleted"
    );
    portal.stop().await;
}

#[tokio::test]
async fn a_visitor_can_request_a_portal_and_staff_are_told() {
    let portal =
        TestPortal::start_with(|c| c.mail.staff_notify = vec!["office@smithlee.example".into()])
            .await;
    let b = portal.browser();
    b.get("/request-portal").await.expect("Request a portal");
    let bad = b
        .post(
            "/request-portal",
            &[("name", ""), ("email", "x@example.com")],
        )
        .await;
    bad.refused("Enter your name");
    let ok = b
        .post(
            "/request-portal",
            &[
                ("name", "Pat Lee"),
                ("email", "pat@example.com"),
                ("phone", "555-0199"),
                ("message", "New client"),
            ],
        )
        .await;
    ok.expect("Thank you. The firm will be in touch");
    let mail = portal
        .smtp
        .first("office@smithlee.example", "Portal request from Pat Lee")
        .await;
    assert!(mail.text().contains("555-0199"));
    portal.stop().await;
}

#[tokio::test]
async fn parallel_guesses_cannot_exceed_the_attempt_limits() {
    let portal = TestPortal::start().await;
    portal.invite("Jane Doe", "jane@example.com").await;
    portal
        .browser()
        .sign_up(&portal, "Jane Doe", "jane@example.com", PIN)
        .await;

    // Twenty wrong PINs at once: only the first handful are even checked.
    let b = portal.browser();
    b.enter_email("jane@example.com").await;
    let guesses = (0..20).map(|i| {
        let pin = format!("{:06}", 100_000 + i);
        let b = &b;
        async move { b.submit_pin(&pin).await }
    });
    futures::future::join_all(guesses).await;
    assert_eq!(
        portal.query_i64("SELECT failures FROM auth_throttle WHERE key = 'pin:jane@example.com'"),
        5
    );
    b.submit_pin(PIN).await.expect("Too many wrong attempts");

    // Twenty wrong codes at once: the flow still allows only five tries in all.
    portal.sql("DELETE FROM auth_throttle");
    let c = portal.browser();
    let mut seen = portal.smtp.matching("jane@example.com", "access code");
    c.enter_pin("jane@example.com", PIN).await;
    let code = portal.smtp.next_code("jane@example.com", &mut seen).await;
    let guesses = (0..20).map(|i| {
        let guess = format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
        let c = &c;
        async move { c.submit_code(&guess).await }
    });
    futures::future::join_all(guesses).await;
    assert_eq!(
        portal.query_i64(
            "SELECT code_failures FROM auth_flows WHERE purpose = 'signin' AND stage = 'code'"
        ),
        5
    );
    c.submit_code(&code).await.expect("Too many wrong codes");
    portal.stop().await;
}

#[tokio::test]
async fn a_right_pin_with_no_code_left_to_send_lands_on_the_code_page() {
    let portal = TestPortal::start_with(|c| {
        c.accounts.codes_per_account_per_hour = NonZero::new(1).unwrap()
    })
    .await;
    // A sign-up code: not the account's budget.
    let b = portal.signed_up("Jane Doe", "jane@example.com", PIN).await;
    b.sign_in(&portal, "jane@example.com", PIN).await; // the account's one code
    let other = portal.browser();
    other.enter_email("jane@example.com").await;
    let page = other.submit_pin(PIN).await;
    page.expect("Enter your access code")
        .expect("Too many codes were asked for");
    assert_eq!(page.status, 422);
    portal.stop().await;
}
