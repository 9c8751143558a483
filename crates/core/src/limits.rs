//! Limits on what one produced batch may hold, checked on its encoded bytes before it is
//! decoded, so that no batch makes the server allocate far more than its own size. Each
//! refusal is an `INVALID_ARGUMENT` naming the field and the limit.

/// Records in one produced batch. Checked on the encoded bytes before decoding: an empty
/// record is 2 bytes on the wire but about 100 in memory.
pub const MAX_RECORDS_PER_BATCH: usize = 100_000;

/// Headers of all the records of one produced batch (checked before decoding too).
pub const MAX_HEADERS_PER_BATCH: usize = 1_000_000;

/// Refuses a list longer than `limit`, naming the field and the limit.
pub fn check_count(field: &str, what: &str, count: usize, limit: usize) -> crate::Result<()> {
    if count > limit {
        return Err(crate::Error::invalid(
            field,
            format!("{count} {what} in one request; the limit is {limit}"),
        ));
    }
    Ok(())
}
