//! The template functions Yeastar documents — `Capitalize`, `UrlEncode`, `ToMillis`,
//! `TimeFormat` — with the behaviour of Yeastar's Go implementation.

use std::sync::Arc;

use callbox_gotmpl::{Funcs, Value};

use crate::time_format::{go_format, yeastar_to_go_layout};

/// Where `TimeFormat` gets the local UTC offset when not asked for UTC (the core reads no
/// clock and no time-zone database; the engine supplies the machine's zone).
pub trait TimeZone: Send + Sync {
    /// The UTC offset in seconds and the zone abbreviation (e.g. `CET`) at Unix time `unix`.
    fn offset_at(&self, unix: i64) -> (i32, String);
}

/// UTC, the default zone of the core.
#[derive(Clone, Copy, Debug, Default)]
pub struct Utc;

impl TimeZone for Utc {
    fn offset_at(&self, _unix: i64) -> (i32, String) {
        (0, "UTC".to_string())
    }
}

/// The function names templates may use besides Go's builtins.
pub const NAMES: [&str; 4] = ["Capitalize", "UrlEncode", "ToMillis", "TimeFormat"];

/// A function registry with the four Yeastar functions, formatting local times in `zone`.
pub fn yeastar_funcs(zone: Arc<dyn TimeZone>) -> Funcs {
    let mut funcs = Funcs::new();
    funcs.register("Capitalize", |args| {
        let s = string_arg("Capitalize", args, 1, 0)?;
        let mut chars = s.chars();
        let out = match chars.next() {
            None => String::new(),
            Some(first) => {
                let mut upper = first.to_uppercase();
                // Go's unicode.ToUpper maps one rune to one rune; keep the rune when Rust would
                // expand it (e.g. 'ß').
                let mapped = match (upper.next(), upper.next()) {
                    (Some(u), None) => u,
                    _ => first,
                };
                let mut out = String::with_capacity(s.len());
                out.push(mapped);
                out.push_str(chars.as_str());
                out
            }
        };
        Ok(Value::from_string(out))
    });
    funcs.register("UrlEncode", |args| {
        let s = string_arg("UrlEncode", args, 1, 0)?;
        Ok(Value::from_string(crate::escape::url_encode(&s)))
    });
    funcs.register("ToMillis", |args| {
        arity("ToMillis", args, 1)?;
        let secs = timestamp(&args[0])?;
        Ok(Value::from_string(secs.saturating_mul(1000).to_string()))
    });
    funcs.register("TimeFormat", move |args| {
        arity("TimeFormat", args, 3)?;
        let secs = timestamp(&args[0])?;
        let layout = string_arg("TimeFormat", args, 3, 1)?;
        let utc = string_arg("TimeFormat", args, 3, 2)?;
        let (offset, name) = if utc == "1" {
            (0, "UTC".to_string())
        } else {
            zone.offset_at(secs)
        };
        Ok(Value::from_string(go_format(
            secs,
            offset,
            &name,
            &yeastar_to_go_layout(&layout),
        )))
    });
    funcs
}

fn arity(name: &str, args: &[Value<'_>], want: usize) -> Result<(), String> {
    if args.len() == want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ))
    }
}

fn string_arg(name: &str, args: &[Value<'_>], want: usize, index: usize) -> Result<String, String> {
    arity(name, args, want)?;
    match args[index].as_str() {
        Some(s) => Ok(s.to_string()),
        None => Err(format!(
            "wrong type for value; expected string; got {} (argument {} of {name})",
            args[index].to_go_string(),
            index + 1
        )),
    }
}

/// Go's `toInt` of the reference: float64 truncates, strings parse as integers.
fn timestamp(v: &Value<'_>) -> Result<i64, String> {
    if let Some(s) = v.as_str() {
        let t = s.trim();
        return t
            .parse::<i64>()
            .map_err(|_| format!("strconv.ParseInt: parsing {t:?}: invalid syntax"));
    }
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    if let Some(f) = v.as_f64()
        && f.is_finite()
    {
        // Go's int64(float64) truncates toward zero.
        return Ok(f.trunc().clamp(i64::MIN as f64, i64::MAX as f64) as i64);
    }
    Err(format!("not a timestamp: {}", v.to_go_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use callbox_gotmpl::Template;
    use serde_json::json;

    fn render(text: &str, data: serde_json::Value) -> std::result::Result<String, String> {
        let funcs = yeastar_funcs(Arc::new(Utc));
        let t = Template::parse("t", text, &funcs).map_err(|e| e.to_string())?;
        t.render(&data, &funcs).map_err(|e| e.to_string())
    }

    // Expected values are what the Go reference (`yeastar-ref render`) prints.
    #[test]
    fn yeastar_functions_match_the_reference() {
        let data = json!({"s": "hello world!", "t": 1672531199, "ts": " 1672531199 ", "e": "élan", "ss": "ßa"});
        assert_eq!(
            render("{{Capitalize .s}}", data.clone()).unwrap(),
            "Hello world!"
        );
        assert_eq!(render("{{Capitalize .e}}", data.clone()).unwrap(), "Élan");
        assert_eq!(render("{{Capitalize .ss}}", data.clone()).unwrap(), "ßa");
        assert_eq!(
            render("{{UrlEncode .s}}", data.clone()).unwrap(),
            "hello%20world%21"
        );
        assert_eq!(
            render("{{UrlEncode \"+1 (415) é\"}}", data.clone()).unwrap(),
            "%2B1%20%28415%29%20%C3%A9"
        );
        assert_eq!(
            render("{{ToMillis .t}}", data.clone()).unwrap(),
            "1672531199000"
        );
        assert_eq!(
            render("{{ToMillis .ts}}", data.clone()).unwrap(),
            "1672531199000"
        );
        assert_eq!(
            render(
                "{{TimeFormat .t \"yyyy-MM-ddTHH:mm:ss.000Zz\" \"1\"}}",
                data.clone()
            )
            .unwrap(),
            "2022-12-31T23:59:59.000Zz"
        );
        assert!(render("{{ToMillis .s}}", data.clone()).is_err());
        assert!(render("{{Capitalize .t}}", data.clone()).is_err());
        assert!(render("{{Capitalize}}", data).is_err());
    }

    struct Fixed(i32, &'static str);
    impl TimeZone for Fixed {
        fn offset_at(&self, _: i64) -> (i32, String) {
            (self.0, self.1.to_string())
        }
    }

    #[test]
    fn local_time_uses_the_supplied_zone() {
        let funcs = yeastar_funcs(Arc::new(Fixed(3600, "CET")));
        let t = Template::parse(
            "t",
            "{{TimeFormat .t \"yyyy-MM-dd HH:mm:ss MST\" \"0\"}}",
            &funcs,
        )
        .unwrap();
        assert_eq!(
            t.render(&json!({"t": 1672531199}), &funcs).unwrap(),
            "2023-01-01 00:59:59 CET"
        );
    }
}
