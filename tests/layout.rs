//! The module graph of the library: which top-level module uses which,
//! read from the sources, has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the other top-level modules its files name as
/// `crate::X`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name != "lib" && name != "bin" {
            modules.insert(name);
        }
    }
    let mut graph = BTreeMap::new();
    for module in &modules {
        let mut files = Vec::new();
        collect(&src.join(module), &mut files);
        collect(&src.join(format!("{module}.rs")), &mut files);
        let mut uses = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for other in modules.iter().filter(|o| *o != module) {
                let named = [":", ";", " ", ","]
                    .iter()
                    .any(|end| text.contains(&format!("crate::{other}{end}")));
                if named {
                    uses.insert(other.clone());
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

fn collect(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            collect(&entry.unwrap().path(), out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    assert!(graph["engine"].contains("rules"), "{graph:?}");
    assert!(graph["replay"].contains("engine"), "{graph:?}");
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(i) = path.iter().position(|p| p == m) {
            panic!("module cycle: {} -> {m}", path[i..].join(" -> "));
        }
        path.push(m.to_owned());
        for next in &graph[m] {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(m.to_owned());
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
}
