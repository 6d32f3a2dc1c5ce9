//! The rules a PIN must meet.

use super::{AccountError, AccountResult};

/// Checks a new PIN and its confirmation; the message says exactly what is wrong.
pub fn check_new(pin: &str, confirm: &str) -> AccountResult<String> {
    let pin = pin.trim();
    if pin.is_empty() {
        return Err(invalid("Enter a 6-digit PIN."));
    }
    if !pin.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid("Your PIN must be digits only (0–9)."));
    }
    if pin.len() != 6 {
        return Err(invalid("Your PIN must be exactly 6 digits."));
    }
    if is_guessable(pin) {
        return Err(invalid(
            "That PIN is too easy to guess. Avoid repeated or consecutive digits such as 111111 or 123456.",
        ));
    }
    if pin != confirm.trim() {
        return Err(invalid(
            "The two PINs do not match. Type the same PIN in both fields.",
        ));
    }
    Ok(pin.to_string())
}

fn invalid(message: &str) -> AccountError {
    AccountError::Invalid(message.to_string())
}

fn is_guessable(pin: &str) -> bool {
    let d: Vec<i32> = pin.bytes().map(|b| i32::from(b - b'0')).collect();
    let steps: Vec<i32> = d.windows(2).map(|w| w[1] - w[0]).collect();
    steps.iter().all(|s| *s == 0) || steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == -1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_good_pin() {
        assert_eq!(check_new("482913", "482913").unwrap(), "482913");
    }

    #[test]
    fn explains_each_problem() {
        let msg = |p: &str, c: &str| check_new(p, c).unwrap_err().to_string();
        assert!(msg("", "").contains("Enter"));
        assert!(msg("12a456", "12a456").contains("digits only"));
        assert!(msg("4829", "4829").contains("exactly 6"));
        assert!(msg("111111", "111111").contains("easy"));
        assert!(msg("123456", "123456").contains("easy"));
        assert!(msg("482913", "482914").contains("do not match"));
    }
}
