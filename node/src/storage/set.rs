//! The set type (placeholder: filled in by the set commands work).

/// A Redis set value.
#[derive(Debug, Clone, Default)]
pub struct Set {
    len: usize,
}

impl Set {
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
