//! Limits on what one request may ask for, so that no single call makes the server allocate
//! far more than the request's own size or do unbounded work. Each refusal is an
//! `INVALID_ARGUMENT` naming the field and the limit.
//!
//! Limits kept elsewhere, beside the rule they belong to: name and path lengths
//! (`names`), ACL expression length and nesting (`acl`), partitions per topic and
//! `max_message_bytes` (`model`), the fetch budget and long-poll (`MAX_FETCH_BYTES`,
//! `MAX_FETCH_WAIT`), and the request size and headers (`tributary-api`).

/// Records in one produced batch. Checked on the encoded bytes before decoding: an empty
/// record is 2 bytes on the wire but about 100 in memory.
pub const MAX_RECORDS_PER_BATCH: usize = 100_000;

/// Headers of all the records of one produced batch (checked before decoding too).
pub const MAX_HEADERS_PER_BATCH: usize = 1_000_000;

/// Partitions named in one `ListOffsets` request: a topic's own maximum.
pub const MAX_PARTITIONS_PER_REQUEST: usize = crate::model::MAX_PARTITIONS as usize;

/// Groups of one user; every request of the user carries them.
pub const MAX_GROUPS_PER_USER: usize = 256;

/// Refuses a list longer than `limit`, naming the field and the limit.
pub(crate) fn check_count(
    field: &str,
    what: &str,
    count: usize,
    limit: usize,
) -> crate::Result<()> {
    if count > limit {
        return Err(crate::Error::invalid(
            field,
            format!("{count} {what} in one request; the limit is {limit}"),
        ));
    }
    Ok(())
}
