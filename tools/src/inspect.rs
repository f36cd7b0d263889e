//! `weft inspect`: look inside what weft stored, without a running server.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use weft_journal::dump::{header_line, records_text};
use weft_journal::format::{decode_header, HEADER_LEN};
use weft_journal::reader::{list_journals, verify_object};

#[derive(Subcommand, Debug)]
pub enum InspectCommand {
    /// List the objects of every journal (sequence, epoch, ts range, records, bytes), dump
    /// their records, or verify them.
    Journal(JournalArgs),
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
    }
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

async fn journal(args: &JournalArgs) -> anyhow::Result<usize> {
    let store = if args.target.starts_with("s3://") {
        crate::serve::open_store_at(&PathBuf::new(), Some(&args.target))?
    } else {
        let dir = PathBuf::from(&args.target);
        anyhow::ensure!(dir.is_dir(), "{} is not a directory", dir.display());
        crate::serve::open_store_at(&dir, None)?
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
        let mut listed = store
            .list(&weft_journal::journal_prefix(cluster, j))
            .await
            .with_context(|| format!("listing journal {j}"))?;
        listed.retain(|(p, _)| p.as_ref().ends_with(".wj"));
        let mut prev = None;
        for (path, size) in listed {
            objects_seen += 1;
            let data = if whole {
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
                    defects += 1;
                    println!("  DEFECT {path}: cannot read: {e}");
                    continue;
                }
            };
            if !whole {
                match decode_header(path.as_ref(), &data) {
                    Ok(h) => println!("  {}", header_line(path.as_ref(), size, &h)),
                    Err(e) => {
                        defects += 1;
                        println!("  DEFECT {e}");
                    }
                }
                continue;
            }
            match verify_object(path.as_ref(), j, &data, prev.as_ref()) {
                Ok((h, recs)) => {
                    println!("  {}", header_line(path.as_ref(), size, &h));
                    records_seen += recs.len() as u64;
                    if args.records {
                        print!("{}", records_text(&recs));
                    }
                    prev = Some(h);
                }
                Err(e) => {
                    defects += 1;
                    println!("  DEFECT {e}");
                    // Go on checking the rest against this object's header, if it has one.
                    prev = decode_header(path.as_ref(), &data).ok();
                }
            }
        }
    }
    if args.verify && defects == 0 {
        println!("verified: {objects_seen} objects, {records_seen} records, no defects");
    }
    Ok(defects)
}
