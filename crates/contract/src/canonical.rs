//! One JSON text for one JSON value: the form a guest is handed.

use serde_json::{Number, Value};

/// Rewrites every number that is a whole number written as a float
/// (`40.0`, `4e1`) as an integer, where it fits in 64 bits.
///
/// JSON Schema treats `40.0` and `40` as the same number (both are valid
/// `integer`s), and so must everything after admission: a typed guest
/// decoding an `i64` rejects `40.0`, and CEL treats a `double` and an `int`
/// differently. Canonicalising once, before the checks and the guest see
/// the input, makes every way of writing a value behave alike.
pub fn canonicalize_numbers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(whole) = whole_number(number) {
                *number = whole;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(canonicalize_numbers),
        Value::Object(members) => members.values_mut().for_each(canonicalize_numbers),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// The integer a float number stands for, if it is whole and fits.
fn whole_number(number: &Number) -> Option<Number> {
    if number.is_i64() || number.is_u64() {
        return None;
    }
    let float = number.as_f64()?;
    if float.fract() != 0.0 || !float.is_finite() {
        return None;
    }
    // i64::MIN is exactly representable; i64::MAX + 1 is 2^63.
    if float >= -(2f64.powi(63)) && float < 2f64.powi(63) {
        return Some(Number::from(float as i64));
    }
    if float >= 0.0 && float < 2f64.powi(64) {
        return Some(Number::from(float as u64));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canonical(text: &str) -> String {
        let mut value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        canonicalize_numbers(&mut value);
        value.to_string()
    }

    #[test]
    fn whole_floats_become_integers_everywhere() {
        assert_eq!(
            canonical(r#"{"a": 40.0, "b": [1e3, -2.0, 0.0, -0.0], "c": {"d": 4E1}}"#),
            json!({"a": 40, "b": [1000, -2, 0, 0], "c": {"d": 40}}).to_string()
        );
    }

    #[test]
    fn fractions_and_huge_numbers_stay_as_they_are() {
        assert_eq!(canonical("40.5"), "40.5");
        assert_eq!(canonical("1e300"), "1e+300");
        assert_eq!(canonical("18446744073709551615"), "18446744073709551615");
        assert_eq!(canonical("1.8446744073709552e19"), "1.8446744073709552e+19");
        assert_eq!(canonical("-9223372036854775808.0"), "-9223372036854775808");
    }

    #[test]
    fn integers_and_other_values_are_untouched() {
        assert_eq!(canonical(r#"["x", true, null, 7]"#), r#"["x",true,null,7]"#);
    }
}
