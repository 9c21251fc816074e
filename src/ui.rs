//! Terminal output: colors (off with --no-color, NO_COLOR or no terminal), prompts and spinners.

use console::{Style, Term};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// How the program talks to the person at the terminal.
#[derive(Debug, Clone)]
pub struct Ui {
    pub color: bool,
    /// Prompts are shown only with a terminal on stdin and stdout and without --yes.
    pub interactive: bool,
    pub verbose: u8,
    /// Quiet mode hides prose (used by `verify --apply` with machine output).
    pub quiet: bool,
}

/// What the learner answered at a step prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Run,
    Skip,
    Quit,
}

impl Ui {
    pub fn new(no_color: bool, yes: bool, verbose: u8) -> Self {
        let tty = std::io::stdout().is_terminal();
        let color = !no_color && std::env::var_os("NO_COLOR").is_none() && tty;
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(color);
        let interactive = !yes && tty && std::io::stdin().is_terminal();
        Self {
            color,
            interactive,
            verbose,
            quiet: false,
        }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            style.apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }
    pub fn dim(&self, text: &str) -> String {
        self.paint(Style::new().dim(), text)
    }
    pub fn green(&self, text: &str) -> String {
        self.paint(Style::new().green(), text)
    }
    pub fn red(&self, text: &str) -> String {
        self.paint(Style::new().red(), text)
    }
    pub fn yellow(&self, text: &str) -> String {
        self.paint(Style::new().yellow(), text)
    }
    pub fn cyan(&self, text: &str) -> String {
        self.paint(Style::new().cyan(), text)
    }
    pub fn italic(&self, text: &str) -> String {
        self.paint(Style::new().italic(), text)
    }
    /// A highlighted manifest field.
    pub fn highlight(&self, text: &str) -> String {
        self.paint(Style::new().yellow().bold(), text)
    }

    pub fn line(&self, text: &str) {
        if !self.quiet {
            println!("{text}");
        }
    }
    pub fn heading(&self, text: &str) {
        self.line(&format!("\n{}", self.bold(&self.cyan(text))));
    }
    pub fn ok(&self, text: &str) {
        self.line(&format!("{} {text}", self.green("✔")));
    }
    pub fn fail(&self, text: &str) {
        self.line(&format!("{} {text}", self.red("✘")));
    }
    pub fn warn(&self, text: &str) {
        self.line(&format!("{} {text}", self.yellow("!")));
    }
    /// The kubectl command that does the same by hand.
    pub fn kubectl(&self, command: &str) {
        for (i, line) in command.lines().enumerate() {
            let prefix = if i == 0 {
                "kubectl equivalent:"
            } else {
                "                   "
            };
            self.line(&format!(
                "  {} {}",
                self.dim(prefix),
                self.cyan(&format!("$ {line}"))
            ));
        }
    }

    /// Asks whether to run a step: Enter runs it, `s` skips, `q` quits.
    /// Without a terminal (or with --yes) it runs every step.
    pub fn ask_step(&self, label: &str) -> Answer {
        if !self.interactive {
            return Answer::Run;
        }
        loop {
            print!(
                "{} {} ",
                self.bold(&format!("? {label}")),
                self.dim("[Enter = run, s = skip, q = quit]")
            );
            let _ = std::io::stdout().flush();
            let mut answer = String::new();
            match std::io::stdin().lock().read_line(&mut answer) {
                Ok(0) | Err(_) => return Answer::Quit,
                Ok(_) => {}
            }
            match answer.trim().to_ascii_lowercase().as_str() {
                "" | "y" | "yes" | "r" | "run" => return Answer::Run,
                "s" | "skip" | "n" | "no" => return Answer::Skip,
                "q" | "quit" => return Answer::Quit,
                other => println!("  {other:?}: press Enter to run the step, s to skip, q to quit"),
            }
        }
    }

    /// A yes/no confirmation; `--yes` answers yes, no terminal answers no.
    pub fn confirm(&self, question: &str, yes: bool) -> bool {
        if yes {
            return true;
        }
        if !self.interactive {
            return false;
        }
        print!(
            "{} {} ",
            self.bold(&format!("? {question}")),
            self.dim("[y/N]")
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    }

    /// A spinner on stderr when it is a terminal, hidden otherwise.
    pub fn spinner(&self, message: &str) -> ProgressBar {
        let bar = if Term::stderr().is_term() && !self.quiet {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    /// A text progress bar, e.g. `[#####-----] 3/8`.
    pub fn bar(&self, done: usize, total: usize) -> String {
        let width = 24;
        let filled = (done * width).checked_div(total).unwrap_or(0).min(width);
        format!(
            "[{}{}] {done}/{total}",
            self.green(&"#".repeat(filled)),
            self.dim(&"-".repeat(width - filled))
        )
    }
}
