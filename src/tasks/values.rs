//! The generic answer formats, checked by the host whatever the task kind:
//! what a client (or staff filling in settings) typed becomes a `kinds::Value`,
//! or a message saying what is wrong. And back: a stored value as the text an
//! input shows.

use super::kinds::{Field, FieldKind, Value};

/// The longest answer to a one-line question, and to a long-text one.
const MAX_TEXT: usize = 500;
const MAX_LONG_TEXT: usize = 10_000;
/// The largest amount accepted, in dollars (a typo guard, not a tax rule).
const MAX_DOLLARS: i64 = 1_000_000_000_000;

/// Parses the values typed or picked for `field` (several for a multi-choice).
/// `Ok(None)` is an empty answer (which clears it).
pub fn parse(field: &Field, raw: &[String]) -> Result<Option<Value>, String> {
    if field.kind == FieldKind::MultiChoice {
        return picked(field, raw);
    }
    let text = raw.first().map(|s| s.trim()).unwrap_or("");
    if text.is_empty() {
        return Ok(None);
    }
    let value = match field.kind {
        FieldKind::Text => Value::Text(limited(text, MAX_TEXT)?),
        FieldKind::LongText => Value::Text(limited(text, MAX_LONG_TEXT)?),
        FieldKind::Number => Value::Number(number(text)?),
        FieldKind::Money => Value::Cents(cents(text)?),
        FieldKind::Date => Value::Date(date(text)?),
        FieldKind::YesNo => Value::Flag(yes_no(text)?),
        FieldKind::Choice => Value::Picked(vec![choice(field, text)?]),
        FieldKind::Ssn => Value::Text(digits(
            text,
            &[3, 2, 4],
            "123-45-6789",
            "a Social Security number",
        )?),
        FieldKind::Ein => Value::Text(digits(text, &[2, 7], "12-3456789", "an EIN")?),
        // Files arrive by upload and statements take no answer.
        FieldKind::Upload | FieldKind::Statement | FieldKind::MultiChoice => return Ok(None),
    };
    Ok(Some(value))
}

fn limited(text: &str, max: usize) -> Result<String, String> {
    if text.chars().count() > max {
        return Err(format!("Keep this to at most {max} characters."));
    }
    Ok(text.to_string())
}

fn number(text: &str) -> Result<f64, String> {
    let cleaned: String = text.chars().filter(|c| *c != ',' && *c != ' ').collect();
    match cleaned.parse::<f64>() {
        Ok(n) if n.is_finite() && n.abs() < 1e15 => Ok(n),
        _ => Err("Enter a number, such as 2 or 1.5.".into()),
    }
}

/// "$1,234.5" → 123450 cents; negative amounts in a minus sign or parentheses.
fn cents(text: &str) -> Result<i64, String> {
    let wrong = || "Enter an amount in dollars, such as 1,250.00.".to_string();
    let mut t: String = text
        .chars()
        .filter(|c| !matches!(c, '$' | ',' | ' '))
        .collect();
    let negative = if t.starts_with('(') && t.ends_with(')') {
        t = t[1..t.len() - 1].to_string();
        true
    } else if let Some(rest) = t.strip_prefix('-') {
        t = rest.to_string();
        true
    } else {
        false
    };
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return Err(wrong());
    }
    if frac.len() > 2 {
        return Err("Enter at most two digits after the decimal point.".into());
    }
    let dollars: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| wrong())?
    };
    if dollars > MAX_DOLLARS {
        return Err(wrong());
    }
    let frac_cents: i64 = format!("{frac:0<2}").parse().map_err(|_| wrong())?;
    let total = dollars * 100 + frac_cents;
    Ok(if negative { -total } else { total })
}

fn date(text: &str) -> Result<String, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, format)
        .ok()
        .filter(|d| (1900..=2200).contains(&d.year()))
        .map(|_| text.to_string())
        .ok_or_else(|| "Enter a date as YYYY-MM-DD, such as 2025-04-15.".into())
}

fn yes_no(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err("Choose Yes or No.".into()),
    }
}

fn choice(field: &Field, text: &str) -> Result<String, String> {
    field
        .choices
        .iter()
        .find(|c| c.as_str() == text)
        .cloned()
        .ok_or_else(|| "Choose one of the options offered.".into())
}

