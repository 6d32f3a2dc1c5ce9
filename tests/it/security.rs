//! S5 Security Settings, and that one client never sees another's.

use crate::common::{PIN, TestPortal};

#[tokio::test]
async fn merged_email_joins_the_portal_but_cannot_sign_in() {
    let (portal, b) = TestPortal::with_jane().await;
    b.get("/security")
        .await
        .expect("Merge Emails")
        .expect("Update PIN")
        .expect("Update Email ID");
    let mut seen = 0;
    b.post("/security/merge", &[("email", "jane.doe@work.example")])
        .await
        .expect("Verify the other address");
    let page = b
        .post_next_code(
            &portal,
            "jane.doe@work.example",
            &mut seen,
            "/security/merge/verify",
        )
        .await;
    page.expect("The address was added to your portal")
        .expect("jane.doe@work.example");
    portal
        .smtp
        .first("jane@example.com", "merged into your portal")
        .await;

    // The merged address cannot sign in, nor sign up for a separate portal.
    let other = portal.browser();
    other.enter_email("jane.doe@work.example").await;
    other
        .submit_pin(PIN)
        .await
        .expect("The email or PIN is not right");
    portal
        .browser()
        .start_sign_up("Jane", "JANE.DOE@work.example")
        .await;
    portal
        .smtp
        .first("jane.doe@work.example", "You already have a portal")
        .await;
    assert_eq!(
        portal.smtp.matching("jane.doe@work.example", "access code"),
        1,
        "no sign-up code for a merged address"
    );

    // An address that belongs to another portal cannot be merged.
    portal.invite("Bob Roe", "bob@example.com").await;
    let mut bob_seen = 0;
    b.post("/security/merge", &[("email", "bob@example.com")])
        .await;
    let refused = b
        .post_next_code(
            &portal,
            "bob@example.com",
            &mut bob_seen,
            "/security/merge/verify",
        )
        .await;
    refused.refused("already belongs to another portal");
    portal.stop().await;
}

#[tokio::test]
async fn update_pin_needs_the_current_pin_and_a_code() {
    let (portal, b) = TestPortal::with_jane().await;
    let other = portal.browser();
    other.sign_in(&portal, "jane@example.com", PIN).await;

    let wrong = b
        .post(
            "/security/pin",
            &[
                ("current", "000001"),
                ("pin", "730264"),
                ("confirm", "730264"),
            ],
        )
        .await;
    wrong.refused("That PIN is not right");
    b.post(
        "/security/pin",
        &[("current", PIN), ("pin", "730264"), ("confirm", "730265")],
    )
    .await
    .expect("do not match");

    let mut seen = portal.smtp.matching("jane@example.com", "access code");
    b.change_pin(PIN, "730264")
        .await
        .expect("Confirm your new PIN");
    let done = b
        .post_next_code(
            &portal,
            "jane@example.com",
            &mut seen,
            "/security/pin/verify",
        )
        .await;
    done.expect("Your PIN was changed");
    assert_eq!(done.path(), "/security", "this browser stays signed in");
    assert_eq!(other.get("/").await.path(), "/signin", "other sessions end");
    portal
        .smtp
        .first("jane@example.com", "PIN was changed")
        .await;
    b.post("/signout", &[]).await;
    b.sign_in(&portal, "jane@example.com", "730264").await;
    portal.stop().await;
}

#[tokio::test]
async fn update_email_takes_effect_after_the_new_address_is_verified() {
    let (portal, b) = TestPortal::with_jane().await;
    let mut seen = 0;
    // Re-authentication: the current PIN comes first.
    let refused = b.change_email("000001", "Jane@New.Example").await;
    refused.refused("That PIN is not right");
    assert_eq!(portal.smtp.matching("jane@new.example", ""), 0);
    b.change_email(PIN, "Jane@New.Example")
        .await
        .expect("Verify your new email");
    // Until verified, nothing changes.
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM client_emails WHERE email_key = 'jane@new.example'"),
        0
    );
    b.post_next_code(
        &portal,
        "Jane@new.example",
        &mut seen,
        "/security/email/verify",
    )
    .await
    .expect("Your sign-in email was changed");
    let told = portal
        .smtp
        .first("jane@example.com", "sign-in email was changed")
        .await;
    assert!(told.text().contains("J***@new.example"), "{}", told.text());

    b.post("/signout", &[]).await;
    b.sign_in(&portal, "jane@new.example", PIN)
        .await
        .expect("Welcome, Jane Doe");
    let old = portal.browser();
    old.pin_refused("jane@example.com", PIN).await;
    portal.stop().await;
}

