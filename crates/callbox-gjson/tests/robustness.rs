//! Adversarial inputs: deep nesting in paths and JSON must not overflow the
//! stack (tests run on small 2 MiB threads), nor panic, nor hang.

use callbox_gjson::{Document, MAX_DEPTH, get, valid, validate_path};

/// Run `f` on a thread with a 2 MiB stack (the default for spawned threads,
/// and what many callers use).
fn small_stack(f: impl FnOnce() + Send + 'static) {
    let h = std::thread::Builder::new().stack_size(2 << 20).spawn(f);
    match h {
        Ok(h) => assert!(h.join().is_ok(), "thread panicked"),
        Err(e) => panic!("spawn failed: {e}"),
    }
}

fn both(json: &str, path: &str) -> bool {
    let a = get(json, path);
    let b = Document::new(json).get(path);
    assert_eq!(a, b, "get vs Document::get for {path:?}");
    a.exists()
}

#[test]
fn deep_json_with_modifiers() {
    small_stack(|| {
        // far beyond MAX_DEPTH (@dig/@flatten are O(size x depth), as in gjson)
        let n = 20_000;
        let deep = "[".repeat(n) + &"]".repeat(n);
        assert!(valid(&deep));
        for p in [
            "@pretty",
            "@ugly",
            "@flatten:{\"deep\":true}",
            "@dig:a",
            "@reverse",
            "@this",
            "@valid",
            "0.0.0.0",
            "#",
            "..#",
            "@keys",
            "@values",
            "@join",
            "@group",
            "@tostr",
            "@fromstr",
        ] {
            let _ = both(&deep, p);
        }
        let deep_obj = "{\"a\":".repeat(n) + "1" + &"}".repeat(n);
        for p in ["@pretty", "@dig:a", "a.a.a.a", "@flatten", "@this"] {
            let _ = both(&deep_obj, p);
        }
        // moderately deep JSON is still handled by the recursive modifiers
        let ok = "[".repeat(100) + "1" + &"]".repeat(100);
        assert!(both(&ok, "@pretty"));
        assert_eq!(get(&ok, "@flatten:{\"deep\":true}").raw(), "[1]");
    });
}

#[test]
fn deep_paths() {
    small_stack(|| {
        let json = r#"{"a":{"a":{"a":1}},"b":[[[1]]]}"#;
        let n = 50_000;
        let long_dots = vec!["a"; n].join(".");
        assert!(!both(json, &long_dots));
        let pipes = vec!["a"; n].join("|");
        assert!(!both(json, &pipes));
        let queries = "b.#(".repeat(n) + &")".repeat(n);
        let _ = both(json, &queries);
        let multi = "[".repeat(n) + "a" + &"]".repeat(n);
        let _ = both(json, &multi);
        let objs = "{".repeat(n) + "a" + &"}".repeat(n);
        let _ = both(json, &objs);
        let mods = vec!["@reverse"; n].join("|");
        let _ = both(json, &mods);
        let lits = "!".repeat(n);
        let _ = both(json, &lits);
        let stars = "*a".repeat(n);
        let _ = both(json, &stars);
        let _ = validate_path(&queries);
        let _ = validate_path(&multi);
    });
}

#[test]
fn depth_limit_gives_missing_value() {
    small_stack(|| {
        let json = "{\"a\":".repeat(MAX_DEPTH + 10) + "1" + &"}".repeat(MAX_DEPTH + 10);
        let shallow = vec!["a"; 100].join(".");
        assert!(both(&json, &shallow), "an object 100 levels down");
        let at_leaf_shallow = vec!["a"; 20].join(".");
        assert!(get(&json, &at_leaf_shallow).is_object());
        let too_deep = vec!["a"; MAX_DEPTH + 10].join(".");
        assert!(!both(&json, &too_deep));
        // a path that fits: 300 levels
        let json300 = "{\"a\":".repeat(300) + "7" + &"}".repeat(300);
        let p300 = vec!["a"; 300].join(".");
        assert_eq!(get(&json300, &p300).to_str(), "7");
        assert_eq!(Document::new(&json300).get(&p300).to_str(), "7");
    });
}

#[test]
fn large_document_and_odd_input() {
    small_stack(|| {
        let big = format!(
            "[{}]",
            vec![r#"{"a":"x\"y","b":[1,2,{"c":null}]}"#; 5000].join(",")
        );
        let doc = Document::new(&big);
        assert_eq!(doc.get("#").to_str(), "5000");
        assert_eq!(doc.get("4999.b.2").raw(), r#"{"c":null}"#);
        assert_eq!(doc.get("#(a==\"x\\\"y\")#|#").to_str(), "5000");
        for json in [
            "",
            "{",
            "[",
            "\"",
            "\\",
            "{\"a",
            "[\"\\",
            "{\"a\":\"\\u12",
            "\u{0}",
            "{\"\u{10FFFF}\":1}",
        ] {
            for path in [
                "", "a", "#", "..", "..#", "@", "!", "@this", "[", "{", "#(", "a\\", "\\", "*", "?",
            ] {
                let _ = both(json, path);
            }
        }
    });
}
