//! The crate's house rules, checked on its own source: imports only point
//! down the floors of ARCHITECTURE.md, and no two files import each other,
//! directly or through others.
//!
//! A "room" is a source file (`src/acl/edit.rs` is `acl::edit`); an arrow is
//! a `crate::…` or `super::…` path in it, outside its `#[cfg(test)]` module,
//! pointing at the deepest module it names. A folder's `mod.rs` declaring
//! and re-exporting its own files is the folder's front door, not an arrow.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules from the top floor to the ground. An import between two
/// top-level modules must go to a lower floor; modules on one floor never
/// import each other.
const FLOORS: &[&[&str]] = &[
    &["crate"],
    &["commands"],
    &["cli"],
    &["tutorial"],
    &["error"],
    &["doctor"],
    &["broker"],
    &["check"],
    &["acl", "hosts"],
    &["identity"],
    &["lines", "tls", "runtime"],
    &["files"],
    &["names", "output"],
    &["diagnose"],
    &["exit_code"],
];

type Graph = BTreeMap<String, BTreeSet<String>>;

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/acl/edit.rs` → `acl::edit`; `src/acl/mod.rs` → `acl`; `src/lib.rs` → `crate`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    if parts.is_empty() {
        "crate".into()
    } else {
        parts.join("::")
    }
}

/// The code of a file: without its unit tests (which may use anything)
/// and without comments (a doc link is not an import).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path that follows `prefix` in `text`, with `{a, b::c}` groups expanded.
fn paths_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        tree(rest, Vec::new(), &mut out);
    }
    out
}

/// Parses one use-tree at the start of `text`, appending each full path.
fn tree(text: &str, base: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = base;
    let bytes = text.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'{' {
            i += 1;
            loop {
                i += tree(&text[i..], path.clone(), out);
                while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'}' {
                    return i + 1;
                }
            }
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if start == i {
            out.push(path);
            return i;
        }
        path.push(text[start..i].to_string());
        if text[i..].starts_with("::") {
            i += 2;
        } else {
            out.push(path);
            return i;
        }
    }
}

/// The deepest known module `path` names, if any.
fn resolve(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph = Graph::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "main" {
            continue;
        }
        let text = code_of(&fs::read_to_string(file).unwrap());
        let text = text.as_str();
        // `super` of `acl::edit` (src/acl/edit.rs) and of `acl` (src/acl/mod.rs)
        // is one level up either way.
        let mut parent: Vec<String> = module.split("::").map(str::to_string).collect();
        parent.pop();
        let mut targets = BTreeSet::new();
        for path in paths_after(text, "crate::") {
            targets.extend(resolve(&path, &modules));
        }
        for path in paths_after(text, "super::") {
            let mut full = parent.clone();
            full.extend(path);
            match resolve(&full, &modules) {
                Some(m) => {
                    targets.insert(m);
                }
                None if parent.is_empty() => {
                    targets.insert("crate".into());
                }
                None => {
                    targets.insert(parent.join("::"));
                }
            }
        }
        // A folder's front door declares and re-exports its own rooms.
        let own = format!("{module}::");
        targets.retain(|t| t != &module && !t.starts_with(&own));
        graph.insert(module, targets);
    }
    graph
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

fn floor(module: &str) -> usize {
    FLOORS
        .iter()
        .position(|floor| floor.contains(&top(module)))
        .unwrap_or_else(|| panic!("{module} is on no floor: add it to FLOORS and ARCHITECTURE.md"))
}

#[test]
fn imports_only_point_down_the_floors() {
    let mut wrong = Vec::new();
    for (from, targets) in graph() {
        for to in targets {
            if top(&from) != top(&to) && floor(&from) >= floor(&to) {
                wrong.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that do not point down a floor:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn no_two_files_import_each_other() {
    let graph = graph();
    // Tarjan's strongly connected components: a component of more than one
    // file is a circle of imports.
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        circles: Vec<Vec<&'g str>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.graph.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut circle = Vec::new();
            while let Some(w) = s.stack.pop() {
                circle.push(w);
                if w == v {
                    break;
                }
            }
            if circle.len() > 1 {
                s.circles.push(circle);
            }
        }
    }
    let mut state = State {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        circles: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    assert!(
        state.circles.is_empty(),
        "circles of imports: {:?}",
        state.circles
    );
}

#[test]
fn the_checker_sees_groups_and_super() {
    let paths = paths_after("use crate::{acl::{self, Access}, files};", "crate::");
    assert_eq!(
        paths,
        [
            vec!["acl".to_string(), "self".to_string()],
            vec!["acl".into(), "Access".into()],
            vec!["files".into()],
        ]
    );
    assert!(paths_after("notcrate::x", "crate::").is_empty());
}
