//! `weft inspect`: look inside what weft stored, without a running server.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use weft_journal::dump::{header_line, records_text};
use weft_journal::format::{decode_header, HEADER_LEN};
use weft_journal::logfile::{scan_log, Tail};
use weft_journal::reader::{check_follows, list_journals, verify_object};

#[derive(Subcommand, Debug)]
pub enum InspectCommand {
    /// List the objects of every journal (sequence, epoch, ts range, records, bytes), dump
    /// their records, or verify them.
    Journal(JournalArgs),
    /// Print a segment file: metadata, columns, row groups, key and timestamp ranges,
    /// versions per key, tombstones (and, with --rows, every version).
    Segment(SegmentArgs),
    /// Print the newest manifest of a storage range: checkpoint, horizon, live segments; or
    /// verify every segment it lists.
    Manifest(ManifestArgs),
}

#[derive(Args, Debug)]
pub struct SegmentArgs {
    /// A segment file, or an object URL `s3://bucket/key` (configured by the AWS_*
    /// variables).
    pub target: String,
    /// Print every version (key, timestamp, op, columns).
    #[arg(long)]
    pub rows: bool,
}

#[derive(Args, Debug)]
pub struct ManifestArgs {
    /// The data directory `weft serve --data` uses, or its `--store` URL.
    pub target: String,
    /// The cluster id.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// The storage range.
    #[arg(long, default_value = "r0")]
    pub range: String,
    /// Read every listed segment whole, check its size and checksum against the manifest,
    /// decode it and check its order; exit with status 1 on any defect.
    #[arg(long)]
    pub verify: bool,
}

#[derive(Args, Debug)]
pub struct JournalArgs {
    /// The data directory `weft serve --data` uses, or its `--store` URL (`s3://bucket/prefix`,
    /// configured by the AWS_* variables).
    pub target: String,
    /// The cluster id.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Only this journal.
    #[arg(long)]
    pub journal: Option<u32>,
    /// Print every record (one line per written key).
    #[arg(long)]
    pub records: bool,
    /// Read every object whole and check every checksum, the record framing, and sequence,
    /// epoch and timestamp continuity; exit with status 1 on any defect.
    #[arg(long)]
    pub verify: bool,
}

