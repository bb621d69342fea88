//! lava's duration strings: a number of seconds, or `<number><unit>` with unit s, m, h, d, w.

use std::time::Duration;

use serde_json::Value;

/// The default job timeout (lava's `10m`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Parse a duration value; the error text says what is wrong with `value` (the caller names
/// the field).
pub fn parse_duration(value: &Value) -> Result<Duration, String> {
    let secs = match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("`{n}` is not a number"))?,
        Value::String(s) => parse_duration_str(s)?,
        other => {
            return Err(format!(
                "`{other}` is not a number of seconds or a duration string"
            ))
        }
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("`{}` must be more than zero", shown(value)));
    }
    if secs > 365.0 * 86400.0 {
        return Err(format!("`{}` is longer than a year", shown(value)));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_duration_str(raw: &str) -> Result<f64, String> {
    let s: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let bad = || {
        format!("`{raw}` is not a duration (a number of seconds, or a number followed by s, m, h, d or w)")
    };
    let (num, mult) = match s.chars().last() {
        Some('s') => (&s[..s.len() - 1], 1.0),
        Some('m') => (&s[..s.len() - 1], 60.0),
        Some('h') => (&s[..s.len() - 1], 3600.0),
        Some('d') => (&s[..s.len() - 1], 86400.0),
        Some('w') => (&s[..s.len() - 1], 604800.0),
        Some(_) => (s.as_str(), 1.0),
        None => return Err(bad()),
    };
    // Digits with at most one decimal point; no sign, exponent, inf or nan.
    let digits = num.chars().filter(|c| c.is_ascii_digit()).count();
    let dots = num.chars().filter(|&c| c == '.').count();
    if digits == 0 || dots > 1 || digits + dots != num.len() {
        return Err(bad());
    }
    num.parse::<f64>().map(|n| n * mult).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms() {
        for (v, secs) in [
            (json!(30), 30.0),
            (json!(1.5), 1.5),
            (json!("45"), 45.0),
            (json!("10s"), 10.0),
            (json!("10m"), 600.0),
            (json!(" 1.5 h "), 5400.0),
            (json!("2d"), 172800.0),
            (json!("1w"), 604800.0),
            (json!(".5m"), 30.0),
            (json!("3."), 3.0),
        ] {
            assert_eq!(parse_duration(&v).unwrap().as_secs_f64(), secs, "{v}");
        }
    }

    #[test]
    fn rejects() {
        for v in [
            json!("10x"),
            json!("m"),
            json!(""),
            json!("1.2.3s"),
            json!("-5s"),
            json!("1e3"),
            json!("inf"),
            json!(0),
            json!(-1),
            json!(true),
            json!(null),
            json!(["10m"]),
        ] {
            assert!(parse_duration(&v).is_err(), "{v} should be rejected");
        }
        assert!(parse_duration(&json!("10x")).unwrap_err().contains("10x"));
    }
}
