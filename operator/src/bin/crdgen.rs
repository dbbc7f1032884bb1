//! Prints the CRDs of the ferrocache API as one multi-document YAML stream, or
//! with a directory argument writes one `<name>.yaml` per CRD there
//! (`make crds` writes `crds/`).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let directory = std::env::args().nth(1).map(PathBuf::from);
    for (name, yaml) in ferrocache_operator::crd::rendered()? {
        match &directory {
            Some(directory) => std::fs::write(directory.join(format!("{name}.yaml")), yaml)?,
            None => print!("---\n{yaml}"),
        }
    }
    Ok(())
}
