//! The crate's API and the features the conformance vectors do not cover.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

use callbox_gotmpl::{ExecOptions, FieldRef, Funcs, MissingKey, Sink, Template, Value};
use serde_json::{Value as Json, json};

fn data() -> Json {
    json!({
        "Phone": "+1 415",
        "Name": "carla",
        "I": 17,
        "F": 15.1,
        "Big": 100000000,
        "Huge": 1e21,
        "SI": [3, 4, 5],
        "MSI": {"one": 1, "two": 2, "three": 3},
        "Nested": {"A": {"B": "deep"}},
        "Empty": "",
        "Null": null
    })
}

fn yeastar_like() -> Funcs {
    let mut f = Funcs::new();
    f.register("UrlEncode", |args: &[Value<'_>]| match args {
        [v] => Ok(Value::from_string(
            v.to_go_string().replace(' ', "%20").replace('+', "%2B"),
        )),
        _ => Err(format!(
            "wrong number of args for UrlEncode: want 1 got {}",
            args.len()
        )),
    });
    f.register("Capitalize", |args: &[Value<'_>]| match args {
        [Value::Str(s)] => {
            let mut c = s.chars();
            Ok(Value::from_string(match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect(),
                None => String::new(),
            }))
        }
        _ => Err("expected one string".to_string()),
    });
    f
}

fn render(text: &str) -> String {
    render_with(text, &data())
}

fn render_with(text: &str, data: &Json) -> String {
    let funcs = yeastar_like();
    Template::parse("t", text, &funcs)
        .unwrap_or_else(|e| panic!("parse {text:?}: {e}"))
        .render(data, &funcs)
        .unwrap_or_else(|e| panic!("exec {text:?}: {e}"))
}

fn exec_err(text: &str) -> callbox_gotmpl::ExecError {
    let funcs = yeastar_like();
    Template::parse("t", text, &funcs)
        .unwrap_or_else(|e| panic!("parse {text:?}: {e}"))
        .render(&data(), &funcs)
        .expect_err("execution error")
}

fn parse_err(text: &str) -> callbox_gotmpl::ParseError {
    Template::parse("t", text, &yeastar_like()).expect_err("parse error")
}

// ---------------------------------------------------------------- Sink

#[derive(Default)]
struct Recorder(Vec<(String, Option<String>)>);

impl Sink for Recorder {
    fn text(&mut self, text: &str) {
        self.0.push((format!("text:{text}"), None));
    }

    fn action(&mut self, value: &str, escaped_by: Option<&str>) {
        self.0
            .push((format!("action:{value}"), escaped_by.map(str::to_string)));
    }
}

fn record(text: &str) -> Vec<(String, Option<String>)> {
    let funcs = yeastar_like();
    let t = Template::parse("t", text, &funcs).unwrap();
    let mut rec = Recorder::default();
    t.execute(&data(), &funcs, &ExecOptions::default(), &mut rec)
        .unwrap();
    rec.0
}

fn escaped_by(text: &str) -> Option<String> {
    let rec = record(text);
    assert_eq!(rec.len(), 1, "{text}: {rec:?}");
    rec[0].1.clone()
}

