//! Exporters: where records go. One trait; the CSV exporter appends each row as it is
//! measured and flushes it to disk, so a crash loses at most the row in progress, and tells
//! the runner which variants an earlier run already wrote. While it is open it holds an
//! exclusive lock on `PATH.lock`, so two runs never interleave rows in one file.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::record::{header, Record, Status};
use crate::error::{Error, Result};

/// Receives every record as soon as it exists.
pub trait Exporter {
    /// Writes one record durably (as far as the format allows) before returning.
    fn write(&mut self, record: &Record) -> Result<()>;
    /// Called once after the last record.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Appends rows to a CSV file with the [`Record`] header.
pub struct CsvExporter {
    path: PathBuf,
    file: File,
    /// Rows in the file (the header not counted).
    rows: usize,
    /// Held until the exporter is dropped.
    _lock: OutputLock,
}

/// What an existing CSV already holds.
#[derive(Debug, Default)]
pub struct Existing {
    /// `(suite, variant)` of every row with status `ok`.
    pub ok: HashSet<(String, String)>,
    /// `(suite, variant)` of every row with status `error`.
    pub errors: HashSet<(String, String)>,
    /// The `suite_sha256` of every `ok` row, by `(suite, variant)`.
    pub ok_sha256: std::collections::HashMap<(String, String), String>,
    /// Rows in the file.
    pub rows: usize,
    /// Bytes of a partial last row (a crash mid-write) that were cut off; 0 when none.
    pub cut: usize,
}

impl CsvExporter {
    /// Opens `path` for appending (creating it, and its folder, with the header if missing or
    /// empty), after taking the lock `PATH.lock` ([`OutputLock`]). With `fresh`, an existing
    /// file is first moved to `PATH.old`. A partial last row (a crash mid-write) is cut off.
    /// Returns the rows already there.
    ///
    /// Errors: [`Error::Busy`] when another run holds the lock; [`Error::Write`] naming the
    /// path when the folder or file cannot be written; [`Error::File`] when the file is not a
    /// regular file or its header is not this version's.
    pub fn open(path: &Path, fresh: bool) -> Result<(CsvExporter, Existing)> {
        crate::util::create_parent(path, "nothing was written")?;
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(Error::file(path, "is not a regular file; give the CSV a file path with --out"));
        }
        let lock = OutputLock::acquire(path)?;
        if fresh && path.exists() {
            let old = PathBuf::from(format!("{}.old", path.display()));
            std::fs::rename(path, &old).map_err(|e| Error::write(&old, e, format!("{} is unchanged", path.display())))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::write(path, e, "nothing was written"))?;
        if !file.metadata().map_err(|e| Error::io(path, e))?.is_file() {
            return Err(Error::file(path, "is not a regular file; give the CSV a file path with --out"));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
        let keep = complete_len(&bytes);
        let cut = bytes.len() - keep;
        if cut > 0 {
            file.set_len(keep as u64)
                .and_then(|_| file.sync_all())
                .map_err(|e| Error::write(path, e, "the complete rows are kept, the partial last one is not cut off yet"))?;
            file.seek(SeekFrom::End(0)).map_err(|e| Error::io(path, e))?;
            bytes.truncate(keep);
        }
        let text = String::from_utf8(bytes).map_err(|_| Error::file(path, "is not UTF-8 text; is it a CSV file?"))?;
        let mut out = CsvExporter { path: path.to_path_buf(), file, rows: 0, _lock: lock };
        let existing = if text.trim().is_empty() {
            if !text.is_empty() {
                out.file.set_len(0).map_err(|e| Error::write(path, e, "nothing was written"))?;
            }
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(header()).expect("in memory");
            out.append(&w.into_inner().expect("in memory"), "nothing was written")?;
            Existing::default()
        } else {
            read_existing(path, &text)?
        };
        out.rows = existing.rows;
        Ok((out, Existing { cut, ..existing }))
    }

    /// Appends `bytes` in one write and flushes them to disk; on an error the file is cut back
    /// to its length before, and the error names the path and ends with `kept`.
    fn append(&mut self, bytes: &[u8], kept: &str) -> Result<()> {
        let before = self.file.metadata().map(|m| m.len()).ok();
        let r = self.file.write_all(bytes).and_then(|_| self.file.sync_data());
        r.map_err(|e| {
            if let Some(len) = before {
                let _ = self.file.set_len(len);
            }
            Error::write(&self.path, e, kept)
        })
    }
}

/// The length of the complete rows at the start of `bytes`: up to the last line end that is
/// not inside a quoted field (an error message may hold line breaks). The rest is a row cut
/// short by a crash.
fn complete_len(bytes: &[u8]) -> usize {
    let mut quoted = false;
    let mut end = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => end = i + 1,
            _ => {}
        }
    }
    end
}

