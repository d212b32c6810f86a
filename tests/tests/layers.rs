//! Dependencies point down: the adapters (axum, actix-web, the test kit) → the layer → the
//! request session → stores, registry, typed → record, schema, cookie → codec, id, expiry,
//! error. This test reads every module's `crate::` paths and fails on any that points up, and
//! writes the picture of the imports (`target/modules.dot`; `docs/modules.svg` is it rendered
//! with graphviz: `dot -Tsvg target/modules.dot -o docs/modules.svg`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, top first; a module may name its own layer and those below it.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "adapters",
        &["axum", "actix", "tower", "testing", "private", "lib"],
    ),
    ("layer", &["layer"]),
    ("request session", &["session", "csrf", "events"]),
    (
        "stores, registry, typed",
        &["store", "registry", "typed", "census"],
    ),
    ("record, schema, cookie", &["record", "schema", "cookie"]),
    (
        "codec, id, expiry, error",
        &[
            "codec",
            "id",
            "expiry",
            "errors",
            "dirty",
            "slot_check",
            "metrics",
        ],
    ),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate's top-level module a source file belongs to.
fn module_of(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).unwrap_or(file);
    let first = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

/// The top-level modules `code` names through `crate::` (comments left out).
fn named(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn dependencies_point_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sessions/src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(
        files.len() > 30,
        "found the crate's sources: {}",
        files.len()
    );
    let mut edges = BTreeSet::new();
    let mut upward = Vec::new();
    for file in &files {
        let module = module_of(&root, file);
        let code = std::fs::read_to_string(file).unwrap_or_default();
        let Some(from) = layer_of(&module) else {
            upward.push(format!("{module}: a module in no layer (add it to LAYERS)"));
            continue;
        };
        for target in named(&code) {
            let Some(to) = layer_of(&target) else {
                continue;
            };
            if target != module {
                edges.insert((module.clone(), target.clone()));
            }
            if to < from {
                upward.push(format!(
                    "{} names `crate::{target}` ({}), above its layer ({})",
                    file.strip_prefix(&root).unwrap_or(file).display(),
                    LAYERS[to].0,
                    LAYERS[from].0
                ));
            }
        }
    }
    let mut dot = String::from(
        "digraph modules {\n  rankdir=TB; newrank=true; ranksep=0.9; node [shape=box, fontname=\"sans-serif\"]; edge [color=\"#00000055\"];\n",
    );
    for (index, (name, modules)) in LAYERS.iter().enumerate() {
        dot.push_str(&format!(
            "  subgraph cluster_{index} {{ label=\"{name}\"; rank=same; {} }}\n",
            modules
                .iter()
                .map(|m| format!("\"{m}\";"))
                .collect::<String>()
        ));
    }
    // The layers one under the other, top first.
    for pair in LAYERS.windows(2) {
        dot.push_str(&format!(
            "  \"{}\" -> \"{}\" [style=invis, weight=100];\n",
            pair[0].1[0], pair[1].1[0]
        ));
    }
    for (from, to) in &edges {
        dot.push_str(&format!("  \"{from}\" -> \"{to}\";\n"));
    }
    dot.push_str("}\n");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(target.join("modules.dot"), dot);
    assert!(
        upward.is_empty(),
        "imports that point up:\n{}",
        upward.join("\n")
    );
}
