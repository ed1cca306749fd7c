//! One accounting for a batch run in shards: every shard's summary under the output folder
//! (`faceveil-summary-shard-K-of-N.json`, or the unsharded `faceveil-summary.json`) read together, and the
//! input tree scanned again, so that a records officer sees in one place whether every file was done exactly
//! once, which failed, which no shard claimed, which two shards claimed, and which shards never reported.

use crate::batch::{scan, EntryKind, Shard, Status, Summary};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the merged accounting written into the output folder (`.json` and `.csv`).
pub const ACCOUNTING_STEM: &str = "faceveil-accounting";

/// Where one input file stands across all shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileState {
    /// Redacted (in the run that reported it, or up to date from before).
    Done,
    /// Failed in the shard that reported it: no output.
    Failed,
    /// Not media (left alone).
    Skipped,
    /// A media file no shard finished: its shard never ran, or was stopped before or while doing it.
    NotDone,
    /// Listed by more than one shard: the shards disagree about who owns it (different shard counts, or an
    /// input tree that changed between them).
    ClaimedTwice,
}

/// One input file in the accounting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountedFile {
    /// Path relative to the input folder.
    pub input: PathBuf,
    pub state: FileState,
    /// The shard whose summary lists it (several for [`FileState::ClaimedTwice`]); `None` for an unsharded run.
    pub reported_by: Vec<Option<u32>>,
    /// The shard that owns it by the split (when the shard count is known).
    pub owner: Option<u32>,
    pub output: Option<PathBuf>,
    pub message: Option<String>,
}

/// A shard as the accounting saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardState {
    pub index: u32,
    /// Its summary exists.
    pub reported: bool,
    /// Its summary says the run was interrupted.
    pub interrupted: bool,
    pub done: usize,
    pub failed: usize,
}

/// The merged accounting of a (sharded) batch run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Accounting {
    pub input_dir: PathBuf,
    pub output_dir: PathBuf,
    /// Shards the run was split into, when known (from the summaries or the caller).
    pub shard_count: Option<u32>,
    pub shards: Vec<ShardState>,
    /// Shards that never wrote a summary.
    pub shards_missing: Vec<u32>,
    pub done: usize,
    pub failed: usize,
    pub skipped: usize,
    pub not_done: usize,
    pub claimed_twice: usize,
    /// The input folder could not be read again: files no shard listed cannot be found.
    pub input_unreadable: Option<String>,
    pub files: Vec<AccountedFile>,
}

impl Accounting {
    /// True when every media file was done exactly once and every shard reported.
    pub fn complete(&self) -> bool {
        self.failed == 0
            && self.not_done == 0
            && self.claimed_twice == 0
            && self.shards_missing.is_empty()
            && self.input_unreadable.is_none()
            && self.shards.iter().all(|s| !s.interrupted)
    }

    /// Writes the accounting as JSON and CSV into the output folder (atomically); returns the JSON's path.
    pub fn write(&self) -> Result<PathBuf> {
        let json = self.output_dir.join(format!("{ACCOUNTING_STEM}.json"));
        crate::io::write_json_atomic(&json, self)?;
        crate::io::write_atomic(&self.output_dir.join(format!("{ACCOUNTING_STEM}.csv")), self.to_csv().as_bytes())?;
        Ok(json)
    }

    /// One row per input file.
    pub fn to_csv(&self) -> String {
        let q = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
        let mut s = String::from("input,state,reported_by,owner,output,message\n");
        for f in &self.files {
            let state =
                serde_json::to_value(f.state).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
            let by: Vec<String> = f.reported_by.iter().map(|r| r.map_or("all".into(), |k| k.to_string())).collect();
            s.push_str(&format!(
                "{},{},{},{},{},{}\n",
                q(&f.input.to_string_lossy()),
                state,
                q(&by.join(" ")),
                f.owner.map(|k| k.to_string()).unwrap_or_default(),
                q(&f.output.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()),
                q(f.message.as_deref().unwrap_or(""))
            ));
        }
        s
    }
}