/// An advisory exclusive lock (`flock`) on `PATH.lock` beside an output file, held while the
/// value lives. The file holds `pid N, started T` of the holder, for the message another run
/// gets. The kernel drops the lock when the holder exits, however it dies, so a killed run
/// never blocks the next one; the `.lock` file itself stays (it is empty of meaning without
/// the lock, and removing it would race with a run that just opened it).
pub struct OutputLock {
    file: File,
}

impl OutputLock {
    /// Takes the lock for `output` at once, or fails with [`Error::Busy`] naming `output` and
    /// the holder, or [`Error::Write`] when the lock file cannot be created.
    pub fn acquire(output: &Path) -> Result<OutputLock> {
        use std::os::fd::AsRawFd;
        let path = PathBuf::from(format!("{}.lock", output.display()));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::write(&path, e, "nothing was written"))?;
        // SAFETY: flock on a descriptor this function owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::WouldBlock {
                return Err(Error::io(&path, e));
            }
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() { "starting now" } else { holder };
            return Err(Error::Busy { path: output.to_path_buf(), holder: holder.to_string() });
        }
        let me = format!("pid {}, started {}\n", std::process::id(), super::host::timestamp());
        file.set_len(0)
            .and_then(|_| file.write_all(me.as_bytes()))
            .map_err(|e| Error::write(&path, e, "nothing was written"))?;
        Ok(OutputLock { file })
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Closing the file releases the lock; empty it first so a stale holder is not shown.
        let _ = self.file.set_len(0);
    }
}

/// Parses the rows of an existing file; its header must be the current one.
fn read_existing(path: &Path, text: &str) -> Result<Existing> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let have: Vec<String> = r.headers().map_err(|e| Error::file(path, e.to_string()))?.iter().map(str::to_string).collect();
    if have != header() {
        return Err(Error::file(
            path,
            "its columns differ from this prunebench's result columns (written by another version?); \
             write elsewhere with --out, or re-measure everything with --force (the old file is kept as .old)",
        ));
    }
    let mut out = Existing::default();
    for (i, row) in r.deserialize::<Record>().enumerate() {
        let row = row.map_err(|e| Error::file(path, format!("row {}: {e}", i + 1)))?;
        let key = (row.suite, row.variant);
        out.rows += 1;
        if row.status == Status::Ok {
            out.ok_sha256.insert(key.clone(), row.suite_sha256.clone());
        }
        match row.status {
            Status::Ok => out.ok.insert(key),
            Status::Error => out.errors.insert(key),
        };
    }
    Ok(out)
}

impl Exporter for CsvExporter {
    fn write(&mut self, record: &Record) -> Result<()> {
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        w.serialize(record).map_err(|e| Error::file(&self.path, e.to_string()))?;
        let bytes = w.into_inner().map_err(|e| Error::file(&self.path, e.to_string()))?;
        let kept = match self.rows {
            0 => "no row was written before".to_string(),
            1 => "the 1 row already written is kept".to_string(),
            n => format!("the {n} rows already written are kept"),
        };
        self.append(&bytes, &kept)?;
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::io(&self.path, e))
    }
}

/// Keeps records in memory (tests, and callers that export elsewhere).
#[derive(Default)]
pub struct Memory(pub Vec<Record>);

