//! RFC 6238 time-based one-time passwords for staff, with a QR code for enrolment.

use totp_rs::{Algorithm, Secret, TOTP};

use crate::accounts::{AccountError, AccountResult};

const STEP_SECS: u64 = 30;

pub fn new_secret() -> String {
    match Secret::generate_secret().to_encoded() {
        Secret::Encoded(s) => s,
        Secret::Raw(bytes) => Secret::Raw(bytes).to_encoded().to_string(),
    }
}

fn totp(secret: &str, issuer: &str, account: &str) -> AccountResult<TOTP> {
    let bytes = Secret::Encoded(secret.to_string())
        .to_bytes()
        .map_err(|e| {
            AccountError::Internal(crate::error::AppError::internal(anyhow::anyhow!(
                "TOTP secret: {e:?}"
            )))
        })?;
    let issuer = issuer.replace(':', " ");
    let account = account.replace(':', " ");
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECS,
        bytes,
        Some(issuer),
        account,
    )
    .map_err(|e| {
        AccountError::Internal(crate::error::AppError::internal(anyhow::anyhow!(
            "TOTP: {e:?}"
        )))
    })
}

/// What an enrolment page shows: the secret for typing in, and a QR code (SVG).
pub struct Enrolment {
    pub secret: String,
    pub qr_svg: String,
}

pub fn enrolment(secret: &str, issuer: &str, account: &str) -> AccountResult<Enrolment> {
    let url = totp(secret, issuer, account)?.get_url();
    let qr = qrcode::QrCode::new(url.as_bytes()).map_err(|e| {
        AccountError::Internal(crate::error::AppError::internal(anyhow::anyhow!(
            "QR code: {e}"
        )))
    })?;
    let qr_svg = qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(Enrolment {
        secret: secret.to_string(),
        qr_svg,
    })
}

/// The time step of a code valid now (one step of clock drift either way) that is
/// newer than `last_step`; `None` if the code is wrong or was already used.
pub fn verify(secret: &str, code: &str, last_step: i64) -> AccountResult<Option<i64>> {
    let t = totp(secret, "", "staff")?;
    let code: String = code.chars().filter(|c| c.is_ascii_digit()).collect();
    let now = crate::infra::db::now() as u64;
    let current = (now / STEP_SECS) as i64;
    for step in [current - 1, current, current + 1] {
        if step <= last_step {
            continue;
        }
        let expected = t.generate(step as u64 * STEP_SECS);
        if crate::infra::crypto::constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            return Ok(Some(step));
        }
    }
    Ok(None)
}

/// The current code, for tests and the command line.
pub fn current_code(secret: &str) -> AccountResult<String> {
    Ok(totp(secret, "", "staff")?.generate(crate::infra::db::now() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once() {
        let secret = new_secret();
        let code = current_code(&secret).unwrap();
        let step = verify(&secret, &code, 0)
            .unwrap()
            .expect("fresh code is accepted");
        assert_eq!(
            verify(&secret, &code, step).unwrap(),
            None,
            "replay is refused"
        );
        assert_eq!(verify(&secret, "000000x", 0).unwrap(), None);
    }

    #[test]
    fn enrolment_has_a_qr_code() {
        let e = enrolment(&new_secret(), "Smith: CPA", "jane@firm.com").unwrap();
        assert!(e.qr_svg.contains("<svg"));
    }
}
