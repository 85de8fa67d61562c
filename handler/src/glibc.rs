//! Which glibc a Linux binary needs: the newest `GLIBC_x.y` version it references.
//!
//! Lambda's `provided.al2023` runtime has glibc 2.34; a binary linked on a newer host may bind
//! symbols such as `__isoc23_strtol@GLIBC_2.38` and fail at start. Version requirements are
//! named in the dynamic string table, so reading `.dynstr` is enough. Part of the function's
//! deployment contract, shared by the CLI (which refuses such a binary) and the tests of the
//! built `bootstrap`.

use object::{Object, ObjectSection};

/// The glibc of Amazon Linux 2023 (`provided.al2023`).
pub const AL2023_GLIBC: (u32, u32) = (2, 34);

/// The newest glibc version `elf` requires, or `None` for a static binary (or one that needs
/// no versioned glibc symbol). Errors when the bytes are not an object file.
pub fn newest_glibc(elf: &[u8]) -> Result<Option<(u32, u32)>, object::Error> {
    let file = object::File::parse(elf)?;
    let Some(dynstr) = file.section_by_name(".dynstr") else {
        return Ok(None);
    };
    let data = dynstr.data()?;
    Ok(data
        .split(|b| *b == 0)
        .filter_map(|s| std::str::from_utf8(s).ok()?.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
            Some((major, minor))
        })
        .max())
}
