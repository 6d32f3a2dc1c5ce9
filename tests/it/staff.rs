//! F1 staff sign-in with password and TOTP, and the staff home.

use crate::common::{Browser, TestPortal};

const PASSWORD: &str = "correct horse battery staple";

async fn add_staff(portal: &TestPortal) {
    portal::firm::add_staff(&portal.state, "ann@smithlee.example", "Ann Smith", PASSWORD)
        .await
        .unwrap();
}

fn secret_of(page: &str) -> String {
    regex::Regex::new(r#"<code class="secret">([A-Z2-7]+)</code>"#)
        .unwrap()
        .captures(page)
        .expect("secret shown")[1]
        .to_string()
}

/// Signs in and enrols; returns the browser, the TOTP secret and the code used.
async fn staff_sign_in(portal: &TestPortal) -> (Browser, String, String) {
    let b = portal.browser();
    let page = b
        .post(
            "/staff/signin",
            &[("email", "ann@smithlee.example"), ("password", PASSWORD)],
        )
        .await;
    page.expect("Set up your authenticator").expect("<svg");
    let secret = secret_of(&page.body);
    let code = portal::firm::totp::current_code(&secret).unwrap();
    let home = b.post("/staff/totp", &[("code", &code)]).await;
    assert_eq!(home.path(), "/staff", "{}", home.body);
    home.expect("Hello, Ann Smith");
    (b, secret, code)
}

#[tokio::test]
async fn staff_enrol_totp_then_need_it_every_time() {
    let portal = TestPortal::start().await;
    add_staff(&portal).await;
    let (b, _secret, used) = staff_sign_in(&portal).await;
    b.post("/staff/signout", &[])
        .await
        .expect("You have signed out");
    assert_eq!(b.get("/staff").await.path(), "/staff/signin");

    let again = b
        .post(
            "/staff/signin",
            &[("email", "ann@smithlee.example"), ("password", PASSWORD)],
        )
        .await;
    again.expect("Authenticator code");
    assert!(
        !again.has("class=\"secret\""),
        "the secret is shown only at enrolment"
    );
    let wrong = b.post("/staff/totp", &[("code", "000000")]).await;
    assert_eq!(wrong.status, 422);
    // The code used at enrolment cannot be used again.
    let replay = b.post("/staff/totp", &[("code", &used)]).await;
    assert_eq!(replay.status, 422, "a TOTP code works once");
    portal.sql("UPDATE staff SET totp_last_step = 0");
    let ok = b.post("/staff/totp", &[("code", &used)]).await;
    assert_eq!(ok.path(), "/staff");
    portal.stop().await;
}

#[tokio::test]
async fn wrong_password_is_refused_without_saying_why() {
    let portal = TestPortal::start().await;
    add_staff(&portal).await;
    let b = portal.browser();
    let wrong = b
        .post(
            "/staff/signin",
            &[
                ("email", "ann@smithlee.example"),
                ("password", "not the password"),
            ],
        )
        .await;
    let unknown = b
        .post(
            "/staff/signin",
            &[
                ("email", "zed@smithlee.example"),
                ("password", "not the password"),
            ],
        )
        .await;
    wrong.refused("The email or password is not right");
    unknown.expect("The email or password is not right");
    portal.stop().await;
}

#[tokio::test]
async fn weak_staff_passwords_are_refused() {
    let portal = TestPortal::start().await;
    for weak in ["short", "password1234"] {
        let err = portal::firm::add_staff(&portal.state, "ann@smithlee.example", "Ann", weak)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
    }
    portal.stop().await;
}

#[tokio::test]
async fn staff_invite_clients_and_answer_portal_requests() {
    let portal = TestPortal::start().await;
    add_staff(&portal).await;
    let (b, _, _) = staff_sign_in(&portal).await;
    let page = b.add_client("Jane Doe", "jane@example.com").await;
    page.expect("The client was invited by email")
        .expect("jane@example.com");
    portal
        .smtp
        .first("jane@example.com", "created a client portal")
        .await;
    let dup = b.add_client("Jane Again", "JANE@example.com").await;
    dup.expect("already belongs to another portal");
    b.post("/staff/clients/resend", &[("email", "jane@example.com")])
        .await
        .expect("The invitation was sent again");
    portal
        .smtp
        .wait_nth("jane@example.com", "created a client portal", 1)
        .await;

    let invite = request_link(&portal, &b, "invite").await;
    b.post(&invite, &[]).await.expect("The request was handled");
    portal
        .smtp
        .first("pat@example.com", "created a client portal")
        .await;
    portal.stop().await;
}

#[tokio::test]
async fn staff_lockouts_are_per_address_and_network_and_can_be_lifted() {
    let portal = TestPortal::start().await;
    add_staff(&portal).await;
    let b = portal.browser();
    for _ in 0..5 {
        b.post(
            "/staff/signin",
            &[
                ("email", "ann@smithlee.example"),
                ("password", "not the password"),
            ],
        )
        .await;
    }
    let locked = b
        .post(
            "/staff/signin",
            &[("email", "ann@smithlee.example"), ("password", PASSWORD)],
        )
        .await;
    locked.expect("Too many wrong attempts. Try again in 1 minute.");
    // Only this address from this network is locked (tests all come from 127.0.0.1,
    // so the key is checked directly).
    assert_eq!(
        portal.query_i64(
            "SELECT count(*) FROM auth_throttle WHERE key = 'staff:ann@smithlee.example|127.0.0.1'"
        ),
        1
    );
    portal::firm::unlock_staff(&portal.state, "ann@smithlee.example")
        .await
        .unwrap();
    let ok = b
        .post(
            "/staff/signin",
            &[("email", "ann@smithlee.example"), ("password", PASSWORD)],
        )
        .await;
    ok.expect("Set up your authenticator");
    portal.stop().await;
}

#[tokio::test]
async fn staff_can_dismiss_a_portal_request() {
    let portal = TestPortal::start().await;
    add_staff(&portal).await;
    let (b, _, _) = staff_sign_in(&portal).await;
    let dismiss = request_link(&portal, &b, "dismiss").await;
    let page = b.post(&dismiss, &[]).await;
    page.expect("The request was handled");
    assert!(
        !page.has("Pat Lee"),
        "a dismissed request is no longer open"
    );
    assert_eq!(
        portal
            .smtp
            .matching("pat@example.com", "created a client portal"),
        0,
        "dismissing invites nobody"
    );
    portal.stop().await;
}

/// Pat Lee asks for a portal; returns the staff home's link to `action` the request.
async fn request_link(portal: &TestPortal, b: &Browser, action: &str) -> String {
    portal
        .browser()
        .post(
            "/request-portal",
            &[("name", "Pat Lee"), ("email", "pat@example.com")],
        )
        .await;
    portal
        .smtp
        .first("ann@smithlee.example", "Portal request from Pat Lee")
        .await;
    let home = b.get("/staff").await;
    home.expect("Pat Lee");
    let link = regex::Regex::new(&format!("/staff/requests/[^/]+/{action}")).unwrap();
    link.find(&home.body).unwrap().as_str().to_string()
}
