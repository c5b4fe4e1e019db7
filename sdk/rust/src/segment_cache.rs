//! Mappings of pooled segments, kept by segment id (docs/plugins.md, "Mapping cache"). The
//! worker's registry reuses a released segment's file for a later object under a new name but
//! the same id; a plugin that kept its mapping reads the next object with no system call at
//! all, where mapping afresh costs an open, a stat, an mmap, page faults and an munmap (tens of
//! microseconds each on a virtual machine). A file's id is never given to another file, so a
//! cached mapping is always of the file the handle means. The cache holds at most
//! `CACHE_SLOTS` mappings, and a mapping whose file the registry removed is let go within
//! `SWEEP_EVERY` (its memory is freed once the last array reading it is dropped).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use memmap2::{Mmap, MmapOptions};

use crate::shm::segment_path;

/// Matches the registry's pool (runtime/registry/mod.ts `POOL_SLOTS`).
pub(crate) const CACHE_SLOTS: usize = 16;
const SWEEP_EVERY: Duration = Duration::from_secs(1);

struct Cached {
    /// Kept open: its link count says when the registry removed the file.
    file: File,
    map: Arc<Mmap>,
    last_use: u64,
}

#[derive(Default)]
pub(crate) struct Cache {
    by_id: HashMap<String, Cached>,
    clock: u64,
}

static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();

fn cache() -> &'static Mutex<Cache> {
    CACHE.get_or_init(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(SWEEP_EVERY);
            sweep();
        });
        Mutex::new(Cache::default())
    })
}

/// Maps a whole segment file read-only.
pub(crate) fn map_file(segment: &str) -> Result<(File, Mmap), String> {
    let file =
        File::open(segment_path(segment)).map_err(|e| format!("cannot open `{segment}`: {e}"))?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    if size == 0 {
        return Err(format!("segment `{segment}` is empty"));
    }
    // SAFETY: the registry never writes to or truncates a segment while an object in it is
    // leased, and writes a pooled file's next object only after every reader released this one.
    let map = unsafe { MmapOptions::new().len(size as usize).map(&file) }
        .map_err(|e| format!("cannot map `{segment}`: {e}"))?;
    Ok((file, map))
}

/// The mapping of the file with this id, mapping `segment` on a miss.
pub(crate) fn mapping(segment: &str, id: &str) -> Result<Arc<Mmap>, String> {
    let mut c = cache().lock().unwrap_or_else(|p| p.into_inner());
    c.clock += 1;
    let now = c.clock;
    if let Some(entry) = c.by_id.get_mut(id) {
        entry.last_use = now;
        return Ok(entry.map.clone());
    }
    let (file, map) = map_file(segment)?;
    let map = Arc::new(map);
    c.by_id.insert(
        id.to_string(),
        Cached {
            file,
            map: map.clone(),
            last_use: now,
        },
    );
    // Evicting a mapping still in use is safe: its arrays hold it until they are dropped.
    while c.by_id.len() > CACHE_SLOTS {
        let oldest = c
            .by_id
            .iter()
            .min_by_key(|(_, e)| e.last_use)
            .map(|(id, _)| id.clone());
        match oldest {
            Some(id) => c.by_id.remove(&id),
            None => break,
        };
    }
    Ok(map)
}

/// Lets go of mappings whose files the registry has removed.
pub(crate) fn sweep() {
    let mut c = cache().lock().unwrap_or_else(|p| p.into_inner());
    c.by_id
        .retain(|_, e| e.file.metadata().map(|m| m.nlink() > 0).unwrap_or(false));
}

#[cfg(test)]
pub(crate) fn cached_ids() -> Vec<String> {
    let c = cache().lock().unwrap_or_else(|p| p.into_inner());
    c.by_id.keys().cloned().collect()
}
