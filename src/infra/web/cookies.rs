//! Cookie names and attributes. Over HTTPS every cookie is `__Host-` prefixed and
//! Secure; all are HttpOnly, SameSite=Lax and scoped to `/`.

use poem::web::cookie::{Cookie, SameSite};

#[derive(Clone, Debug)]
pub struct CookieNames {
    pub session: String,
    pub staff_session: String,
    pub device: String,
    pub flow: String,
    pub browser: String,
    secure: bool,
}

impl CookieNames {
    pub fn new(https: bool) -> Self {
        let name = |base: &str| {
            if https {
                format!("__Host-{base}")
            } else {
                base.to_string()
            }
        };
        CookieNames {
            session: name("portal_session"),
            staff_session: name("portal_staff"),
            device: name("portal_device"),
            flow: name("portal_flow"),
            browser: name("portal_browser"),
            secure: https,
        }
    }

    /// A cookie that lives for `max_age` seconds, or for the browser session when `None`.
    pub fn make(&self, name: &str, value: &str, max_age: Option<i64>) -> Cookie {
        let mut c = Cookie::new_with_str(name, value);
        c.set_http_only(true);
        c.set_secure(self.secure);
        c.set_same_site(SameSite::Lax);
        c.set_path("/");
        if let Some(age) = max_age {
            c.set_max_age(std::time::Duration::from_secs(age.max(0) as u64));
        }
        c
    }

    pub fn expire(&self, name: &str) -> Cookie {
        self.make(name, "", Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_cookies_are_host_prefixed_and_secure() {
        let names = CookieNames::new(true);
        let c = names.make(&names.session, "v", None).to_string();
        assert!(c.starts_with("__Host-portal_session=v"), "{c}");
        assert!(
            c.contains("Secure")
                && c.contains("HttpOnly")
                && c.contains("SameSite=Lax")
                && c.contains("Path=/")
        );
        assert!(!c.contains("Domain"));
    }
}
