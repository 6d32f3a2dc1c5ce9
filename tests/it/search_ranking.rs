//! Issue 6, item 7: how a client's search results rank reveals nothing about
//! the words in other clients' documents.

use crate::common::{TestPortal, pdf_with_text, staff_browser};

fn order(body: &str) -> Vec<String> {
    regex::Regex::new(r#"class="doc-name"[^>]*>([^<]+)<"#)
        .unwrap()
        .captures_iter(body)
        .map(|c| c[1].to_string())
        .collect()
}

/// Bob plants three notes whose order for "alpha secret" depends on which word
/// is rarer, then tries to learn whether Jane's files are full of "secret".
#[tokio::test]
async fn a_client_cannot_probe_other_clients_words_through_the_ranking() {
    let portal = TestPortal::start().await;
    let bob = portal.client("Bob Roe", "bob@example.com", "730264").await;
    portal.invite("Jane Doe", "jane@example.com").await;
    let staff = staff_browser(&portal).await;
    staff
        .publish(
            &portal.client_id("bob@example.com"),
            "2025 / Notes",
            "",
            &[
                ("Note one.pdf", pdf_with_text("alpha alpha secret")),
                ("Note two.pdf", pdf_with_text("alpha secret secret")),
                ("Note three.pdf", pdf_with_text("alpha other words")),
            ],
        )
        .await
        .expect("published");
    let probe = || async { order(&bob.get("/documents?q=alpha+secret&sort=").await.body) };
    let before = probe().await;
    assert_eq!(before, ["Note two.pdf", "Note one.pdf"]);

    let jane = portal.client_id("jane@example.com");
    for batch in 0..3 {
        let files: Vec<(String, Vec<u8>)> = (0..10)
            .map(|i| {
                (
                    format!("Letter {batch}-{i}.pdf"),
                    pdf_with_text("secret secret secret"),
                )
            })
            .collect();
        let files: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        staff
            .publish(&jane, "2025 / Letters", "", &files)
            .await
            .expect("published");
    }
    assert_eq!(portal.state.search.count(), 33);
    assert_eq!(
        probe().await,
        before,
        "the ranking changed with Jane's files"
    );
    portal.stop().await;
}
