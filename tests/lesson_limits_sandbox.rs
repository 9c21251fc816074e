//! Lesson 4 on the sandbox tells the truth: the starved run and the sane run are measured,
//! shown side by side, and differ as the lesson says they do (fewer answers, slower
//! answers, clients giving up when starved).

mod support;

use std::path::PathBuf;
use std::process::Command;
use support::{ensure_app_binaries, text};

/// Stops the sandbox `--sandbox` started, pass or fail.
struct SandboxDown(PathBuf);

impl Drop for SandboxDown {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_hk8s"))
            .args(["sandbox", "down"])
            .env("HK8S_SANDBOX_DIR", &self.0)
            .status();
    }
}

/// One row of the side-by-side table: the two runs' values, as printed.
fn row<'a>(table: &'a str, name: &str) -> (&'a str, &'a str) {
    let line = table
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("row {name:?} in:\n{table}"));
    let cells: Vec<&str> = line[name.len()..]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells.len(), 2, "two cells in {line:?}");
    (cells[0], cells[1])
}

/// `4.92 s`, `34 ms` or `—` (no answers) as seconds.
fn seconds(cell: &str) -> Option<f64> {
    if let Some(ms) = cell.strip_suffix(" ms") {
        return Some(ms.parse::<f64>().unwrap() / 1000.0);
    }
    cell.strip_suffix(" s").map(|s| s.parse().unwrap())
}

fn percent(cell: &str) -> f64 {
    cell.trim_end_matches(" %").parse().unwrap()
}

#[test]
fn the_starved_and_the_sane_run_differ_as_lesson_four_says() {
    ensure_app_binaries();
    let dir = tempfile::tempdir().unwrap();
    let _down = SandboxDown(dir.path().join("sandbox"));
    let out = Command::new(env!("CARGO_BIN_EXE_hk8s"))
        .args(["lesson", "4", "--sandbox", "--yes"])
        .env_remove("KUBECONFIG")
        .env_remove("HK8S_KUBECONFIG")
        .env("HOME", dir.path())
        .env("HK8S_DATA_DIR", dir.path().join("data"))
        .env("HK8S_SANDBOX_DIR", dir.path().join("sandbox"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let table = &t[t
        .find("The two runs side by side:")
        .unwrap_or_else(|| panic!("a comparison:\n{t}"))..];
    let header = table.lines().nth(1).unwrap();
    assert!(
        header.contains("starved (07)") && header.contains("sane (08)"),
        "{table}"
    );
    let (starved, sane) = row(table, "Transactions ");
    let (starved, sane): (u64, u64) = (starved.parse().unwrap(), sane.parse().unwrap());
    assert!(
        sane >= starved * 3,
        "the sane frontend answers far more ({starved} starved, {sane} sane):\n{table}"
    );
    let (starved_av, sane_av) = row(table, "Availability");
    assert!(
        // The lesson's own bar (`min-availability: 95`): a fresh-clone CI run saw 98.35 %
        // with 33 of 2005 requests failing, where quiet runs give 99+ %.
        percent(starved_av) < percent(sane_av) && percent(sane_av) >= 95.0,
        "clients give up on the starved frontend only:\n{table}"
    );
    let (starved_p50, sane_p50) = row(table, "Response p50");
    let sane_p50 = seconds(sane_p50).expect("the sane run has answers");
    if let Some(starved_p50) = seconds(starved_p50) {
        assert!(
            starved_p50 > sane_p50 * 5.0,
            "starved answers are slower ({starved_p50} s against {sane_p50} s):\n{table}"
        );
    }
    assert!(
        table.contains("Availability fell to") && !table.contains("made no difference"),
        "the meaning follows the numbers:\n{table}"
    );
    let lesson =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/lessons/04-limits.md"))
            .unwrap();
    assert!(
        t.contains("hk8s load -d1 -c100 -t10S --timeout 5") && lesson.contains("100 clients"),
        "the command shown and the text agree on the load:\n{t}"
    );
}