impl Exporter for Memory {
    fn write(&mut self, record: &Record) -> Result<()> {
        self.0.push(record.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(variant: &str, status: Status) -> Record {
        Record { suite: "s".into(), variant: variant.into(), status, ..Record::default() }
    }

    #[test]
    fn appends_resumes_and_cuts_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/r.csv");
        let (mut e, ex) = CsvExporter::open(&p, false).unwrap();
        assert!(ex.ok.is_empty());
        e.write(&rec("a", Status::Ok)).unwrap();
        e.write(&rec("b", Status::Error)).unwrap();
        drop(e);
        // A crash mid-row leaves a partial line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"s,c,l1,unif").unwrap();
        drop(f);
        let (mut e, ex) = CsvExporter::open(&p, false).unwrap();
        assert!(ex.ok.contains(&("s".into(), "a".into())) && ex.errors.contains(&("s".into(), "b".into())));
        assert_eq!(ex.ok.len() + ex.errors.len(), 2);
        e.write(&rec("c", Status::Ok)).unwrap();
        drop(e);
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        let (_, ex) = CsvExporter::open(&p, true).unwrap();
        assert!(ex.ok.is_empty());
        assert!(dir.path().join("sub/r.csv.old").exists());
    }

    #[test]
    fn cuts_rows_torn_inside_quotes_and_a_torn_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        let (mut e, _) = CsvExporter::open(&p, false).unwrap();
        let mut bad = rec("a", Status::Error);
        bad.error = Some("compile failed:\nline two, \"quoted\"".into());
        e.write(&bad).unwrap();
        drop(e);
        let whole = std::fs::read(&p).unwrap();
        assert_eq!(complete_len(&whole), whole.len());
        // Torn right after the line break inside the quoted message: the row is cut.
        let needle = b"compile failed:\n";
        let cut_at = whole.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len();
        let header_len = whole.iter().position(|&b| b == b'\n').unwrap() + 1;
        assert_eq!(complete_len(&whole[..cut_at]), header_len);
        std::fs::write(&p, &whole[..cut_at]).unwrap();
        let (_, ex) = CsvExporter::open(&p, false).unwrap();
        assert_eq!((ex.rows, ex.cut), (0, cut_at - header_len));
        assert_eq!(std::fs::read(&p).unwrap(), &whole[..header_len]);
        // A header cut short (killed while creating the file): the header is written anew.
        std::fs::write(&p, &whole[..10]).unwrap();
        let (mut e, ex) = CsvExporter::open(&p, false).unwrap();
        assert_eq!((ex.rows, ex.cut), (0, 10));
        e.write(&rec("b", Status::Ok)).unwrap();
        drop(e);
        let (_, ex) = CsvExporter::open(&p, false).unwrap();
        assert_eq!((ex.rows, ex.ok.len()), (1, 1));
    }

    #[test]
    fn a_second_writer_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        let (mut first, _) = CsvExporter::open(&p, false).unwrap();
        first.write(&rec("a", Status::Ok)).unwrap();
        // A second open of the same file (its own descriptor, as another process has).
        let e = CsvExporter::open(&p, false).err().unwrap();
        let msg = e.to_string();
        let want = format!("{} is being written by another prunebench run (pid {}, started ", p.display(), std::process::id());
        assert!(msg.starts_with(&want) && msg.ends_with("); wait for it or use --out OTHER"), "{msg}");
        assert!(matches!(e, Error::Busy { .. }));
        // --force must not move the file away under the first writer either.
        assert!(CsvExporter::open(&p, true).is_err());
        assert!(!dir.path().join("r.csv.old").exists());
        drop(first);
        let (_, ex) = CsvExporter::open(&p, false).unwrap();
        assert_eq!(ex.rows, 1);
    }

    #[test]
    fn a_full_disk_keeps_the_rows_already_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        let lock = OutputLock::acquire(&p).unwrap();
        // Appending to /dev/full fails with ENOSPC, as a full disk does.
        let file = OpenOptions::new().append(true).open("/dev/full").unwrap();
        let mut e = CsvExporter { path: p.clone(), file, rows: 12, _lock: lock };
        let msg = e.write(&rec("a", Status::Ok)).unwrap_err().to_string();
        assert_eq!(msg, format!("{}: No space left on device (os error 28); the 12 rows already written are kept", p.display()));
        assert_eq!(e.rows, 12);
        // A CSV path under a file, and on a read-only file system (root ignores folder modes).
        std::fs::write(dir.path().join("f"), "x").unwrap();
        let bad = dir.path().join("f/r.csv");
        let msg = CsvExporter::open(&bad, false).err().unwrap().to_string();
        assert!(msg.starts_with(&format!("{}: is a file, not a folder", dir.path().join("f").display())) && msg.ends_with("nothing was written"), "{msg}");
        let msg = CsvExporter::open(Path::new("/proc/prunebench-test.csv"), false).err().unwrap().to_string();
        assert!(msg.starts_with("/proc/prunebench-test.csv.lock: ") && msg.ends_with("nothing was written"), "{msg}");
        // A device is refused, never read to its end.
        let msg = CsvExporter::open(Path::new("/dev/zero"), false).err().unwrap().to_string();
        assert!(msg.contains("/dev/zero") && msg.contains("not a regular file"), "{msg}");
    }

    #[test]
    fn refuses_a_foreign_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        let e = CsvExporter::open(&p, false).err().unwrap().to_string();
        assert!(e.contains("--force"), "{e}");
    }
}