#[test]
fn sink_reports_the_function_that_ends_the_pipeline() {
    assert_eq!(
        escaped_by("{{UrlEncode .Phone}}").as_deref(),
        Some("UrlEncode")
    );
    assert_eq!(
        escaped_by("{{.Phone | urlquery}}").as_deref(),
        Some("urlquery")
    );
    assert_eq!(
        escaped_by(r#"{{printf "%q" .Name}}"#).as_deref(),
        Some("printf")
    );
    assert_eq!(
        escaped_by("{{(urlquery .Phone)}}").as_deref(),
        Some("urlquery")
    );
    assert_eq!(
        escaped_by("{{.Phone | UrlEncode | printf \"%s\"}}").as_deref(),
        Some("printf")
    );
    assert_eq!(
        escaped_by(r#"{{urlquery .Phone | printf "%s" | print}}"#).as_deref(),
        Some("print")
    );
    assert_eq!(escaped_by("{{.Phone}}"), None);
    assert_eq!(escaped_by("{{$.Phone}}"), None);
    assert_eq!(escaped_by("{{(.Phone)}}"), None);
    assert_eq!(escaped_by(r#"{{(index .Nested "A").B}}"#), None);
    assert_eq!(escaped_by("{{$x := 1}}{{$x}}"), None);
    assert_eq!(escaped_by(r#"{{"lit"}}"#), None);
}

#[test]
fn sink_separates_text_and_actions() {
    let rec = record(
        r#"a{{.I}}b{{if true}}c{{end}}{{define "x"}}[{{.}}]{{end}}{{template "x" .Name}}{{$v := 3}}"#,
    );
    let got: Vec<&str> = rec.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        got,
        [
            "text:a",
            "action:17",
            "text:b",
            "text:c",
            "text:[",
            "action:carla",
            "text:]"
        ]
    );
}

#[test]
fn string_sink_appends() {
    let funcs = Funcs::new();
    let t = Template::parse("t", "x={{.I}}", &funcs).unwrap();
    let mut out = String::from(">");
    t.execute(&data(), &funcs, &ExecOptions::default(), &mut out)
        .unwrap();
    assert_eq!(out, ">x=17");
}

// ---------------------------------------------------------------- root_fields, plain text

fn fields(text: &str) -> Vec<(String, usize)> {
    Template::parse("t", text, &yeastar_like())
        .unwrap()
        .root_fields()
        .into_iter()
        .map(|FieldRef { name, offset }| (name, offset))
        .collect()
}

#[test]
fn root_fields_lists_lookups_on_the_root() {
    assert_eq!(
        fields("{{.A}} {{.B.C}}"),
        [("A".into(), 2), ("B".into(), 9)]
    );
    // Pipelines of with/range run on the root; their bodies do not, their else branches do.
    assert_eq!(
        fields("{{with .A}}{{.X}}{{$.Y}}{{else}}{{.Z}}{{end}}"),
        [("A".into(), 7), ("Y".into(), 19), ("Z".into(), 34)]
    );
    assert_eq!(
        fields("{{range .Items}}{{.Name}}{{end}}{{if .Ok}}{{.Msg}}{{end}}"),
        [("Items".into(), 8), ("Ok".into(), 37), ("Msg".into(), 44)]
    );
    // Not in defined templates, except $.X.
    assert_eq!(
        fields(r#"{{define "d"}}{{.In}}{{$.Root}}{{end}}{{template "d" .Arg}}"#),
        [("Root".into(), 23), ("Arg".into(), 53)]
    );
    assert_eq!(
        fields(r#"{{block "b" .K}}{{.V}}{{end}}"#),
        [("K".into(), 12)]
    );
    // Arguments, parenthesized pipelines, chains, else-if.
    assert_eq!(
        fields(r#"{{UrlEncode (print .P .Q)}}{{(.R).S}}{{if .T}}{{else if .U}}{{end}}"#),
        [
            ("P".into(), 19),
            ("Q".into(), 22),
            ("R".into(), 30),
            ("T".into(), 42),
            ("U".into(), 56)
        ]
    );
    assert_eq!(fields("{{$x := .}}{{$x.Y}} {{.}} {{$}}"), []);
    assert_eq!(fields("{{- .é -}}"), [("é".into(), 4)]);
}

#[test]
fn plain_text_is_detected() {
    let funcs = Funcs::new();
    assert!(
        Template::parse("t", "just text, {not} {action}", &funcs)
            .unwrap()
            .is_plain_text()
    );
    assert!(Template::parse("t", "", &funcs).unwrap().is_plain_text());
    assert!(
        !Template::parse("t", "a{{/* c */}}", &funcs)
            .unwrap()
            .is_plain_text()
    );
    assert!(
        !Template::parse("t", "{{.X}}", &funcs)
            .unwrap()
            .is_plain_text()
    );
}

// ---------------------------------------------------------------- language features

#[test]
fn define_template_block() {
    assert_eq!(
        render(r#"{{define "row"}}<{{.}}>{{end}}{{range .SI}}{{template "row" .}}{{end}}"#),
        "<3><4><5>"
    );
    assert_eq!(
        render(r#"{{template "x" .I}}{{define "x"}}[{{.}}|{{$}}]{{end}}"#),
        "[17|17]"
    );
    assert_eq!(
        render(r#"{{block "b" .Name}}default {{.}}{{end}}"#),
        "default carla"
    );
    // As in Go, one text cannot both define a block and redefine it.
    assert!(
        parse_err(r#"{{block "b" .}}x{{end}}{{define "b"}}y{{end}}"#)
            .message
            .contains("multiple definition")
    );
    assert_eq!(
        render(r#"{{define "e"}}{{end}}{{define "e"}}second{{end}}{{template "e"}}"#),
        "second"
    );
    assert_eq!(
        render(r#"{{define "t"}}main is replaced{{end}}"#),
        "main is replaced"
    );
    // Recursion with a stopping condition.
    assert_eq!(
        render(
            r#"{{define "r"}}{{if .}}{{len .}}{{template "r" (slice . 1)}}{{end}}{{end}}{{template "r" .SI}}"#
        ),
        "321"
    );
    // Variables do not cross template boundaries.
    assert!(
        parse_err(r#"{{$x := 1}}{{define "d"}}{{$x}}{{end}}"#)
            .message
            .contains("undefined variable")
    );
    assert!(
        parse_err(r#"{{define "a"}}1{{end}}{{define "a"}}2{{end}}"#)
            .message
            .contains("multiple definition")
    );
    let e = exec_err(r#"{{template "missing"}}"#);
    assert!(
        e.message.contains(r#"template "missing" not defined"#),
        "{e}"
    );
}

#[test]
fn break_continue_and_range_forms() {
    assert_eq!(
        render("{{range .SI}}{{if eq . 4.0}}{{break}}{{end}}{{.}}{{end}}"),
        "3"
    );
    assert_eq!(
        render("{{range .SI}}{{if eq . 4.0}}{{continue}}{{end}}{{.}}{{end}}"),
        "35"
    );
    assert_eq!(
        render("{{range $i, $v := .SI}}{{$i}}={{$v}};{{end}}"),
        "0=3;1=4;2=5;"
    );
    assert_eq!(
        render("{{range $k, $v := .MSI}}{{$k}}={{$v}};{{end}}"),
        "one=1;three=3;two=2;"
    );
    assert_eq!(render("{{range .Missing}}x{{else}}none{{end}}"), "none");
    // Go 1.22: range over an integer.
    assert_eq!(
        render("{{range 3}}{{.}}{{end}}|{{range $i := 2}}{{$i}}{{end}}"),
        "012|01"
    );
    assert_eq!(render("{{range 0}}x{{else}}empty{{end}}"), "empty");
    assert!(
        exec_err("{{range $i, $j := 3}}{{end}}")
            .message
            .contains("more than one variable")
    );
    // JSON numbers are floats: Go cannot range over them.
    assert!(
        exec_err("{{range .I}}{{end}}")
            .message
            .contains("range can't iterate over 17")
    );
    // Go 1.21: assignment in range.
    assert_eq!(render("{{$v := 0}}{{range $v = .SI}}{{end}}{{$v}}"), "5");
    assert!(
        parse_err("{{break}}")
            .message
            .contains("{{break}} outside {{range}}")
    );
    assert!(
        parse_err("{{range .SI}}{{end}}{{continue}}")
            .message
            .contains("outside {{range}}")
    );
}

#[test]
fn if_with_else_chains_and_variables() {
    assert_eq!(
        render("{{if .Missing}}a{{else if .Empty}}b{{else}}c{{end}}"),
        "c"
    );
    assert_eq!(
        render("{{with .Missing}}a{{else with .Name}}b{{.}}{{end}}"),
        "bcarla"
    );
    assert_eq!(
        render("{{with $x := .Nested.A}}{{$x.B}}{{.B}}{{end}}"),
        "deepdeep"
    );
    assert_eq!(render("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}"), "2");
    assert_eq!(
        render("{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}"),
        "21"
    );
    assert_eq!(
        render("{{$x := .I}}{{with .Name}}{{$x}}{{.}}{{$.I}}{{end}}"),
        "17carla17"
    );
    assert!(
        parse_err("{{if true}}{{$y := 1}}{{end}}{{$y}}")
            .message
            .contains("undefined variable \"$y\"")
    );
    assert!(
        exec_err("{{$z = 1}}")
            .message
            .contains("undefined variable: $z")
    );
}

#[test]
fn trimming_and_comments() {
    assert_eq!(render("a  \n {{- .I -}} \n  b"), "a17b");
    assert_eq!(render("a {{- /* gone */ -}} b"), "ab");
    assert_eq!(render("a {{/* kept spaces */}} b"), "a  b");
    assert_eq!(render("{{- 3}}"), "3");
    assert_eq!(render("{{-3}}"), "-3");
    assert_eq!(render("x {{3 -}}\n\t y"), "x 3y");
    assert!(
        parse_err("{{/* c */ .I}}")
            .message
            .contains("comment ends before closing delimiter")
    );
}

#[test]
fn missing_keys_and_nil() {
    assert_eq!(
        render("{{.Missing}} {{.Null}} {{.Nested.X.Y}}"),
        "<no value> <no value> <no value>"
    );
    assert_eq!(render("{{print .Missing .Null}}"), "<nil> <nil>");
    assert_eq!(render("{{html .Missing}}"), "&lt;no value&gt;");
    assert!(
        exec_err("{{.Null.X}}")
            .message
            .contains("nil pointer evaluating interface {}.X")
    );
    let funcs = Funcs::new();
    let t = Template::parse("t", "{{.I}} {{.Nope}}", &funcs).unwrap();
    let mut opts = ExecOptions {
        missing_key: MissingKey::Zero,
        ..ExecOptions::default()
    };
    let mut out = String::new();
    t.execute(&data(), &funcs, &opts, &mut out).unwrap();
    assert_eq!(out, "17 <no value>");
    opts.missing_key = MissingKey::Error;
    let mut out = String::new();
    let e = t.execute(&data(), &funcs, &opts, &mut out).unwrap_err();
    assert_eq!(out, "17 ");
    assert!(
        e.message.contains(r#"map has no entry for key "Nope""#),
        "{e}"
    );
    assert_eq!(
        MissingKey::from_option("missingkey=invalid"),
        Some(MissingKey::Default)
    );
    assert_eq!(MissingKey::from_option("missingkey=nonsense"), None);
}

#[test]
fn json_numbers_are_float64() {
    assert_eq!(render(r#"{{printf "%d" .I}}"#), "%!d(float64=17)");
    assert_eq!(render(r#"{{printf "%d" 17}}"#), "17");
    assert_eq!(
        render("{{.F}} {{.Big}} {{.Huge}} {{.I}}"),
        "15.1 1e+08 1e+21 17"
    );
    assert!(
        exec_err("{{eq .I 17}}")
            .message
            .contains("incompatible types for comparison")
    );
    assert!(
        exec_err("{{eq 2 2.0}}")
            .message
            .contains("incompatible types for comparison")
    );
    assert_eq!(render("{{eq .I 17.0}} {{lt .F 16.0}}"), "true true");
}

// ---------------------------------------------------------------- fmt

#[test]
fn printf_verbs_and_flags() {
    let cases = [
        (
            r#"{{printf "%5d|%-5d|%05d|%+d|% d" 42 42 42 42 42}}"#,
            "   42|42   |00042|+42| 42",
        ),
        (
            r#"{{printf "%x %X %#x %o %#o %O %b %#b" 255 255 255 8 8 8 5 5}}"#,
            "ff FF 0xff 10 010 0o10 101 0b101",
        ),
        (
            r#"{{printf "%c %q %U %#U" 0x1F600 65 0x1F600 65}}"#,
            "😀 'A' U+1F600 U+0041 'A'",
        ),
        (
            r#"{{printf "%s|%10s|%-10s|%.2s|%q|%+q|%#q" "héllo" "hi" "hi" "héllo" "a\"b" "é" "tab"}}"#,
            r#"héllo|        hi|hi        |hé|"a\"b"|"\u00e9"|`tab`"#,
        ),
        (
            r#"{{printf "%x|% x|%#x|%X" "hi" "hi" "hi" "hi"}}"#,
            "6869|68 69|0x6869|6869",
        ),
        (
            r#"{{printf "%t|%v|%5t" true false true}}"#,
            "true|false| true",
        ),
        (
            r#"{{printf "%v|%+v|%#v|%T" .SI .MSI .SI .MSI}}"#,
            "[3 4 5]|map[one:1 three:3 two:2]|[]interface {}{3, 4, 5}|map[string]interface {}",
        ),
        (
            r#"{{printf "%T %T %T %T %T" 1 1.5 "s" true nil}}"#,
            "int float64 string bool <nil>",
        ),
        (
            r#"{{printf "%*d|%-*d|%.*f" 5 1 5 1 2 3.14159}}"#,
            "    1|1    |3.14",
        ),
        (r#"{{printf "%[2]d %[1]d" 1 2}}"#, "2 1"),
        (r#"{{printf "%6.2f%%" 99.5}}"#, " 99.50%"),
    ];
    for (t, want) in cases {
        assert_eq!(render(t), want, "{t}");
    }
}

#[test]
fn printf_error_forms() {
    let cases = [
        (r#"{{printf "%d" "x"}}"#, "%!d(string=x)"),
        (r#"{{printf "%s"}}"#, "%!s(MISSING)"),
        (r#"{{printf "%d" 1 2.5}}"#, "1%!(EXTRA float64=2.5)"),
        (r#"{{printf "%"}}"#, "%!(NOVERB)"),
        (r#"{{printf "%*d" 1.5 2}}"#, "%!(BADWIDTH)2"),
        (r#"{{printf "%.*d" "x" 2}}"#, "%!(BADPREC)2"),
        (r#"{{printf "%[3]d" 1}}"#, "%!d(BADINDEX)"),
        (r#"{{printf "%z" 1}}"#, "%!z(int=1)"),
        (r#"{{printf "%d" nil}}"#, "%!d(<nil>)"),
        (
            r#"{{printf "%d" .SI}}"#,
            "[%!d(float64=3) %!d(float64=4) %!d(float64=5)]",
        ),
        // Go caps widths at 1e6: a larger one is not a width.
        (r#"{{printf "%999999999d" 1}}"#, "%!(NOVERB)%!(EXTRA int=1)"),
    ];
    for (t, want) in cases {
        assert_eq!(render(t), want, "{t}");
    }
}

#[test]
fn float_formatting_is_go_s() {
    let cases = [
        (
            "{{15.1}} {{0.1}} {{1e21}} {{100000000.0}} {{123456.0}} {{1234567.0}}",
            "15.1 0.1 1e+21 1e+08 123456 1.234567e+06",
        ),
        (
            "{{0.000001}} {{0.0000001}} {{-0.0}} {{1e-300}} {{2.5e-5}}",
            "1e-06 1e-07 -0 1e-300 2.5e-05",
        ),
        (
            r#"{{printf "%e|%E|%f|%F|%g|%G" 1234.5678 1234.5678 1234.5678 1234.5678 1234.5678 1e-7}}"#,
            "1.234568e+03|1.234568E+03|1234.567800|1234.567800|1234.5678|1E-07",
        ),
        (
            r#"{{printf "%.2f %.0f %.0f %.0f %.1f" 0.125 0.5 1.5 2.5 0.25}}"#,
            "0.12 0 2 2 0.2",
        ),
        (
            r#"{{printf "%.3g|%.10g|%#g|%#.3x|%x|%b" 1234567.0 1.0 1.0 1.0 3.5 1.0}}"#,
            "1.23e+06|1|1.00000|0x1.000p+00|0x1.cp+01|4503599627370496p-52",
        ),
        (
            r#"{{printf "%08.3f|%-8.2f|%+.2e|% .3g" -3.14159 2.5 12345.678 0.5}}"#,
            "-003.142|2.50    |+1.23e+04| 0.5",
        ),
        (
            r#"{{printf "%v %.1f" 2111426999603580.2 0.05}}"#,
            "2.1114269996035802e+15 0.1",
        ),
    ];
    for (t, want) in cases {
        assert_eq!(render(t), want, "{t}");
    }
}

#[test]
fn print_println_and_escapers() {
    assert_eq!(render(r#"{{print 1 2 "a" "b" 3 nil}}"#), "1 2ab3 <nil>");
    assert_eq!(render(r#"{{println 1 "a" nil}}"#), "1 a <nil>\n");
    assert_eq!(
        render(r#"{{html "<a href='x'>&\"\x00"}}"#),
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34;\u{FFFD}"
    );
    assert_eq!(
        render(r#"{{js "a'b\"c<d>e&f=g\u2028h\x01é"}}"#),
        r#"a\'b\"c\u003Cd\u003Ee\u0026f\u003Dg\u2028h\u0001é"#
    );
    assert_eq!(
        render(r#"{{urlquery "a b&c=d/é~_.-"}}"#),
        "a+b%26c%3Dd%2F%C3%A9~_.-"
    );
    assert_eq!(
        render(r#"{{.Phone | urlquery}} {{html 1 2 "x"}}"#),
        "%2B1+415 1 2x"
    );
}

#[test]
fn builtins_index_slice_len_and_logic() {
    assert_eq!(
        render(
            r#"{{index .SI 1}} {{index .MSI "two"}} {{index .Nested "A" "B"}} {{index "abc" 1}}"#
        ),
        "4 2 deep 98"
    );
    assert_eq!(
        render(r#"{{slice .SI 1}} {{slice .SI 1 2}} {{slice "héllo" 0 3}} {{slice "héllo" 0 2}}"#),
        "[4 5] [4] hé h\u{FFFD}"
    );
    assert_eq!(
        render(r#"{{len .SI}} {{len .MSI}} {{len "héllo"}}"#),
        "3 3 6"
    );
    assert_eq!(
        render(r#"{{and 1 0 2}} {{or 0 "" "x"}} {{not .Empty}} {{and .Missing (index .SI 99)}}"#),
        "0 x true <no value>"
    );
    assert_eq!(
        render(
            r#"{{eq "a" "b" "a"}} {{ne 1 2}} {{lt "a" "b"}} {{le 2 2}} {{gt 3.5 1.5}} {{ge 1 2}}"#
        ),
        "true true true true true false"
    );
    assert!(
        exec_err("{{index .SI 10}}")
            .message
            .contains("error calling index: index out of range: 10")
    );
    assert!(exec_err("{{len 3}}").message.contains("len of type int"));
    assert!(
        exec_err("{{call .Name}}")
            .message
            .contains("non-function of type string")
    );
    assert!(exec_err("{{nil}}").message.contains("nil is not a command"));
    assert!(
        exec_err("{{3 2}}")
            .message
            .contains("can't give argument to non-function 3")
    );
    assert!(
        exec_err("{{.MSI.one 1}}")
            .message
            .contains("one is not a method but has arguments")
    );
    assert!(
        exec_err("{{printf}}")
            .message
            .contains("wrong number of args for printf: want at least 1 got 0")
    );
}

// ---------------------------------------------------------------- errors and positions

#[test]
fn parse_errors_point_at_the_problem() {
    let cases: [(&str, usize, usize, &str); 10] = [
        ("hello {{ .X", 1, 7, "unclosed action"),
        ("a\n{{if .X}}b", 2, 1, "missing {{end}} for this {{if}}"),
        ("a\nb{{end}}", 2, 2, "unexpected {{end}}"),
        ("x {{ foo .X }}", 1, 6, r#"function "foo" not defined"#),
        ("é {{ 1x }}", 1, 6, r#"bad number syntax: "1x""#),
        (r#"{{ "abc }}"#, 1, 4, "unterminated quoted string"),
        ("{{\n $x }}", 2, 2, r#"undefined variable "$x""#),
        ("{{ (.X }}", 1, 4, "unclosed left paren"),
        ("{{ 99999999999999999999 }}", 1, 4, "integer overflow"),
        ("{{ 1i }}", 1, 4, "complex constants are not supported"),
    ];
    for (text, line, column, msg) in cases {
        let e = parse_err(text);
        assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
        assert!(e.message.contains(msg), "{text:?}: {e}");
        assert_eq!(
            e.to_string(),
            format!("template: {line}:{column}: {}", e.message)
        );
    }
}

#[test]
fn exec_errors_say_what_and_where() {
    let e = exec_err("line one\n  {{index .SI 10}}");
    assert_eq!((e.line, e.column, e.offset), (2, 5, 13));
    assert_eq!(
        e.message,
        r#"executing "t" at <index .SI 10>: error calling index: index out of range: 10"#
    );
    let e = exec_err(r#"{{define "d"}}{{.I.X}}{{end}}é{{template "d" .}}"#);
    assert_eq!((e.line, e.column), (1, 17));
    assert!(e.message.starts_with(r#"executing "d" at <.I.X>"#), "{e}");
    let e = exec_err("{{UrlEncode}}");
    assert!(
        e.message
            .contains("error calling UrlEncode: wrong number of args"),
        "{e}"
    );
}

// ---------------------------------------------------------------- functions

#[test]
fn registered_functions() {
    let funcs = yeastar_like();
    assert!(funcs.contains("UrlEncode"));
    assert!(!funcs.contains("printf"));
    assert_eq!(
        render(r#"{{Capitalize .Name}} {{"x y" | UrlEncode}}"#),
        "Carla x%20y"
    );
    // A registered function replaces a builtin of the same name.
    let mut f = Funcs::new();
    f.register("len", |_args: &[Value<'_>]| Ok(Value::Int(42)));
    let t = Template::parse("t", "{{len .SI}}", &f).unwrap();
    assert_eq!(t.render(&data(), &f).unwrap(), "42");
    // Functions can return borrowed values and any kind of value.
    f.register("First", |args: &[Value<'_>]| match args.first() {
        Some(a @ Value::Array(_)) => Ok(a.elem(0).unwrap_or(Value::Nil)),
        _ => Err("want an array".into()),
    });
    f.register("Pair", |_args: &[Value<'_>]| {
        Ok(Value::from_json_owned(json!({"a": [1, "x"], "b": null})))
    });
    let t = Template::parse("t", "{{First .SI}} {{Pair}} {{(Pair).a}} {{index (Pair).a 1}} {{range $k, $v := Pair}}{{$k}}{{end}}", &f).unwrap();
    assert_eq!(
        t.render(&data(), &f).unwrap(),
        "3 map[a:[1 x] b:<nil>] [1 x] x ab"
    );
    // Unknown function: parse error. Function missing at execution: execution error.
    assert!(
        parse_err("{{Nope 1}}")
            .message
            .contains(r#"function "Nope" not defined"#)
    );
    let t = Template::parse("t", "{{UrlEncode .Phone}}", &yeastar_like()).unwrap();
    let e = t.render(&data(), &Funcs::new()).unwrap_err();
    assert!(
        e.message
            .contains(r#""UrlEncode" is not a defined function"#),
        "{e}"
    );
    // Another registry with the same name is used by name.
    let mut other = Funcs::new();
    other.register("UrlEncode", |_args: &[Value<'_>]| {
        Ok(Value::from_str_ref("other"))
    });
    assert_eq!(t.render(&data(), &other).unwrap(), "other");
    // A missing argument arrives as Missing; an error stops execution.
    let mut f = Funcs::new();
    f.register("Kind", |args: &[Value<'_>]| {
        Ok(Value::from_string(
            args.iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(","),
        ))
    });
    f.register("Fail", |_args: &[Value<'_>]| Err("boom".to_string()));
    f.register(
        "Panic",
        |_args: &[Value<'_>]| -> callbox_gotmpl::FuncResult<'_> { panic!("bug in a function") },
    );
    let t = Template::parse("t", "{{Kind .Nope nil .Null 1 2.5 \"s\" true}}", &f).unwrap();
    assert_eq!(
        t.render(&data(), &f).unwrap(),
        r#"Missing,Nil,Nil,Int(1),Float(2.5),Str("s"),Bool(true)"#
    );
    let t = Template::parse("t", "ok {{Fail 1}}", &f).unwrap();
    let e = t.render(&data(), &f).unwrap_err();
    assert!(e.message.ends_with("error calling Fail: boom"), "{e}");
    let t = Template::parse("t", "{{Panic}}", &f).unwrap();
    let e = t.render(&data(), &f).unwrap_err();
    assert!(
        e.message
            .ends_with("error calling Panic: panic: bug in a function"),
        "{e}"
    );
}

#[test]
fn value_api() {
    let j = json!({"a": [1, 2], "n": null, "s": "x"});
    let v = Value::from_json(&j);
    assert_eq!(v.to_go_string(), "map[a:[1 2] n:<nil> s:x]");
    assert!(v.is_truthy());
    assert_eq!(Value::Missing.to_go_string(), "<no value>");
    assert_eq!(Value::Nil.to_go_string(), "<nil>");
    assert_eq!(Value::Float(1234567.0).to_go_string(), "1.234567e+06");
    assert_eq!(Value::from_string("s".into()).as_str(), Some("s"));
    assert_eq!(Value::Int(3).as_f64(), Some(3.0));
    assert_eq!(Value::Float(3.0).as_i64(), Some(3));
    assert_eq!(Value::Float(3.5).as_i64(), None);
    assert_eq!(Value::Float(1e300).as_i64(), None);
    assert!(!Value::from_str_ref("").is_truthy());
    assert!(!Value::Float(0.0).is_truthy());
    assert_eq!(Value::from_json(&j["a"]).go_type(), "[]interface {}");
    assert_eq!(Value::from_json(&j).to_json(), j);
}

// ---------------------------------------------------------------- limits

#[test]
fn output_limit() {
    let funcs = Funcs::new();
    let opts = ExecOptions {
        max_output_bytes: 10,
        ..ExecOptions::default()
    };
    let t = Template::parse("t", "0123456789{{.I}}", &funcs).unwrap();
    let mut out = String::new();
    let e = t.execute(&data(), &funcs, &opts, &mut out).unwrap_err();
    assert!(
        e.message.contains("output exceeds the limit of 10 bytes"),
        "{e}"
    );
    assert_eq!(out, "0123456789");
    assert_eq!(e.column, 13);
    let t = Template::parse("t", "{{.I}}\n0123456789", &funcs).unwrap();
    let e = t
        .execute(&data(), &funcs, &opts, &mut String::new())
        .unwrap_err();
    assert_eq!((e.line, e.column), (1, 7));
    // Huge widths and precisions are bounded too (Go allows up to ~1e7 characters).
    for text in [
        r#"{{printf "%9999999d" 1}}"#,
        r#"{{printf "%.9999999f" 1.0}}"#,
        r#"{{printf "%.9999999e" 1.0}}"#,
        r#"{{printf "%-9999999s|" "x"}}"#,
        r#"{{$s := "x"}}{{range .SI}}{{$s = print $s $s $s $s $s $s $s $s $s $s}}{{end}}{{range .SI}}{{$s = print $s $s $s $s $s $s $s $s $s $s}}{{end}}{{range .SI}}{{$s = print $s $s $s $s $s $s $s $s $s $s}}{{end}}{{len $s}}"#,
    ] {
        let t = Template::parse("t", text, &funcs).unwrap();
        let e = t.render(&data(), &funcs).unwrap_err();
        assert!(
            e.message.contains("output exceeds the limit"),
            "{text}: {e}"
        );
    }
    // Exactly Go's output within the limit.
    let t = Template::parse("t", r#"{{printf "%1000000d" 1 | len}}"#, &funcs).unwrap();
    assert_eq!(t.render(&data(), &funcs).unwrap(), "1000000");
}

#[test]
fn range_iteration_limit() {
    let funcs = Funcs::new();
    let opts = ExecOptions {
        max_range_iterations: 5,
        ..ExecOptions::default()
    };
    let t = Template::parse("t", "{{range .SI}}{{range $.SI}}x{{end}}{{end}}", &funcs).unwrap();
    let mut out = String::new();
    let e = t.execute(&data(), &funcs, &opts, &mut out).unwrap_err();
    assert!(
        e.message.contains("range iterations exceed the limit of 5"),
        "{e}"
    );
    let t = Template::parse("t", "{{range 1000000000}}{{end}}", &funcs).unwrap();
    let e = t.render(&data(), &funcs).unwrap_err();
    assert!(
        e.message
            .contains("range iterations exceed the limit of 100000"),
        "{e}"
    );
}

#[test]
fn template_depth_limit() {
    let funcs = Funcs::new();
    let t = Template::parse(
        "t",
        r#"{{define "a"}}{{if lt (len .) 50}}{{template "a" (print . "x")}}{{else}}done{{end}}{{end}}{{template "a" ""}}"#,
        &funcs,
    )
    .unwrap();
    assert_eq!(t.render(&data(), &funcs).unwrap(), "done");
    let opts = ExecOptions {
        max_depth: 10,
        ..ExecOptions::default()
    };
    let mut out = String::new();
    let e = t.execute(&data(), &funcs, &opts, &mut out).unwrap_err();
    assert!(
        e.message.contains("exceeded maximum template depth (10)"),
        "{e}"
    );
}

#[test]
fn templates_are_shared_across_threads() {
    let funcs = yeastar_like();
    let t = Template::parse("t", "{{UrlEncode .Phone}}-{{.I}}", &funcs).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (t, funcs) = (t.clone(), funcs.clone());
            std::thread::spawn(move || t.render(&data(), &funcs).unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), "%2B1%20415-17");
    }
    assert_eq!(t.name(), "t");
    assert_eq!(t.template_names(), ["t"]);
}
