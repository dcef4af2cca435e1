//! RESP2/RESP3: the incremental request parser (with Redis's limits and exact protocol error
//! texts) and the reply writer, which encodes each reply for the client's protocol version.

pub mod frame;
pub mod parser;
pub mod reply;

pub use frame::Frame;
pub use parser::{ParseError, RequestParser};
pub use reply::ReplyBuf;
