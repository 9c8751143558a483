//! Limits on what one request may ask for, so that no single call makes the server allocate
//! far more than the request's own size or do unbounded work. Each refusal is an
//! `INVALID_ARGUMENT` naming the field and the limit (`tributary_core::limits::check_count`).
//!
//! Limits kept elsewhere, beside the rule they belong to: records and headers per produced
//! batch (`tributary_core::limits`), name and path lengths (`tributary_core::names`), ACL
//! expression length and nesting (`tributary_core::acl`), partitions per topic and
//! `max_message_bytes` (`model`), the fetch budget and long-poll (`MAX_FETCH_BYTES`,
//! `MAX_FETCH_WAIT`), and the request size and headers (`tributary-api`).

/// Partitions named in one `ListOffsets` request: a topic's own maximum.
pub const MAX_PARTITIONS_PER_REQUEST: usize = crate::model::MAX_PARTITIONS as usize;

/// Groups of one user; every request of the user carries them.
pub const MAX_GROUPS_PER_USER: usize = 256;
