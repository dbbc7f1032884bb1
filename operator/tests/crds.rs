//! The committed CRDs in `crds/` (and the Helm chart's copies) are exactly what
//! the Rust types generate: change the types, run `make crds`, commit both.

use std::path::Path;

#[test]
fn committed_crds_match_the_rust_types() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let rendered = ferrocache_operator::crd::rendered().expect("CRDs render");
    for (name, yaml) in &rendered {
        let path = directory.join(format!("{name}.yaml"));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == *yaml, "{} is stale or missing: run `make crds` and commit the result", path.display());
    }
    let files = std::fs::read_dir(&directory).expect("crds/ exists").count();
    assert_eq!(files, rendered.len(), "crds/ holds files that no type generates");
}

#[test]
fn every_crd_has_status_printer_columns_and_no_null_enums() {
    for crd in ferrocache_operator::crd::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let version = &crd.spec.versions[0];
        assert!(version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(), "{name} lacks /status");
        let columns: Vec<&str> =
            version.additional_printer_columns.iter().flatten().map(|column| column.name.as_str()).collect();
        assert!(columns.contains(&"State") && columns.contains(&"Age"), "{name}: {columns:?}");
        let schema = serde_json::to_string(&version.schema).expect("schema serializes");
        assert!(!schema.contains("\"enum\":[null") && !schema.contains(",null]"), "{name} has null in an enum");
    }
}
