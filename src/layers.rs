//! The layers of the crate, checked: the top-level modules import each other without a circle, and
//! the lower layers never reach up (see ARCHITECTURE.md). Imports are read from the source (paths
//! `crate::<module>`), test code left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Which top-level modules a module must never import.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("clock", &["*"]),
    ("texts", &["*"]),
    ("config", &["*"]),
    (
        "db",
        &[
            "wecom", "cache", "crm", "bot", "events", "inbox", "notify", "jobs", "sync", "report", "services", "http",
            "web", "cli", "app",
        ],
    ),
    (
        "cache",
        &[
            "wecom", "db", "crm", "bot", "events", "inbox", "notify", "jobs", "sync", "report", "services", "http",
            "web", "cli", "app",
        ],
    ),
    (
        "wecom",
        &[
            "db", "crm", "bot", "events", "inbox", "notify", "jobs", "sync", "report", "services", "http", "web",
            "cli", "app",
        ],
    ),
    (
        "crm",
        &[
            "bot", "events", "inbox", "notify", "jobs", "sync", "report", "services", "http", "web", "cli", "app",
        ],
    ),
    (
        "notify",
        &[
            "crm", "bot", "events", "inbox", "jobs", "sync", "report", "services", "http", "web", "cli", "app",
        ],
    ),
    (
        "inbox",
        &[
            "crm", "bot", "events", "notify", "jobs", "sync", "report", "http", "web", "cli", "app",
        ],
    ),
    (
        "report",
        &["bot", "events", "jobs", "sync", "http", "web", "cli", "app"],
    ),
    ("bot", &["events", "jobs", "sync", "http", "web", "cli", "app"]),
    ("events", &["jobs", "sync", "http", "web", "cli", "app"]),
    ("jobs", &["events", "http", "web", "cli", "app"]),
    ("http", &["web", "cli", "app"]),
    ("web", &["events", "inbox", "jobs", "sync", "cli", "app"]),
];

/// The `crate::…` modules each top-level module imports.
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs").to_owned();
        if ["lib", "main", "layers"].contains(&top.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Test code may reach anywhere: only what precedes the test module counts.
        let code = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
        let edges = graph.entry(top.clone()).or_default();
        for line in code.lines().map(|l| l.split("//").next().unwrap_or_default()) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group
                        .split('}')
                        .next()
                        .unwrap_or_default()
                        .split(',')
                        .map(|p| p.trim().split("::").next().unwrap_or_default())
                        .collect(),
                    None => vec![
                        rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .next()
                            .unwrap_or_default(),
                    ],
                };
                for name in names.into_iter().filter(|n| !n.is_empty() && *n != top && *n != "self") {
                    edges.insert(name.to_owned());
                }
            }
        }
    }
    graph
}

/// A circle through `start`, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_top_level_modules_form_layers_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = imports(&src);
    assert!(graph.len() > 15, "the modules were read: {graph:?}");
    for module in graph.keys() {
        if let Some(path) = circle(&graph, module) {
            panic!(
                "the top-level modules import each other in a circle: {} → {module}",
                path.join(" → ")
            );
        }
    }
    for (module, never) in FORBIDDEN {
        let imported = graph.get(*module).cloned().unwrap_or_default();
        let wrong: Vec<&String> = imported
            .iter()
            .filter(|m| never.contains(&"*") || never.contains(&m.as_str()))
            .collect();
        assert!(
            wrong.is_empty(),
            "`{module}` must not import {wrong:?}: it is a lower layer"
        );
    }
}

#[test]
fn a_forbidden_import_is_caught() {
    let dir = std::env::temp_dir().join(format!("scrm-layers-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("wecom")).unwrap();
    std::fs::write(dir.join("wecom/mod.rs"), "use crate::crm::customers;\n").unwrap();
    std::fs::write(dir.join("crm.rs"), "use crate::{wecom, db::now_ms};\n").unwrap();
    let graph = imports(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(graph["wecom"], BTreeSet::from(["crm".to_owned()]));
    assert_eq!(graph["crm"], BTreeSet::from(["wecom".to_owned(), "db".to_owned()]));
    assert!(circle(&graph, "wecom").is_some());
}
