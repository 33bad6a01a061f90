//! Benchmark binaries live in `src/bin/`; each prints a table comparing oerkit with a peer
//! (sacrebleu, llama.cpp, ...) measured on the same machine in the same run.
//!
//! This library holds what several of those binaries share: process resource figures read from
//! `/proc` and small command-line helpers.

/// Python interpreter the sacrebleu benches run when neither `--python` nor `SACREBLEU_PYTHON`
/// names one (the venv their shell scripts create).
pub const DEFAULT_SACREBLEU_PYTHON: &str = "/tmp/venv-sb/bin/python";

/// Peak resident set size of this process so far in MiB (`VmHWM` of `/proc/self/status`, which
/// the kernel reports in KiB); `None` where that file or line cannot be read (not Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// User + system CPU seconds of the whole process (all threads) so far, from `/proc/self/stat`,
/// whose times are in USER_HZ ticks (100 per second on every mainstream Linux configuration);
/// `None` where that file cannot be read or parsed (not Linux). On a shared, loaded machine
/// tokens per CPU-second says more than wall time; the peer scripts report the same figure.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// One item of a comma-separated list of counts (`--batches 1, 32`), surrounding whitespace
/// ignored; a clap `value_parser` for arguments with `value_delimiter = ','`.
pub fn list_count(item: &str) -> Result<usize, String> {
    item.trim()
        .parse()
        .map_err(|e| format!("{item:?} is not a count: {e}"))
}
