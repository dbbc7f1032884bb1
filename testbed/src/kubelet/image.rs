//! From a container image and command to a local executable.
//!
//! There is no container runtime: a container runs as a local process. The
//! stand-in is told which images the workspace builds through a list of
//! `repository=directory[#entrypoint]` entries (comma separated, as in
//! `FERROCACHE_KUBELET_IMAGE_DIRS="ferrocache=/work/main/target/debug#ferrocache-operator"`).
//!
//! An image matches an entry by the last segment of its repository, so
//! `ghcr.io/ferrocache/ferrocache:dev`, `ferrocache/ferrocache@sha256:…` and
//! `ferrocache` all match the entry `ferrocache`. For a matching image,
//! `command[0]` is looked up by its file name in the entry's directory
//! (`/usr/local/bin/ferrocache-node` and `ferrocache-node` both become
//! `<dir>/ferrocache-node`); when the container has no `command`, the entry's
//! `#entrypoint` stands for the image's default entrypoint.
//!
//! Anything else (system binaries such as `/bin/sh` or `redis-server`, or a
//! name missing from the directory) resolves as a shell would: a path with a
//! `/` is used as is, a bare name is searched in the container's `PATH`.

use std::path::{Path, PathBuf};

/// Error of parsing an image mapping or resolving a container's executable.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image mapping entry {entry:?}: expected repository=directory[#entrypoint]")]
    ParseEntry { entry: String },
    #[error("container has no command and image {image} has no known entrypoint")]
    NoEntrypoint { image: String },
    #[error("executable {program:?} of image {image} not found in the image directory or PATH")]
    ExecutableNotFound { image: String, program: String },
}

/// One `repository=directory[#entrypoint]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageDir {
    pub repository: String,
    pub directory: PathBuf,
    pub entrypoint: Option<String>,
}

/// The images the stand-in knows how to run from local binaries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageDirs {
    entries: Vec<ImageDir>,
}

/// What to execute for a container: a program and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executable {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl ImageDirs {
    /// Parses a comma separated list of `repository=directory[#entrypoint]`.
    pub fn parse(spec: &str) -> Result<Self, ImageError> {
        let mut entries = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (repository, rest) =
                entry.split_once('=').ok_or_else(|| ImageError::ParseEntry { entry: entry.to_owned() })?;
            let (directory, entrypoint) = match rest.split_once('#') {
                Some((directory, entrypoint)) => (directory, Some(entrypoint.to_owned())),
                None => (rest, None),
            };
            if repository.is_empty() || directory.is_empty() {
                return Err(ImageError::ParseEntry { entry: entry.to_owned() });
            }
            entries.push(ImageDir {
                repository: repository.to_owned(),
                directory: PathBuf::from(directory),
                entrypoint: entrypoint.filter(|e| !e.is_empty()),
            });
        }
        Ok(Self { entries })
    }

    /// The entry matching `image`, if any.
    pub fn lookup(&self, image: &str) -> Option<&ImageDir> {
        let name = repository_name(image);
        self.entries.iter().find(|entry| entry.repository == name)
    }

    /// Resolves the executable of a container whose `command` and `args` are
    /// already expanded. `path` is the container's `PATH`.
    pub fn resolve(
        &self,
        image: &str,
        command: &[String],
        args: &[String],
        path: &str,
    ) -> Result<Executable, ImageError> {
        let entry = self.lookup(image);
        let (program, mut arguments) = match command.split_first() {
            Some((program, rest)) => (program.clone(), rest.to_vec()),
            None => {
                let entrypoint = entry
                    .and_then(|e| e.entrypoint.clone())
                    .ok_or_else(|| ImageError::NoEntrypoint { image: image.to_owned() })?;
                (entrypoint, Vec::new())
            }
        };
        arguments.extend(args.iter().cloned());

        let in_image = entry.and_then(|entry| {
            let file_name = Path::new(&program).file_name()?;
            let candidate = entry.directory.join(file_name);
            is_executable(&candidate).then_some(candidate)
        });
        let resolved = in_image.or_else(|| {
            if program.contains('/') {
                let candidate = PathBuf::from(&program);
                is_executable(&candidate).then_some(candidate)
            } else {
                search_path(&program, path)
            }
        });
        match resolved {
            Some(program) => Ok(Executable { program, args: arguments }),
            None => Err(ImageError::ExecutableNotFound { image: image.to_owned(), program }),
        }
    }
}

