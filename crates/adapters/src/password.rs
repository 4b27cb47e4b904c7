//! Reading a new registry password from a file or standard input, bounded, into an opaque
//! [`Password`]: the only place the product reads one.
//!
//! A password is short; a file or pipe larger than [`MAX_BYTES`] is refused without reading
//! further, so `password_file=/dev/zero` (or a wrong, huge file) costs nothing. This module never
//! returns the text itself, never prints it, and never names more than the source in an error.

use anyhow::{Context, Result, bail};
use ocitool_core::creds::{Password, STDIN};
use std::io::Read;

/// Largest password file or standard input accepted (registry tokens are well below this).
pub const MAX_BYTES: u64 = 4096;

/// Read the password from `source`, a file path or `-` for standard input.
pub fn read(source: &str) -> Result<Password> {
    let text = if source == STDIN {
        read_capped(std::io::stdin().lock(), "standard input")?
    } else {
        let file = std::fs::File::open(source)
            .with_context(|| format!("could not read the password file {source}"))?;
        read_capped(file, source)?
    };
    Password::from_text(source, text)
}

fn read_capped(reader: impl Read, shown: &str) -> Result<String> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("could not read the password from {shown}"))?;
    if bytes.len() as u64 > MAX_BYTES {
        bail!(
            "the password from {shown} is longer than {MAX_BYTES} bytes; give a file holding only the password"
        );
    }
    String::from_utf8(bytes).with_context(|| format!("the password from {shown} is not UTF-8 text"))
}

/// A warning when the password file can be read by other users than its owner (the password is
/// then exposed before ocitool ever sees it); None for standard input and private files.
pub fn permission_warning(source: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(source).ok()?.permissions().mode();
    (source != STDIN && mode & 0o077 != 0).then(|| {
        format!(
            "password file {source} is accessible to other users (mode {:o}); `chmod 600 {source}`",
            mode & 0o777
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_source_is_refused_after_the_cap() {
        let err = read("/dev/zero").unwrap_err().to_string();
        assert!(err.contains("longer than 4096 bytes"), "{err}");
    }

    #[test]
    fn a_private_file_is_read_without_its_newline_and_a_shared_one_warns() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "adapter-pass-1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = path.to_str().unwrap();
        assert_eq!(format!("{}", read(path).unwrap()), "<password>");
        assert!(permission_warning(path).is_none());
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(permission_warning(path).unwrap().contains("chmod 600"));
    }
}
