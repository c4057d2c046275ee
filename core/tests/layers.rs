//! The core's layers stay layers: every module of `core/src` sits in one layer (`os`,
//! `shm`, `protocol`, the owned ends, `waiting`, then the tools' views), no module uses a module of a later layer,
//! and no modules use each other in a circle. Read from the source (paths `crate::x`,
//! comments skipped), so a new import that breaks the layering fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layer of each module, bottom first.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "os",
        &[
            "sync",
            "clock",
            "futex",
            "lock",
            "residency",
            "trust",
            "fork",
        ],
    ),
    (
        "shm",
        &[
            "stamp", "layout", "geometry", "name", "memory", "segment", "error",
        ],
    ),
    (
        "protocol",
        &[
            "wake", "entry", "handback", "terms", "writer", "reader", "ring", "stall",
        ],
    ),
    ("ends", &["endpoint"]),
    ("waiting", &["wait", "waitset", "reactor"]),
    ("top", &["inspect"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

/// The module a source file belongs to (`waiting/waitset/sleep.rs` is `waitset`), or
/// `None` for the crate root and the folders' `mod.rs`.
fn module_of(rel: &Path) -> Option<String> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    match parts.as_slice() {
        [one] if one == "lib" => None,
        [one] => Some(one.clone()),
        [_, file] if file == "mod" => None,
        [_, file] => Some(file.clone()),
        [_, dir, _] => Some(dir.clone()),
        _ => panic!("unexpected source path {rel:?}"),
    }
}

/// `crate::x` and `crate::layer::x` paths used in code (not comments).
fn uses(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let mut ident: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if LAYERS.iter().any(|(l, _)| *l == ident) {
                let after = &rest[ident.len()..];
                if let Some(tail) = after.strip_prefix("::") {
                    ident = tail
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                }
            }
            out.insert(ident);
        }
    }
    out
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            if let Some(m) = module_of(path.strip_prefix(root).unwrap()) {
                out.push((m, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, source) in files {
        assert!(
            layer_of(&module).is_some(),
            "core/src module {module:?} is in no layer: add it to LAYERS (and to the map in \
             lib.rs and docs/design.md)"
        );
        let deps = g.entry(module.clone()).or_default();
        for used in uses(&source) {
            if used != module && layer_of(&used).is_some() {
                deps.insert(used);
            }
        }
    }
    g
}

#[test]
fn no_module_uses_a_later_layer() {
    let mut upward = Vec::new();
    for (module, deps) in graph() {
        for d in deps {
            if layer_of(&d) > layer_of(&module) {
                upward.push(format!("{module} -> {d}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the layering: {upward:?}"
    );
}

#[test]
fn no_modules_use_each_other_in_a_circle() {
    let g = graph();
    // Depth-first search for a back edge.
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        m: &str,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_owned(), 1);
        path.push(m.to_owned());
        for d in g.get(m).into_iter().flatten() {
            match state.get(d.as_str()) {
                Some(1) => {
                    let start = path.iter().position(|p| p == d).unwrap();
                    let mut cycle = path[start..].to_vec();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(g, d, state, path) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        state.insert(m.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in g.keys() {
        if !state.contains_key(m.as_str()) {
            let found = visit(&g, m, &mut state, &mut Vec::new());
            assert!(found.is_none(), "an import circle: {:?}", found.unwrap());
        }
    }
}

#[test]
fn the_check_sees_imports() {
    // The negative control: the reader of imports finds both path forms.
    let found = uses("use crate::ring::Reader;\nlet x = crate::protocol::wake::after_commit(m); // crate::inspect");
    assert_eq!(
        found,
        ["ring", "wake"].iter().map(|s| s.to_string()).collect()
    );
}
