//! The `faceveil` command: argument parsing ([`args`]), printing and exit codes over the library. Every
//! decision about pixels, detectors and runs is the library's.

mod args;

use args::{BatchArgs, Cli, Command, ProgressArg, RedactArgs, ReviewArgs, StreamArgs, SummaryArgs, VerifyArgs};
use clap::Parser;
use faceveil::batch::{BatchOutcome, Event, Status};
use faceveil::detect::{load_detector, DetectorChoice};
use faceveil::io::write_json_atomic;
use faceveil::live::{redact_stream, StreamHooks, StreamOutput};
use faceveil::{DetectSettings, LiveEvent};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Exit codes: 0 success, 1 failure, 2 usage error, 3 batch finished with some files failed or skipped.
enum Failure {
    Usage(anyhow::Error),
    Run(anyhow::Error),
    /// A batch finished, but some files failed or were skipped (exit code 3).
    Partial,
    /// `verify` found faces (exit code 4).
    Flagged,
    /// The output was written, but the input was damaged (exit code 5).
    Damaged,
}

impl From<faceveil::Error> for Failure {
    fn from(e: faceveil::Error) -> Self {
        if e.is_usage() {
            Failure::Usage(e.into())
        } else {
            Failure::Run(e.into())
        }
    }
}

fn redact(args: &RedactArgs) -> Result<(), Failure> {
    let options = args.settings.options();
    options.validate()?;
    if let Some(report) = &args.report {
        let inputs: Vec<&std::path::Path> =
            std::iter::once(args.input.as_path()).chain(args.edits.as_deref()).collect();
        faceveil::check_side_output(report, "report", &inputs, &args.output, args.overwrite)?;
    }
    let mut detector = args.settings.load_detector(&options, args.settings.threads)?;
    let bar = progress_bar("{spinner} {wide_bar} {pos}/{len} frames, {per_sec}, ETA {eta}");
    let tick = |n: u64, total: Option<u64>| {
        if let Some(b) = &bar {
            if let Some(t) = total {
                b.set_length(t.max(n));
            }
            b.set_position(n);
        }
    };
    let extras = faceveil::Extras {
        overwrite: args.overwrite,
        edits: args.edits.clone(),
        // The user named the edit file for this one output: its keep regions are what they asked for.
        allow_keep_regions: true,
        review_sheet: args.review_sheet.clone(),
        progress: Some(&tick),
        time_limit: args.time_limit.map(std::time::Duration::from_secs),
        cancel: Some(interrupt_flag()?),
    };
    let report = faceveil::redact_file_with(&args.input, &args.output, &options, &mut detector, &extras);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report?;
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&report).map_err(|e| Failure::Run(e.into()))?;
        faceveil::io::write_atomic_with(path, &json, args.overwrite)?;
    }
    for k in &report.kept_regions {
        let [x, y, w, h] = k.bbox;
        eprintln!(
            "faceveil: warning: the edit file keeps a region UNREDACTED from {} to {}: box ({x:.0}, {y:.0}, {w:.0}x{h:.0}), {} detection(s) left visible",
            k.from, k.to, k.detections_kept
        );
    }
    eprintln!(
        "faceveil: {} -> {}: {} frame(s), faces in {}, {} detection(s), {} frame(s) redacted; detector on {}{}",
        args.input.display(),
        args.output.display(),
        report.frames,
        report.frames_with_faces,
        report.detections,
        report.frames_redacted,
        report.runtime.as_deref().unwrap_or("a custom detector"),
        if report.warnings.is_empty() { String::new() } else { format!("; warnings: {}", report.warnings.join("; ")) }
    );
    if report.input_damaged() {
        eprintln!(
            "faceveil: {}: the input is damaged; the output holds every frame that could be decoded (exit 5)",
            args.input.display()
        );
        return Err(Failure::Damaged);
    }
    Ok(())
}

/// A flag set by the first SIGINT or SIGTERM, for the library to stop cleanly (no output, no temporary file
/// left; a stream finishes its segment). A second signal ends the process at once.
fn interrupt_flag() -> Result<Arc<AtomicBool>, Failure> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // In this order: the second signal finds the flag set and exits; the first only sets it.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&flag)))
            .map_err(|e| Failure::Run(anyhow::anyhow!("signal handler: {e}")))?;
    }
    Ok(flag)
}

