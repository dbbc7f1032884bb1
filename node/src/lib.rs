//! ferrocache node.