pub fn run(cmd: InspectCommand, rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    match cmd {
        InspectCommand::Journal(args) => {
            let defects = rt.block_on(journal(&args))?;
            if defects > 0 {
                eprintln!("{defects} defect(s) found");
                std::process::exit(1);
            }
            Ok(())
        }
        InspectCommand::Segment(args) => rt.block_on(segment(&args)),
        InspectCommand::Manifest(args) => {
            let defects = rt.block_on(manifest(&args))?;
            if defects > 0 {
                eprintln!("{defects} defect(s) found");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn segment(args: &SegmentArgs) -> anyhow::Result<()> {
    let data = match args.target.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, key) = rest
                .split_once('/')
                .context("an object URL is s3://bucket/key")?;
            let store = weft::store::open_store_at(
                std::path::Path::new("."),
                Some(&format!("s3://{bucket}")),
            )?;
            store.get(&object_store::path::Path::from(key)).await?
        }
        None => bytes::Bytes::from(
            std::fs::read(&args.target).with_context(|| format!("reading {}", args.target))?,
        ),
    };
    print!(
        "{}",
        weft_engine::storage::inspect::segment_report(&args.target, data, args.rows)?
    );
    Ok(())
}

async fn manifest(args: &ManifestArgs) -> anyhow::Result<usize> {
    let store = if args.target.starts_with("s3://") {
        weft::store::open_store_at(std::path::Path::new("."), Some(&args.target))?
    } else {
        weft::store::open_store_at(&PathBuf::from(&args.target), None)?
    };
    let root =
        object_store::path::Path::from(format!("clusters/{}/storage/{}", args.cluster, args.range));
    let (m, path) = match weft_engine::storage::read_manifest(&store, &root).await {
        Ok(x) => x,
        Err(e) => {
            println!("DEFECT {e}");
            return Ok(1);
        }
    };
    let Some(path) = path else {
        println!("no manifest under {root}: nothing was flushed yet");
        return Ok(0);
    };
    print!(
        "{}",
        weft_engine::storage::inspect::manifest_report(path.as_ref(), &m)
    );
    let mut defects = 0;
    match weft_engine::ownership::list_owners(&store, &args.cluster).await {
        Ok(owners) => {
            let list: Vec<String> = owners
                .iter()
                .map(|(e, released)| format!("{e}{}", if *released { " (released)" } else { "" }))
                .collect();
            println!(
                "  owner epochs claimed: {}",
                if list.is_empty() {
                    "none".into()
                } else {
                    list.join(", ")
                }
            );
            if args.verify {
                defects += verify_owner_chain(&store, &root, &m, owners.last().map(|o| o.0)).await;
            }
        }
        Err(e) => {
            defects += 1;
            println!("DEFECT cannot list owner epochs: {e}");
        }
    }
    if args.verify {
        for meta in &m.segments {
            let seg_path = root.clone().join("segments").join(meta.path.as_str());
            let seg = weft_engine::storage::segment::Segment::new(meta.clone(), seg_path.clone());
            let outcome = async {
                let data = store.get(&seg_path).await?;
                seg.verify(&data)?;
                let decoded = weft_engine::storage::segment::decode(seg_path.as_ref(), data)?;
                if decoded.versions.len() as u64 != meta.versions {
                    return Err(weft_engine::EngineError::Corrupt {
                        path: seg_path.to_string(),
                        detail: format!(
                            "holds {} versions, the manifest says {}",
                            decoded.versions.len(),
                            meta.versions
                        ),
                    });
                }
                Ok(())
            }
            .await;
            match outcome {
                Ok(()) => println!("ok {}", meta.path),
                Err(e) => {
                    defects += 1;
                    println!("DEFECT {e}");
                }
            }
        }
    }
    Ok(defects)
}

/// Checks the owner chain of a storage range: every retained manifest version decodes and
/// follows its predecessor (contiguous versions, epochs that never fall, checkpoints and
/// horizons that never move back), and the newest was written at an epoch that was
/// claimed. Prints each version's epoch; returns the number of defects.
async fn verify_owner_chain(
    store: &weft_engine::objstore::DurableStore,
    root: &object_store::path::Path,
    newest: &weft_engine::storage::manifest::Manifest,
    newest_claimed: Option<u64>,
) -> usize {
    use weft_engine::storage::manifest::Manifest;
    let mut defects = 0;
    let listed = match store.list(&root.clone().join("manifest")).await {
        Ok(mut l) => {
            l.retain(|(p, _)| weft_engine::storage::is_manifest_name(p));
            l
        }
        Err(e) => {
            println!("DEFECT cannot list manifests: {e}");
            return 1;
        }
    };
    let mut prev: Option<Manifest> = None;
    let mut top_epoch = 0;
    for (path, _) in listed {
        let m = match store
            .get(&path)
            .await
            .map_err(|e| e.to_string())
            .and_then(|d| Manifest::decode(&d))
        {
            Ok(m) => m,
            Err(e) => {
                // Manifest GC may delete old versions while this runs.
                if store.get_opt(&path).await.ok().flatten().is_none() {
                    continue;
                }
                defects += 1;
                println!("DEFECT {path}: {e}");
                prev = None;
                continue;
            }
        };
        if m.epoch < top_epoch {
            // A fenced owner's write into a version that a newer owner's garbage
            // collection had freed: no reader takes it.
            println!(
                "  chain: version {} epoch {}: stray write of a fenced owner (ignored)",
                m.version, m.epoch
            );
            continue;
        }
        top_epoch = m.epoch;
        if let Some(p) = &prev {
            if m.version > p.version + 1 && m.epoch > p.epoch {
                // The version between was a stray, skipped above; check against the owner
                // chain as if it followed directly.
                let mut shifted = p.clone();
                shifted.version = m.version - 1;
                prev = Some(shifted);
            }
        }
        match &prev {
            Some(p) => match m.check_successor_of(p) {
                Ok(()) => println!(
                    "  chain: version {} epoch {} checkpoint {}",
                    m.version, m.epoch, m.checkpoint_ts
                ),
                Err(e) => {
                    defects += 1;
                    println!("DEFECT {path}: breaks the owner chain: {e}");
                }
            },
            None => println!(
                "  chain: version {} epoch {} checkpoint {}",
                m.version, m.epoch, m.checkpoint_ts
            ),
        }
        prev = Some(m);
    }
    if let Some(claimed) = newest_claimed {
        if newest.epoch > claimed {
            defects += 1;
            println!(
                "DEFECT the newest manifest was written at epoch {}, which no owner claimed (newest claim {claimed})",
                newest.epoch
            );
        }
    }
    defects
}

/// Whether `path` vanished as part of the journal's oldest objects (retention), rather than
/// leaving a hole: no object older than it is left.
async fn retained_away(
    store: &weft_engine::objstore::DurableStore,
    cluster: &str,
    journal: u32,
    path: &object_store::path::Path,
) -> bool {
    match store
        .list(&weft_journal::journal_prefix(cluster, journal))
        .await
    {
        Ok(now) => !now
            .iter()
            .any(|(p, _)| p.as_ref().ends_with(".wj") && p.as_ref() < path.as_ref()),
        Err(_) => false,
    }
}

/// Prints (and with `--verify` checks) one entry of a journal: its objects (one, or the
/// frames of a log file that count), then what follows them in a log file. Returns the
/// objects and records seen.
fn inspect_entry(
    entry: &weft_journal::reader::Entry,
    data: &[u8],
    j: u32,
    end_before: Option<u64>,
    prev: &mut Option<weft_journal::format::Header>,
    args: &JournalArgs,
    defects: &mut usize,
) -> (usize, u64) {
    let path = &entry.path;
    let scan = match scan_log(path.as_ref(), j, entry.first, data, end_before) {
        Ok(s) if !s.frames.is_empty() => s,
        other => {
            *defects += 1;
            let e = match other {
                Err(e) => e.to_string(),
                Ok(_) => match verify_object(path.as_ref(), j, data, None) {
                    Err(e) => e.to_string(),
                    Ok(_) => format!("{path}: no object in it"),
                },
            };
            println!("  DEFECT {e}");
            // Go on checking the rest against this entry's header, if it has one.
            *prev = decode_header(path.as_ref(), data).ok();
            return (1, 0);
        }
    };
    if scan.frames.len() > 1 || scan.end < data.len() {
        println!(
            "  {path}: log file, {} bytes, {} frames in {} bytes",
            entry.size,
            scan.frames.len(),
            scan.end
        );
    }
    let (mut seen, mut records) = (0usize, 0u64);
    for f in &scan.frames {
        seen += 1;
        let name = if f.offset == 0 {
            path.to_string()
        } else {
            format!("{path}@{}", f.offset)
        };
        if args.verify {
            if let Err(e) = check_follows(&name, &f.header, prev.as_ref()) {
                *defects += 1;
                println!("  DEFECT {e}");
            }
        }
        println!("  {}", header_line(&name, f.len as u64, &f.header));
        records += f.records.len() as u64;
        if args.records {
            print!("{}", records_text(&f.records));
        }
        *prev = Some(f.header.clone());
    }
    match scan.tail {
        Tail::Clean => {}
        Tail::Interrupted { offset, bytes } => println!(
            "  {path}: {bytes} bytes of an interrupted write at offset {offset} (not part of the journal)"
        ),
        Tail::Superseded { offset } => println!(
            "  {path}: frames from offset {offset} on were written after a newer writer claimed the journal (not part of it)"
        ),
    }
    (seen, records)
}

async fn journal(args: &JournalArgs) -> anyhow::Result<usize> {
    let store = if args.target.starts_with("s3://") {
        weft::store::open_store_at(&PathBuf::new(), Some(&args.target))?
    } else {
        let dir = PathBuf::from(&args.target);
        anyhow::ensure!(dir.is_dir(), "{} is not a directory", dir.display());
        weft::store::open_store_at(&dir, None)?
    };
    let cluster = &args.cluster;
    let mut ids = list_journals(&store, cluster).await?;
    if let Some(j) = args.journal {
        ids.retain(|&i| i == j);
    }
    if ids.is_empty() {
        println!("no journals under {} (cluster {cluster})", store.url);
        return Ok(0);
    }
    let whole = args.records || args.verify;
    let (mut defects, mut objects_seen, mut records_seen) = (0usize, 0usize, 0u64);
    for j in ids {
        println!("journal {j}");
        let listed = store
            .list(&weft_journal::journal_prefix(cluster, j))
            .await
            .with_context(|| format!("listing journal {j}"))?;
        let entries = weft_journal::reader::entries_of(listed);
        let mut prev = None;
        for (i, entry) in entries.iter().enumerate() {
            let path = entry.path.clone();
            // Log files exist only on local disk, where reading whole entries is cheap.
            let data = if whole || store.is_local() {
                store.get(&path).await
            } else {
                store.get_prefix(&path, HEADER_LEN as u64).await
            };
            let data = match data {
                Ok(d) => d,
                Err(weft_engine::EngineError::Store {
                    source: object_store::Error::NotFound { .. },
                    ..
                }) if retained_away(&store, cluster, j, &path).await => {
                    // On a live cluster retention deletes the oldest objects while they are
                    // being inspected: not a defect, as long as nothing older remains.
                    println!("  {path}: deleted by retention while inspecting");
                    prev = None;
                    continue;
                }
                Err(e) => {
                    objects_seen += 1;
                    defects += 1;
                    println!("  DEFECT {path}: cannot read: {e}");
                    continue;
                }
            };
            if !whole && !store.is_local() {
                objects_seen += 1;
                match decode_header(path.as_ref(), &data) {
                    Ok(h) => println!("  {}", header_line(path.as_ref(), entry.size, &h)),
                    Err(e) => {
                        defects += 1;
                        println!("  DEFECT {e}");
                    }
                }
                continue;
            }
            let end_before = entries.get(i + 1).map(|e| e.first);
            let (seen, recs) =
                inspect_entry(entry, &data, j, end_before, &mut prev, args, &mut defects);
            objects_seen += seen;
            records_seen += recs;
        }
    }
    if args.verify && defects == 0 {
        println!("verified: {objects_seen} objects, {records_seen} records, no defects");
    }
    Ok(defects)
}
