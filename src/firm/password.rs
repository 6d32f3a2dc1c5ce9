//! The staff password policy: at least 12 characters, not a common password.

const COMMON: &str = include_str!("common_passwords.txt");

pub fn check(password: &str, email: &str) -> Result<(), String> {
    if password.chars().count() < 12 {
        return Err("The password must be at least 12 characters long.".into());
    }
    if password.chars().count() > 256 {
        return Err("The password must be at most 256 characters long.".into());
    }
    let lower = password.to_lowercase();
    if COMMON.lines().any(|common| common == lower) {
        return Err("That password is too common. Choose another one.".into());
    }
    let first = lower.chars().next();
    if lower.chars().all(|c| Some(c) == first) {
        return Err("That password is too easy to guess. Choose another one.".into());
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if local.len() >= 4 && lower.contains(&local) {
        return Err("The password must not contain your email address.".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn policy() {
        assert!(super::check("short", "a@b.c").is_err());
        assert!(super::check("password1234", "a@b.c").is_err());
        assert!(super::check("aaaaaaaaaaaaaaa", "a@b.c").is_err());
        assert!(super::check("janedoe-is-great", "janedoe@firm.com").is_err());
        assert!(super::check("correct horse battery", "jane@firm.com").is_ok());
    }
}
