//! The questionnaire pages through the real server with the test kind: a
//! section saved without JavaScript, a change saved by the script (JSON), an
//! upload against a question landing in Documents, Submit, the staff view
//! without hidden answers (and with them on request), Return and Accept.

use std::sync::Arc;

use super::{World, world};
use crate::accounts::session::Subject;

struct Browser {
    http: reqwest::Client,
    base: String,
    csrf: std::sync::Mutex<String>,
}

impl Browser {
    async fn signed_in(w: &World, base: &str, subject: Subject, cookie: &str) -> Browser {
        let token = w.session(subject).await;
        let jar = Arc::new(reqwest::cookie::Jar::default());
        jar.add_cookie_str(&format!("{cookie}={token}; Path=/"), &base.parse().unwrap());
        let http = reqwest::Client::builder()
            .cookie_provider(jar)
            .build()
            .unwrap();
        Browser {
            http,
            base: base.to_string(),
            csrf: std::sync::Mutex::new(String::new()),
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        self.read(r).await
    }

    async fn read(&self, r: reqwest::Response) -> (u16, String) {
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        let re = regex::Regex::new(r#"name="csrf" value="([^"]+)""#).unwrap();
        if let Some(c) = re.captures(&body) {
            *self.csrf.lock().unwrap() = c[1].to_string();
        }
        (status, body)
    }

    fn form(&self, fields: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        form.push(("csrf".into(), self.csrf.lock().unwrap().clone()));
        form
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let r = self
            .http
            .post(url)
            .form(&self.form(fields))
            .send()
            .await
            .unwrap();
        self.read(r).await
    }

    async fn post_json(&self, path: &str, fields: &[(&str, &str)]) -> serde_json::Value {
        let url = format!("{}{path}", self.base);
        let r = self
            .http
            .post(url)
            .header("accept", "application/json")
            .form(&self.form(fields));
        let body = r.send().await.unwrap().text().await.unwrap();
        serde_json::from_str(&body).unwrap()
    }

    async fn upload(&self, path: &str, field: &str, name: &str, bytes: &[u8]) -> (u16, String) {
        let form = reqwest::multipart::Form::new()
            .text("csrf", self.csrf.lock().unwrap().clone())
            .text("field", field.to_string())
            .part(
                "files",
                reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()),
            );
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        self.read(r).await
    }
}

// One story from the first answer to acceptance, as the integration tests tell theirs.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn a_questionnaire_from_first_answer_to_accepted() {
    let w = world("quiz-http").await;
    let served = w.serve().await;
    let base = served.base.clone();
    let task = w.assign().await;
    let path = format!("/tasks/{}", task.public_id);
    let jane = Browser::signed_in(&w, &base, Subject::Client(w.client.id), "portal_session").await;