/// Reads every batch summary in `output_dir`, scans their input folder again, and accounts for every file.
/// `shard_count` is the number of shards the run was split into, where the summaries cannot tell (a shard
/// count no summary names, or no summary at all of some shards).
pub fn account(output_dir: &Path, shard_count: Option<u32>) -> Result<Accounting> {
    let mut summaries: Vec<Summary> = Vec::new();
    let entries = std::fs::read_dir(output_dir).map_err(|e| Error::io(output_dir, e))?;
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("faceveil-summary") && n.ends_with(".json"))
        })
        .collect();
    names.sort();
    for path in &names {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let summary: Summary = serde_json::from_slice(&bytes)
            .map_err(|e| Error::bad_input(path, format!("not a faceveil batch summary: {e}")))?;
        summaries.push(summary);
    }
    if summaries.is_empty() && shard_count.is_none() {
        return Err(Error::bad_input(output_dir, "holds no faceveil batch summary (faceveil-summary*.json)"));
    }
    let counts: Vec<u32> = summaries.iter().filter_map(|s| s.shard.map(|sh| sh.count)).collect();
    let count = shard_count.or_else(|| counts.iter().max().copied());
    let mut distinct: Vec<u32> = counts.iter().copied().chain(shard_count).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() > 1 {
        let split: Vec<String> = distinct.iter().map(|n| format!("into {n}")).collect();
        return Err(Error::Config(format!(
            "the summaries in {} come from runs split {} shards: account for one run at a time (move the other's \
             faceveil-summary-shard-*.json away)",
            output_dir.display(),
            split.join(" and ")
        )));
    }
    let input_dir = summaries.first().map(|s| s.input_dir.clone()).unwrap_or_default();
    if let Some(other) = summaries.iter().find(|s| s.input_dir != input_dir) {
        return Err(Error::Config(format!(
            "the summaries in {} come from two input folders, {} and {}",
            output_dir.display(),
            input_dir.display(),
            other.input_dir.display()
        )));
    }

    // Every file the summaries list, with who listed it.
    let mut listed: BTreeMap<PathBuf, Vec<(Option<u32>, &crate::batch::FileResult)>> = BTreeMap::new();
    for s in &summaries {
        for f in &s.files {
            listed.entry(f.input.clone()).or_default().push((s.shard.map(|sh| sh.index), f));
        }
    }
    // Every file the input tree holds now (media and not), to find those no shard listed.
    let (tree, input_unreadable) = if input_dir.as_os_str().is_empty() {
        (Vec::new(), Some("no summary names the input folder".to_string()))
    } else {
        match scan(&input_dir) {
            Ok(t) => (t, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        }
    };
    let owner = |rel: &Path| count.and_then(|n| Shard::owner_of(rel, n));
    let mut files = Vec::new();
    for (rel, claims) in &listed {
        let first = claims[0].1;
        let state = if claims.len() > 1 {
            FileState::ClaimedTwice
        } else {
            match first.status {
                Status::Done | Status::UpToDate => FileState::Done,
                Status::Failed => FileState::Failed,
                Status::Skipped => FileState::Skipped,
                Status::Interrupted => FileState::NotDone,
            }
        };
        files.push(AccountedFile {
            input: rel.clone(),
            state,
            reported_by: claims.iter().map(|(k, _)| *k).collect(),
            owner: owner(rel),
            output: first.output.clone(),
            message: first.message.clone(),
        });
    }
    for e in &tree {
        if listed.contains_key(&e.rel) {
            continue;
        }
        let media = matches!(e.kind, EntryKind::Image | EntryKind::Video | EntryKind::Broken(_));
        let owner = owner(&e.rel);
        files.push(AccountedFile {
            input: e.rel.clone(),
            state: if media { FileState::NotDone } else { FileState::Skipped },
            reported_by: Vec::new(),
            owner,
            output: None,
            message: Some(match (media, owner) {
                (false, _) => "not media; no shard listed it".into(),
                (true, Some(k)) => format!("no shard listed it; shard {k} owns it"),
                (true, None) => "no summary lists it".into(),
            }),
        });
    }
    files.sort_by(|a, b| a.input.cmp(&b.input));

    let shards: Vec<ShardState> = match count {
        Some(n) => (0..n)
            .map(|k| {
                let s = summaries.iter().find(|s| s.shard.is_some_and(|sh| sh.index == k));
                ShardState {
                    index: k,
                    reported: s.is_some(),
                    interrupted: s.is_some_and(|s| s.interrupted),
                    done: s.map_or(0, |s| s.done + s.up_to_date),
                    failed: s.map_or(0, |s| s.failed),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    // An unsharded summary covers every shard.
    let unsharded = summaries.iter().any(|s| s.shard.is_none());
    let shards_missing =
        if unsharded { Vec::new() } else { shards.iter().filter(|s| !s.reported).map(|s| s.index).collect() };
    let count_of = |st: FileState| files.iter().filter(|f| f.state == st).count();
    Ok(Accounting {
        input_dir,
        output_dir: output_dir.to_path_buf(),
        shard_count: count,
        done: count_of(FileState::Done),
        failed: count_of(FileState::Failed),
        skipped: count_of(FileState::Skipped),
        not_done: count_of(FileState::NotDone),
        claimed_twice: count_of(FileState::ClaimedTwice),
        shards,
        shards_missing,
        input_unreadable,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::FileResult;

    fn result(input: &str, status: Status) -> FileResult {
        FileResult {
            input: input.into(),
            output: (status != Status::Skipped).then(|| PathBuf::from(input)),
            status,
            message: None,
            frames: 1,
            frames_with_faces: 0,
            detections: 0,
            input_damaged: false,
            redone: None,
            seconds: 0.1,
        }
    }

    fn summary(input_dir: &Path, output_dir: &Path, shard: Option<Shard>, files: Vec<FileResult>) -> Summary {
        let count = |st: Status| files.iter().filter(|f| f.status == st).count();
        Summary {
            tool_version: "test".into(),
            input_dir: input_dir.to_path_buf(),
            output_dir: output_dir.to_path_buf(),
            shard,
            done: count(Status::Done),
            up_to_date: count(Status::UpToDate),
            failed: count(Status::Failed),
            skipped: count(Status::Skipped),
            damaged: 0,
            interrupted: false,
            seconds: 1.0,
            files,
        }
    }

    /// An input tree of five photos and a text file, and an output folder.
    fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::create_dir_all(input.join("cam")).unwrap();
        std::fs::create_dir_all(&output).unwrap();
        for i in 0..5 {
            image::RgbImage::new(8, 8).save(input.join(format!("cam/p{i}.png"))).unwrap();
        }
        std::fs::write(input.join("notes.txt"), "x").unwrap();
        (dir, input, output)
    }

    fn owner(rel: &str, n: u32) -> u32 {
        Shard::owner_of(Path::new(rel), n).unwrap()
    }

    #[test]
    fn every_file_once_across_shards_is_complete_issue_36() {
        let (_d, input, output) = tree();
        let all = ["cam/p0.png", "cam/p1.png", "cam/p2.png", "cam/p3.png", "cam/p4.png", "notes.txt"];
        for k in 0..3 {
            let files = all
                .iter()
                .filter(|f| owner(f, 3) == k)
                .map(|f| result(f, if f.ends_with(".txt") { Status::Skipped } else { Status::Done }))
                .collect();
            let s = summary(&input, &output, Some(Shard { index: k, count: 3 }), files);
            s.write().unwrap();
        }
        let a = account(&output, None).unwrap();
        assert!(a.complete(), "{a:#?}");
        assert_eq!((a.done, a.skipped, a.files.len(), a.shard_count), (5, 1, 6, Some(3)));
        assert!(a.files.iter().all(|f| f.reported_by.len() == 1));
        let json = a.write().unwrap();
        assert!(json.ends_with("faceveil-accounting.json"));
        assert!(a.to_csv().lines().count() == 7);
    }

    #[test]
    fn missing_shards_unclaimed_failed_and_twice_claimed_files_are_named_issue_36() {
        let (_d, input, output) = tree();
        let n = 3;
        let all = ["cam/p0.png", "cam/p1.png", "cam/p2.png", "cam/p3.png", "cam/p4.png"];
        // Shard 0 reports its files, one failed, and also claims a file of another shard; shard 1 reports;
        // shard 2 never ran.
        let of = |k: u32| all.iter().filter(move |f| owner(f, n) == k).copied();
        let stray = all.iter().find(|f| owner(f, n) != 0 && owner(f, n) != 2).copied();
        let mut files0: Vec<FileResult> = of(0).map(|f| result(f, Status::Done)).collect();
        let failed = files0.first().map(|f| f.input.clone());
        if let Some(f) = files0.first_mut() {
            f.status = Status::Failed;
        }
        files0.extend(stray.map(|f| result(f, Status::Done)));
        summary(&input, &output, Some(Shard { index: 0, count: n }), files0).write().unwrap();
        summary(&input, &output, Some(Shard { index: 1, count: n }), of(1).map(|f| result(f, Status::Done)).collect())
            .write()
            .unwrap();
        let a = account(&output, None).unwrap();
        assert!(!a.complete());
        assert_eq!(a.shards_missing, vec![2]);
        let state = |f: &str| a.files.iter().find(|x| x.input == Path::new(f)).map(|x| x.state);
        for f in of(2) {
            assert_eq!(state(f), Some(FileState::NotDone), "{f}");
            let entry = a.files.iter().find(|x| x.input == Path::new(f)).unwrap();
            assert_eq!(entry.owner, Some(2));
        }
        if let Some(f) = failed {
            assert_eq!(state(f.to_str().unwrap()), Some(FileState::Failed));
        }
        if let Some(f) = stray {
            assert_eq!(state(f), Some(FileState::ClaimedTwice));
            assert_eq!(a.claimed_twice, 1);
        }
        assert_eq!(state("notes.txt"), Some(FileState::Skipped));
        // Runs of different shard counts are not mixed.
        summary(&input, &output, Some(Shard { index: 0, count: 5 }), Vec::new()).write().unwrap();
        assert!(account(&output, None).unwrap_err().to_string().contains("into 3 and into 5 shards"));
    }

    #[test]
    fn an_output_folder_without_summaries_is_an_error_naming_it_issue_36() {
        let dir = tempfile::tempdir().unwrap();
        let e = account(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("no faceveil batch summary"), "{e}");
    }
}
