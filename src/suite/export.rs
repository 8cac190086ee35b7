//! Exporters: where records go. One trait; the CSV exporter appends and flushes each row as
//! it is measured, so a crash loses at most the row in progress, and tells the runner which
//! variants an earlier run already wrote.

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
}

/// What an existing CSV already holds.
#[derive(Debug, Default)]
pub struct Existing {
    /// `(suite, variant)` of every row with status `ok`.
    pub ok: HashSet<(String, String)>,
    /// `(suite, variant)` of every row with status `error`.
    pub errors: HashSet<(String, String)>,
}

impl CsvExporter {
    /// Opens `path` for appending (creating it, and its folder, with the header if missing or
    /// empty). With `fresh`, an existing file is first moved to `PATH.old`. A partial last
    /// line (a crash mid-write) is cut off. Returns the rows already there.
    pub fn open(path: &Path, fresh: bool) -> Result<(CsvExporter, Existing)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        if fresh && path.exists() {
            let old = PathBuf::from(format!("{}.old", path.display()));
            std::fs::rename(path, &old).map_err(|e| Error::io(&old, e))?;
        }
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(|e| Error::io(path, e))?;
        let existing = if text.trim().is_empty() {
            if !text.is_empty() {
                file.set_len(0).map_err(|e| Error::io(path, e))?;
            }
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(header()).expect("in memory");
            file.write_all(&w.into_inner().expect("in memory")).and_then(|_| file.flush()).map_err(|e| Error::io(path, e))?;
            Existing::default()
        } else {
            if !text.ends_with('\n') {
                let keep = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
                file.set_len(keep as u64).map_err(|e| Error::io(path, e))?;
                file.seek(SeekFrom::End(0)).map_err(|e| Error::io(path, e))?;
                text.truncate(keep);
            }
            read_existing(path, &text)?
        };
        Ok((CsvExporter { path: path.to_path_buf(), file }, existing))
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
        // One write of the whole line, then flush to the OS.
        self.file.write_all(&bytes).and_then(|_| self.file.flush()).map_err(|e| Error::io(&self.path, e))
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
    fn refuses_a_foreign_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        let e = CsvExporter::open(&p, false).err().unwrap().to_string();
        assert!(e.contains("--force"), "{e}");
    }
}