/// The last segment of an image's repository: no registry, tag or digest.
pub fn repository_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last_segment.split(':').next().unwrap_or(last_segment)
}

fn search_path(program: &str, path: &str) -> Option<PathBuf> {
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn image_dir_with(binary: &str) -> (PathBuf, ImageDirs) {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ferrocache-image-test-{}-{}", std::process::id(), binary));
        std::fs::create_dir_all(&dir).expect("create image dir");
        let file = dir.join(binary);
        std::fs::write(&file, "#!/bin/sh\n").expect("write binary");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let spec = format!("ferrocache={}#{binary}", dir.display());
        (dir, ImageDirs::parse(&spec).expect("valid spec"))
    }

    #[test]
    fn repository_name_ignores_registry_tag_and_digest() {
        assert_eq!(repository_name("ghcr.io/ferrocache/ferrocache:dev"), "ferrocache");
        assert_eq!(repository_name("localhost:5000/ferrocache:v1"), "ferrocache");
        assert_eq!(repository_name("ferrocache/ferrocache@sha256:abc"), "ferrocache");
        assert_eq!(repository_name("redis"), "redis");
    }

    #[test]
    fn mapping_entries_parse_with_optional_entrypoint() {
        let dirs = ImageDirs::parse("ferrocache=/t/debug#ferrocache-operator, other=/o").expect("valid");
        assert_eq!(
            dirs.lookup("ghcr.io/x/ferrocache:dev"),
            Some(&ImageDir {
                repository: "ferrocache".into(),
                directory: "/t/debug".into(),
                entrypoint: Some("ferrocache-operator".into()),
            })
        );
        assert_eq!(dirs.lookup("other:1").map(|e| e.entrypoint.clone()), Some(None));
        assert!(ImageDirs::parse("no-equals-sign").is_err());
    }

    #[test]
    fn command_of_a_mapped_image_resolves_in_its_directory_by_file_name() {
        let (dir, dirs) = image_dir_with("ferrocache-node");
        let resolved = dirs
            .resolve(
                "ghcr.io/ferrocache/ferrocache:dev",
                &strings(&["/usr/local/bin/ferrocache-node", "--port"]),
                &strings(&["6379"]),
                SYSTEM_PATH,
            )
            .expect("resolves");
        assert_eq!(resolved.program, dir.join("ferrocache-node"));
        assert_eq!(resolved.args, strings(&["--port", "6379"]));
    }

    #[test]
    fn mapped_image_without_command_runs_its_entrypoint_with_args() {
        let (dir, dirs) = image_dir_with("ferrocache-operator");
        let resolved = dirs.resolve("ferrocache:dev", &[], &strings(&["--help"]), SYSTEM_PATH).expect("resolves");
        assert_eq!(resolved.program, dir.join("ferrocache-operator"));
        assert_eq!(resolved.args, strings(&["--help"]));
    }

    #[test]
    fn system_binaries_resolve_through_path() {
        let dirs = ImageDirs::default();
        let resolved =
            dirs.resolve("busybox:1.36", &strings(&["sh", "-c", "true"]), &[], SYSTEM_PATH).expect("sh is on PATH");
        assert!(resolved.program.ends_with("sh"));
        let absolute = dirs.resolve("busybox", &strings(&["/bin/sh"]), &[], "").expect("absolute path");
        assert_eq!(absolute.program, PathBuf::from("/bin/sh"));
    }

    #[test]
    fn unknown_executable_and_missing_entrypoint_are_errors() {
        let dirs = ImageDirs::default();
        assert!(matches!(
            dirs.resolve("x", &strings(&["no-such-binary-here"]), &[], SYSTEM_PATH),
            Err(ImageError::ExecutableNotFound { .. })
        ));
        assert!(matches!(dirs.resolve("x", &[], &[], SYSTEM_PATH), Err(ImageError::NoEntrypoint { .. })));
    }
}