/// A progress bar with `template`, only when standard error is a terminal.
fn progress_bar(template: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

fn batch(args: &BatchArgs) -> Result<(), Failure> {
    let options = args.settings.options();
    options.validate()?;
    let settings = args.batch_settings(interrupt_flag()?)?;
    let make = |threads: usize| -> faceveil::Result<Box<dyn faceveil::Detector>> {
        let threads = if args.settings.threads > 0 { args.settings.threads } else { threads };
        args.settings.load_detector(&options, threads)
    };
    let mode = if args.quiet { ProgressArg::None } else { args.progress };
    let files_bar = if mode == ProgressArg::Human {
        progress_bar("{spinner} {wide_bar} {pos}/{len} files, ETA {eta} {msg}")
    } else {
        None
    };
    let say = |line: String| match &files_bar {
        Some(b) => b.println(line),
        None => eprintln!("{line}"),
    };
    let progress = |event: Event<'_>| match mode {
        ProgressArg::None => {}
        ProgressArg::Json => {
            if let Ok(line) = serde_json::to_string(&event) {
                eprintln!("{line}");
            }
        }
        ProgressArg::Human => match event {
            Event::Start { files, media, shard } => {
                if let Some(b) = &files_bar {
                    b.set_length(files as u64);
                }
                let shard = shard.map(|s| format!(" (shard {}/{})", s.index, s.count)).unwrap_or_default();
                say(format!("faceveil batch: {files} file(s), {media} media{shard}"))
            }
            Event::File { n, of, result } => {
                if let Some(b) = &files_bar {
                    b.inc(1);
                }
                let status = match result.status {
                    Status::Done => format!(
                        "done, {} frame(s), faces in {}, {:.1} s{}",
                        result.frames,
                        result.frames_with_faces,
                        result.seconds,
                        result.redone.map(|why| format!(" (made again: {})", why.describe())).unwrap_or_default()
                    ),
                    Status::UpToDate => "up to date".into(),
                    Status::Failed => "FAILED".into(),
                    Status::Skipped => "skipped".into(),
                    Status::Interrupted => "INTERRUPTED".into(),
                };
                let message = result.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
                say(format!("[{n}/{of}] {}: {status}{message}", result.input.display()))
            }
        },
    };
    let summary = faceveil::batch::run_batch(&args.input_dir, &args.output, &options, &settings, &make, &progress);
    if let Some(b) = &files_bar {
        b.finish_and_clear();
    }
    let summary = summary?;
    let summary_path = summary.write()?;
    match mode {
        ProgressArg::None => {}
        ProgressArg::Json => eprintln!(
            "{}",
            serde_json::json!({"event": "finish", "done": summary.done, "up_to_date": summary.up_to_date,
                "failed": summary.failed, "skipped": summary.skipped, "seconds": summary.seconds,
                "summary": summary_path})
        ),
        ProgressArg::Human => eprintln!(
            "faceveil batch: {} done, {} up to date, {} failed, {} skipped in {:.1} s; summary {}",
            summary.done,
            summary.up_to_date,
            summary.failed,
            summary.skipped,
            summary.seconds,
            summary_path.display()
        ),
    }
    match summary.outcome() {
        BatchOutcome::Complete => Ok(()),
        BatchOutcome::Interrupted => Err(Failure::Run(anyhow::anyhow!(
            "interrupted: files not started are left for a rerun of the same command, which resumes"
        ))),
        BatchOutcome::Damaged => Err(Failure::Damaged),
        BatchOutcome::Incomplete => Err(Failure::Partial),
    }
}

