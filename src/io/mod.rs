//! Media input and output: still images through `image`, video through FFmpeg (`ffmpeg`), and durable,
//! atomic file writes. Nothing here decides what happens to a frame.

#[cfg(feature = "ffmpeg")]
pub(crate) mod ffmpeg;
// Without FFmpeg the file-level paths that use these are compiled out.
#[cfg_attr(not(feature = "ffmpeg"), allow(dead_code))]
pub(crate) mod still;
#[cfg(feature = "ffmpeg")]
pub use ffmpeg::quiet_ffmpeg_log;

use serde::Serialize;

use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// Makes a finished output durable and readable before it is renamed to its final name: flushed to disk
/// and given mode 0644 whatever the umask (files FFmpeg or `tempfile` create get other modes).
#[cfg_attr(not(feature = "ffmpeg"), allow(dead_code))]
pub(crate) fn seal(path: &Path) -> Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| Error::Config(format!("JSON: {e}")))?;
    write_atomic(path, &text)
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, flushed to disk, made readable (0644),
/// then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, true)
}

/// [`write_atomic`], refusing ([`Error::OutputExists`]) to replace a file that exists unless `overwrite`, also
/// one that appears while it is written.
pub fn write_atomic_with(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::temp_in(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(|e| Error::io(path, e))?;
    }
    let persisted = if overwrite { tmp.persist(path) } else { tmp.persist_noclobber(path) };
    persisted.map_err(|e| match e.error.kind() {
        std::io::ErrorKind::AlreadyExists => Error::OutputExists { path: path.to_path_buf() },
        _ => Error::io(path, e.error),
    })?;
    Ok(())
}

/// SHA-256 of a file's content, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