    let (status, home) = jane.get("/").await;
    assert_eq!(status, 200);
    assert!(
        home.contains("Get Started") && home.contains("0 of 2 done"),
        "{home}"
    );
    let (_, page) = jane.get(&path).await;
    assert!(
        page.contains(r#"name="v:married""#) && page.contains("Save section"),
        "{page}"
    );
    assert!(
        page.contains(r#"id="f-spouse" data-field="spouse" hidden disabled"#),
        "spouse starts hidden"
    );
    assert!(page.contains(r#"capture="environment""#) && page.contains("accept="));

    // Without JavaScript: the section's plain POST saves and shows the page again.
    let (status, page) = jane
        .post(
            &format!("{path}/save"),
            &[("f", "married"), ("v:married", "yes")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Saved.") && page.contains(r#"id="f-spouse" data-field="spouse">"#),
        "{page}"
    );
    // With it: one change, and the new visibility and progress in the reply.
    let reply = jane
        .post_json(
            &format!("{path}/save"),
            &[("f", "spouse"), ("v:spouse", "Sam")],
        )
        .await;
    assert_eq!(reply["saved"], true, "{reply}");
    assert_eq!(
        (reply["done"].as_u64(), reply["total"].as_u64()),
        (Some(2), Some(3))
    );
    let reply = jane
        .post_json(
            &format!("{path}/save"),
            &[("f", "married"), ("v:married", "maybe")],
        )
        .await;
    assert_eq!(reply["errors"][0]["field"], "married", "{reply}");
    assert_eq!(reply["errors"][0]["message"], "Choose Yes or No.");

    // A file against the W-2 question lands in Documents.
    let (status, page) = jane
        .upload(
            &format!("{path}/upload"),
            "w2",
            "w2-2025.pdf",
            b"%PDF-1.4 w2",
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Your file was received.") && page.contains("w2-2025.pdf"),
        "{page}"
    );
    let (_, docs) = jane.get("/documents").await;
    assert!(
        docs.contains("w2-2025.pdf") && docs.contains("2025 &#x2f; Tasks"),
        "{docs}"
    );
    let (status, _) = jane
        .upload(&format!("{path}/upload"), "spouse", "x.pdf", b"%PDF-1.4 x")
        .await;
    assert_eq!(status, 422, "a text question takes no file");

    // Spouse hidden again, then Submit: the hidden answer is not sent, nor shown to staff.
    jane.post(
        &format!("{path}/save"),
        &[("f", "married"), ("v:married", "no")],
    )
    .await;
    let (_, page) = jane.post(&format!("{path}/submit"), &[]).await;
    assert!(page.contains("You sent this to your firm"), "{page}");
    let sent = w.quiz.submitted_fields();
    assert_eq!(sent, ["married", "w2"]);
    let (status, _) = jane
        .post(
            &format!("{path}/save"),
            &[("f", "married"), ("v:married", "yes")],
        )
        .await;
    assert_eq!(status, 422, "a submitted task cannot be changed");

    let ann = Browser::signed_in(&w, &base, Subject::Staff(w.staff.id), "portal_staff").await;
    let staff_path = format!("/staff/tasks/{}", task.public_id);
    let (_, page) = ann.get(&staff_path).await;
    assert!(
        !page.contains("Sam") && page.contains("Show hidden answers"),
        "{page}"
    );
    assert!(
        page.contains("w2-2025.pdf") && page.contains("quiz called"),
        "{page}"
    );
    let (_, page) = ann.get(&format!("{staff_path}?hidden=1")).await;
    assert!(page.contains("Sam"), "{page}");
    let (status, json) = ann.get(&format!("{staff_path}/export")).await;
    assert_eq!(status, 200);
    assert!(
        json.contains("\"married\"") && json.contains("w2-2025.pdf") && !json.contains("Sam"),
        "{json}"
    );
    let (_, json) = ann.get(&format!("{staff_path}/export?hidden=1")).await;
    assert!(json.contains("Sam"), "{json}");
    let (_, body) = jane.get(&format!("{staff_path}/export")).await;
    assert!(
        !body.contains("w2-2025.pdf"),
        "a client is sent to the staff sign-in"
    );

    // Return with a reason: back to the client, who sees why and sends another file.
    let (_, page) = ann
        .post(
            &format!("{staff_path}/review"),
            &[("d:w2", "return"), ("why:w2", "")],
        )
        .await;
    assert!(page.contains("say why it is returned"), "{page}");
    let (_, page) = ann
        .post(
            &format!("{staff_path}/review"),
            &[("d:w2", "return"), ("why:w2", "Last year's")],
        )
        .await;
    assert!(page.contains("Your review was saved."), "{page}");
    let (_, page) = jane.get(&path).await;
    assert!(
        page.contains("Returned by your firm: Last year&#x27;s")
            || page.contains("Returned by your firm: Last year's"),
        "{page}"
    );
    jane.upload(
        &format!("{path}/upload"),
        "w2",
        "w2-right.pdf",
        b"%PDF-1.4 right",
    )
    .await;
    jane.post(&format!("{path}/submit"), &[]).await;
    let (_, page) = ann
        .post(&format!("{staff_path}/review"), &[("d:w2", "accept")])
        .await;
    assert!(page.contains("Completed"), "{page}");
    let (_, home) = jane.get("/").await;
    assert!(
        home.contains("Completed Tasks") && home.contains(&format!("/tasks/{}", task.public_id))
    );
    let (_, page) = jane.get(&path).await;
    assert!(
        !page.contains("Save section") && page.contains("No"),
        "read-only once completed"
    );

    served.shut_down().await;
}
