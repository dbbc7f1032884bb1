//! RESP wire protocol: request parsing (multibulk and inline) and reply encoding
//! (RESP2 and RESP3).

pub mod reply;
pub mod request;

pub use reply::Reply;
pub use request::{ParseError, RequestParser};
