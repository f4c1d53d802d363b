//! The stages depend one way: each top-level module of `src/` may use only the modules declared
//! before it in `src/lib.rs` (the order there is the layering). A `crate::x` path in a module
//! declared before `x` — a use line or a path in code — fails this test, naming file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The top-level modules in the order `lib.rs` declares them.
fn declared_order(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod ")))
        .map(|m| m.trim_end_matches(';').trim().to_string())
        .collect()
}

/// Every `crate::<module>` a source text names outside comments, with its line number.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            // `quarry_crate::x` or `mycrate::x` are other paths.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push((n + 1, name));
            }
        }
    }
    out
}

/// The layering violations of `files` (top-level module, path, text) under `order`.
fn violations(order: &[String], files: &[(String, PathBuf, String)]) -> Vec<String> {
    let rank: HashMap<&str, usize> = order.iter().enumerate().map(|(i, m)| (m.as_str(), i)).collect();
    let mut out = Vec::new();
    for (module, path, text) in files {
        let Some(&mine) = rank.get(module.as_str()) else {
            out.push(format!("{}: module {module} is not declared in lib.rs", path.display()));
            continue;
        };
        for (line, used) in crate_paths(text) {
            match rank.get(used.as_str()) {
                Some(&theirs) if theirs < mine => {}
                Some(&theirs) if theirs == mine => {}
                Some(_) => out.push(format!(
                    "{}:{line}: {module} uses crate::{used}, which lib.rs declares after it (stages depend one way: {})",
                    path.display(),
                    order.join(" → ")
                )),
                // `crate::Error` and other items lib.rs re-exports: they live in an earlier module.
                None => {}
            }
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("a folder entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn top_level_modules_depend_only_on_those_declared_before_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let order = declared_order(&std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs"));
    assert!(order.len() >= 8, "lib.rs declares {order:?}");
    let mut paths = Vec::new();
    sources(&src, &mut paths);
    let files: Vec<(String, PathBuf, String)> = paths
        .into_iter()
        .filter(|p| !matches!(p.file_name().and_then(|n| n.to_str()), Some("lib.rs" | "main.rs")))
        .map(|p| {
            let rel = p.strip_prefix(&src).expect("below src");
            let first = rel.components().next().expect("a component").as_os_str().to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(&p).expect("source");
            (module, p, text)
        })
        .collect();
    assert!(files.len() > 30, "found {} source files", files.len());
    let bad = violations(&order, &files);
    assert!(bad.is_empty(), "import cycles between stages:\n{}", bad.join("\n"));
}

#[test]
fn a_use_of_a_later_stage_is_reported() {
    let order: Vec<String> = ["contract", "extract", "run"].map(String::from).to_vec();
    let file = |m: &str, text: &str| (m.to_string(), PathBuf::from(format!("src/{m}/x.rs")), text.to_string());
    let files = [
        file("extract", "use crate::contract::schema;\nuse crate::run::Run; // the violation\n"),
        file("run", "use crate::extract::x;\n// crate::nothing in a comment\nlet a = crate::contract::Table::Posts;"),
        file("stray", "fn f() {}"),
    ];
    let bad = violations(&order, &files);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].starts_with("src/extract/x.rs:2: extract uses crate::run"), "{}", bad[0]);
    assert!(bad[1].contains("stray is not declared"), "{}", bad[1]);
    assert_eq!(crate_paths("mycrate::z; crate::a::b; my_crate::c"), [(1, "a".to_string())]);
}