fn stream(args: &StreamArgs) -> Result<(), Failure> {
    let options = args.options();
    options.redact.require_redaction("a live recording")?;
    options.validate()?;
    let output = if args.output == "-" {
        StreamOutput::Stdout
    } else {
        faceveil::live::SegmentNamer::new(&args.output, args.segment_time)?;
        StreamOutput::Segments { pattern: args.output.clone(), seconds: args.segment_time }
    };
    let live = args.live_settings()?;
    let stop = interrupt_flag()?;
    let mut detector = args.settings.load_detector(&options, args.settings.threads)?;
    let log = |event: LiveEvent| {
        if let LiveEvent::Degraded { frame, level, lag_ms, what } = event {
            eprintln!("faceveil stream: frame {frame}: {lag_ms} ms behind real time: level {level}: {what}")
        }
    };
    let on_segment = |path: &std::path::Path| eprintln!("faceveil stream: segment complete: {}", path.display());
    let hooks = StreamHooks { stop, log: &log, on_segment: &on_segment };
    let (report, error) = match redact_stream(&args.input, &output, &options, &live, &mut detector, hooks) {
        Ok(r) => (r, None),
        Err((e, r)) => (r, Some(e)),
    };
    if let Some(path) = &args.report {
        let mut json = serde_json::to_value(&report).map_err(|e| Failure::Run(e.into()))?;
        json["error"] = serde_json::json!(error.as_ref().map(|e| e.to_string()));
        write_json_atomic(path, &json)?;
    }
    let lat = match (report.latency_ms_p50, report.latency_ms_p95) {
        (Some(a), Some(b)) => format!("; latency p50 {a} ms, p95 {b} ms, max {:.0} ms", report.latency_ms_max),
        _ => String::new(),
    };
    eprintln!(
        "faceveil stream: {}: {} frame(s), faces in {}, {} redacted, {} degraded (effort levels 1/2/3: {}/{}/{}), {} covered, {} segment(s); {:.1} s of media in {:.1} s (real-time factor {:.2}){lat}{}",
        if args.input == "-" { "standard input" } else { &args.input },
        report.frames,
        report.frames_with_faces,
        report.frames_redacted,
        report.frames_degraded,
        report.frames_by_effort[1],
        report.frames_by_effort[2],
        report.frames_by_effort[3],
        report.frames_covered,
        report.segments.len(),
        report.media_ms as f64 / 1000.0,
        report.wall_ms as f64 / 1000.0,
        report.realtime_factor,
        if report.stopped { "; stopped by signal" } else { "" }
    );
    for w in &report.warnings {
        eprintln!("faceveil stream: warning: {w}");
    }
    match error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn verify(args: &VerifyArgs) -> Result<(), Failure> {
    // Both models at the confident threshold: a second opinion, not a search for everything.
    let settings = DetectSettings {
        threshold: args.threshold,
        small_threshold: args.threshold,
        turned: args.turned,
        ..DetectSettings::default()
    };
    settings.validate()?;
    if args.orig.is_some() && args.files.len() != 1 {
        return Err(faceveil::Error::Config("--orig compares one FILE with its original; pass one FILE".into()).into());
    }
    let mut detector = load_detector(&DetectorChoice { model: args.model.clone(), ..Default::default() }, &settings)?;
    let mut reports = Vec::new();
    let mut flagged = false;
    for file in &args.files {
        let r = faceveil::verify::verify_file(file, args.orig.as_deref(), &settings, &mut detector)?;
        if r.clean() {
            println!("{}: clean ({} frame(s) checked)", file.display(), r.frames);
        } else {
            flagged = true;
            println!("{}: FACES STILL DETECTABLE in {} of {} frame(s)", file.display(), r.frames_flagged, r.frames);
            for f in r.findings.iter().take(20) {
                let b = f.bbox;
                println!(
                    "  frame {} at {}: box ({:.0},{:.0})-({:.0},{:.0}) score {:.2}",
                    f.frame, f.time, b.x0, b.y0, b.x1, b.y1, f.score
                );
            }
        }
        reports.push(r);
    }
    if let Some(path) = &args.json {
        write_json_atomic(path, &reports)?;
    }
    if flagged {
        Err(Failure::Flagged)
    } else {
        Ok(())
    }
}

fn review(args: &ReviewArgs) -> Result<(), Failure> {
    let edits = args.edits.clone().unwrap_or_else(|| {
        let mut p = args.output.as_os_str().to_owned();
        p.push(faceveil::batch::EDITS_SUFFIX);
        p.into()
    });
    // verify runs while the page is already served; its findings appear on the page when ready.
    let verify = if args.no_verify {
        None
    } else {
        let settings = DetectSettings { threshold: 0.5, small_threshold: 0.5, ..DetectSettings::default() };
        let detector = load_detector(&DetectorChoice::default(), &settings)?;
        Some(faceveil::review_page::VerifyJob { detector, settings })
    };
    let settings =
        faceveil::review_page::ReviewSettings { output: args.output.clone(), original: args.orig.clone(), edits };
    settings.validate()?;
    let server = faceveil::review_page::ReviewServer::bind()?;
    let stop = interrupt_flag()?;
    println!("faceveil review: open {}", server.url());
    eprintln!("faceveil review: edits are saved to {}; Ctrl-C ends the review", settings.edits.display());
    if verify.is_some() {
        eprintln!(
            "faceveil review: checking {} with verify meanwhile; its findings appear on the page",
            args.output.display()
        );
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    server.serve(&settings, verify, &stop)?;
    Ok(())
}

fn summary(args: &SummaryArgs) -> Result<(), Failure> {
    use faceveil::accounting::FileState;
    if args.shards == Some(0) {
        return Err(faceveil::Error::Config("invalid shard count 0 (expected >= 1)".into()).into());
    }
    let a = faceveil::accounting::account(&args.output, args.shards)?;
    let path = a.write()?;
    let shards = match a.shard_count {
        Some(n) => format!("{n} shard(s)"),
        None => "one unsharded run".into(),
    };
    println!("faceveil summary: {} <- {} ({shards})", a.output_dir.display(), a.input_dir.display());
    for s in &a.shards {
        let state = match (s.reported, s.interrupted) {
            (false, _) => "NO SUMMARY (never ran, or still running)".to_string(),
            (true, true) => format!("interrupted: {} done, {} failed", s.done, s.failed),
            (true, false) => format!("{} done, {} failed", s.done, s.failed),
        };
        println!("  shard {}: {state}", s.index);
    }
    for f in a.files.iter().filter(|f| !matches!(f.state, FileState::Done | FileState::Skipped)) {
        let what = match f.state {
            FileState::Failed => "FAILED",
            FileState::NotDone => "NOT DONE",
            FileState::ClaimedTwice => "CLAIMED BY TWO SHARDS",
            _ => "",
        };
        let by: Vec<String> = f.reported_by.iter().map(|k| k.map_or("all".into(), |k| k.to_string())).collect();
        let shards = if by.is_empty() { String::new() } else { format!(" (shard {})", by.join(", ")) };
        let msg = f.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
        println!("  {what}{shards}: {}{msg}", f.input.display());
    }
    if let Some(why) = &a.input_unreadable {
        println!("  the input folder could not be read again ({why}): files no shard listed cannot be named");
    }
    println!(
        "faceveil summary: {} done, {} failed, {} not done, {} claimed twice, {} skipped; {} shard(s) without a summary; {}",
        a.done,
        a.failed,
        a.not_done,
        a.claimed_twice,
        a.skipped,
        a.shards_missing.len(),
        path.display()
    );
    if a.complete() {
        Ok(())
    } else {
        Err(Failure::Partial)
    }
}

/// The error and its causes, each cause only where its text is not already in the message (library errors
/// already name their cause).
fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

fn main() -> ExitCode {
    // ONNX Runtime's own telemetry off, while the process has one thread (a user's own setting is kept).
    faceveil::detect::keep_runtime_telemetry_off();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    faceveil::io::quiet_ffmpeg_log();
    let result = match &cli.command {
        Command::Redact(args) => redact(args),
        Command::Batch(args) => batch(args),
        Command::Verify(args) => verify(args),
        Command::Stream(args) => stream(args),
        Command::Review(args) => review(args),
        Command::Summary(args) => summary(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("faceveil: error: {}", describe(&e));
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("faceveil: error: {}", describe(&e));
            ExitCode::from(1)
        }
        Err(Failure::Partial) => ExitCode::from(3),
        Err(Failure::Flagged) => ExitCode::from(4),
        Err(Failure::Damaged) => ExitCode::from(5),
    }
}
