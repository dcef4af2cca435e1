pub mod docs;
pub mod meta;