fn picked(field: &Field, raw: &[String]) -> Result<Option<Value>, String> {
    let mut chosen = Vec::new();
    for text in raw.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let c = choice(field, text)?;
        if !chosen.contains(&c) {
            chosen.push(c);
        }
    }
    Ok((!chosen.is_empty()).then_some(Value::Picked(chosen)))
}

/// Digits in groups (`[3, 2, 4]` for an SSN), typed with or without dashes;
/// stored with dashes.
fn digits(text: &str, groups: &[usize], example: &str, what: &str) -> Result<String, String> {
    let only: String = text.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    let want: usize = groups.iter().sum();
    if only.len() != want || !only.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("Enter {what} as {example}."));
    }
    let mut out = String::new();
    let mut at = 0;
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.push_str(&only[at..at + g]);
        at += g;
    }
    Ok(out)
}

/// A stored value as the text its input shows (empty for files and N/A).
pub fn shown(value: &Value) -> String {
    match value {
        Value::Text(t) | Value::Date(t) => t.clone(),
        Value::Number(n) => n.to_string(),
        Value::Cents(c) => {
            let sign = if *c < 0 { "-" } else { "" };
            format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100)
        }
        Value::Flag(true) => "yes".into(),
        Value::Flag(false) => "no".into(),
        Value::Picked(p) => p.join(", "),
        Value::Files(_) | Value::Na(_) => String::new(),
    }
}

/// A stored value as staff read it.
pub fn readable(value: &Value) -> String {
    match value {
        Value::Cents(_) => format!("${}", shown(value)),
        Value::Flag(true) => "Yes".into(),
        Value::Flag(false) => "No".into(),
        Value::Files(f) => format!("{} file(s)", f.len()),
        Value::Na(reason) => format!("Not applicable: {reason}"),
        _ => shown(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: FieldKind) -> Field {
        Field {
            id: "f".into(),
            label: "F".into(),
            help: None,
            kind,
            choices: vec!["Single".into(), "Married".into()],
            required: true,
            allow_na: false,
            visible: true,
            reviewed: false,
            accept: None,
        }
    }

    fn one(kind: FieldKind, text: &str) -> Result<Option<Value>, String> {
        parse(&field(kind), &[text.to_string()])
    }

    #[test]
    fn formats_are_checked_and_normalised() {
        assert_eq!(
            one(FieldKind::Money, "$1,250.5"),
            Ok(Some(Value::Cents(125_050)))
        );
        assert_eq!(one(FieldKind::Money, "(12)"), Ok(Some(Value::Cents(-1200))));
        assert!(one(FieldKind::Money, "12.345").is_err());
        assert!(one(FieldKind::Money, "abc").is_err());
        assert_eq!(
            one(FieldKind::Ssn, "123456789"),
            Ok(Some(Value::Text("123-45-6789".into())))
        );
        assert!(one(FieldKind::Ssn, "123-45-678").is_err());
        assert_eq!(
            one(FieldKind::Ein, "12-3456789"),
            Ok(Some(Value::Text("12-3456789".into())))
        );
        assert!(one(FieldKind::Date, "2025-02-30").is_err());
        assert_eq!(
            one(FieldKind::Date, "2025-04-15"),
            Ok(Some(Value::Date("2025-04-15".into())))
        );
        assert!(one(FieldKind::Choice, "Divorced").is_err());
        assert_eq!(one(FieldKind::YesNo, "yes"), Ok(Some(Value::Flag(true))));
        assert!(one(FieldKind::Number, "1e400").is_err());
        assert_eq!(one(FieldKind::Text, "  "), Ok(None));
        let multi = parse(
            &field(FieldKind::MultiChoice),
            &["Single".into(), "Married".into(), "Single".into()],
        );
        assert_eq!(
            multi,
            Ok(Some(Value::Picked(vec!["Single".into(), "Married".into()])))
        );
    }

    #[test]
    fn amounts_show_as_typed() {
        assert_eq!(shown(&Value::Cents(-125_005)), "-1250.05");
        assert_eq!(readable(&Value::Cents(100)), "$1.00");
    }
}
