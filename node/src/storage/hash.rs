//! The hash type (placeholder: filled in by the hash commands work).

/// A Redis hash value.
#[derive(Debug, Clone, Default)]
pub struct Hash {
    len: usize,
}

impl Hash {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    pub fn heap_size(&self) -> usize {
        0
    }
}
