//! Small files written so that a crash leaves the old file or the new one,
//! never a mix (the data directory's identity, the peers added at run time).

use std::io::Write as _;
use std::path::Path;

/// Writes `text` to `path` atomically and durably: a temporary file beside
/// it, synced, renamed over `path`, then the directory synced so the
/// rename itself survives a power loss.
pub(crate) fn write_file_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("toml.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