#[tokio::test]
async fn trusted_devices_can_be_revoked() {
    let (portal, b) = TestPortal::with_jane().await;
    let page = b.get("/security").await;
    page.expect("Chrome on Linux").expect("this browser");
    let id = regex::Regex::new(r"/security/devices/([^/]+)/revoke")
        .unwrap()
        .captures(&page.body)
        .unwrap()[1]
        .to_string();
    b.post(&format!("/security/devices/{id}/revoke"), &[])
        .await
        .expect("The device was removed");
    b.post("/signout", &[]).await;
    assert_eq!(
        b.enter_email("jane@example.com").await.path(),
        "/signin/pin",
        "PIN asked again"
    );
    portal.stop().await;
}

#[tokio::test]
async fn a_second_client_cannot_see_or_touch_the_first() {
    let (portal, jane) = TestPortal::with_jane().await;
    let bob = portal.client("Bob Roe", "bob@example.com", "730264").await;
    let jane_page = jane.get("/security").await;
    let jane_device = regex::Regex::new(r"/security/devices/([^/]+)/revoke")
        .unwrap()
        .captures(&jane_page.body)
        .unwrap()[1]
        .to_string();

    let bob_page = bob.get("/security").await;
    assert!(
        !bob_page.has("jane@example.com"),
        "Bob never sees Jane's data"
    );
    let home = bob.get("/").await;
    assert!(home.has("Welcome, Bob Roe") && !home.has("Jane"));
    let attempt = bob
        .post(&format!("/security/devices/{jane_device}/revoke"), &[])
        .await;
    assert_eq!(
        attempt.status, 404,
        "another client's device id is not found"
    );
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM trusted_devices"),
        2,
        "nothing was removed"
    );

    // A client session never reaches the staff area.
    assert_eq!(bob.get("/staff").await.path(), "/staff/signin");
    portal.stop().await;
}

/// Every code page shares one set of handlers, told apart by the route: each
/// page's "Send a new code" must act on its own flow and show its own page.
#[tokio::test]
async fn each_code_page_resends_for_its_own_flow() {
    let portal = TestPortal::start().await;
    let too_soon = "Please wait";

    let visitor = portal.browser();
    visitor
        .start_sign_up("Ann Poe", "ann@example.com")
        .await
        .expect("Verify your email");
    let page = visitor.post("/signup/resend", &[]).await;
    page.refused(too_soon).expect("Verify your email");

    let b = portal.client("Jane Doe", "jane@example.com", PIN).await;
    let forgot = portal.browser();
    forgot.enter_email("jane@example.com").await;
    forgot
        .post("/signin/forgot", &[])
        .await
        .expect("Reset your PIN");
    let page = forgot.post("/signin/reset/resend", &[]).await;
    page.refused(too_soon).expect("Reset your PIN");

    let changes = [
        (
            "merge",
            vec![("email", "jane.doe@work.example")],
            "Verify the other address",
        ),
        (
            "pin",
            vec![("current", PIN), ("pin", "736251"), ("confirm", "736251")],
            "Confirm your new PIN",
        ),
        (
            "email",
            vec![("current", PIN), ("email", "jane.new@example.com")],
            "Verify your new email",
        ),
    ];
    for (change, form, title) in changes {
        b.post(&format!("/security/{change}"), &form)
            .await
            .expect(title);
        let page = b.post(&format!("/security/{change}/resend"), &[]).await;
        assert_eq!(page.status, 422, "{change}: {}", page.body);
        page.expect(too_soon).expect(title);
        let shown = b.get(&format!("/security/{change}")).await;
        shown.expect(title);
    }
    portal.stop().await;
}
