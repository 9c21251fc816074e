//! Terminal output: colors (off with --no-color, NO_COLOR or no terminal), prompts and spinners.

use console::{Style, Term};
use dialoguer::theme::Theme;
use dialoguer::{Confirm, Input};
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt;
use std::io::IsTerminal;
use std::time::Duration;

/// The keys a step prompt takes.
const STEP_HINT: &str = "[Enter = run, s = skip, q = quit]";

/// How the program talks to the person at the terminal.
#[derive(Debug, Clone)]
pub struct Ui {
    pub color: bool,
    /// Prompts are shown only with a terminal on stdin and stdout and without --yes.
    pub interactive: bool,
    /// Quiet mode hides prose (used by `verify --apply` with machine output).
    pub quiet: bool,
}

/// What the learner answered at a step prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Run,
    Skip,
    Quit,
    /// Ctrl-C at the prompt.
    Interrupted,
}

/// What a typed answer to a step prompt means; `None` when it means nothing.
fn step_answer(text: &str) -> Option<Answer> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "y" | "yes" | "r" | "run" => Some(Answer::Run),
        "s" | "skip" | "n" | "no" => Some(Answer::Skip),
        "q" | "quit" => Some(Answer::Quit),
        _ => None,
    }
}

/// Whether a prompt ended because the learner pressed Ctrl-C.
fn interrupted(err: &dialoguer::Error) -> bool {
    let dialoguer::Error::IO(io) = err;
    io.kind() == std::io::ErrorKind::Interrupted
}

/// hk8s's look for dialoguer's prompts: `? Question [keys] ` in bold and dim, the
/// answer after it once given, errors indented below.
struct Prompts<'a> {
    ui: &'a Ui,
    hint: &'a str,
}

impl Prompts<'_> {
    fn question(&self, f: &mut dyn fmt::Write, prompt: &str) -> fmt::Result {
        write!(
            f,
            "{} {} ",
            self.ui.bold(&format!("? {prompt}")),
            self.ui.dim(self.hint)
        )
    }
}

impl Theme for Prompts<'_> {
    fn format_error(&self, f: &mut dyn fmt::Write, err: &str) -> fmt::Result {
        write!(f, "  {err}")
    }

    fn format_input_prompt(
        &self,
        f: &mut dyn fmt::Write,
        prompt: &str,
        _default: Option<&str>,
    ) -> fmt::Result {
        self.question(f, prompt)
    }

    fn format_input_prompt_selection(
        &self,
        f: &mut dyn fmt::Write,
        prompt: &str,
        answer: &str,
    ) -> fmt::Result {
        self.question(f, prompt)?;
        write!(f, "{answer}")
    }

    fn format_confirm_prompt(
        &self,
        f: &mut dyn fmt::Write,
        prompt: &str,
        _default: Option<bool>,
    ) -> fmt::Result {
        self.question(f, prompt)
    }

    fn format_confirm_prompt_selection(
        &self,
        f: &mut dyn fmt::Write,
        prompt: &str,
        answer: Option<bool>,
    ) -> fmt::Result {
        self.question(f, prompt)?;
        write!(f, "{}", if answer == Some(true) { "y" } else { "n" })
    }
}

impl Ui {
    pub(crate) fn new(no_color: bool, yes: bool) -> Self {
        let tty = std::io::stdout().is_terminal();
        let color = !no_color && std::env::var_os("NO_COLOR").is_none() && tty;
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(color);
        let interactive = !yes && tty && std::io::stdin().is_terminal();
        Self {
            color,
            interactive,
            quiet: false,
        }
    }

    /// The terminal's width in columns, when stdout is a terminal (prose is reflowed to it).
    pub(crate) fn width(&self) -> Option<usize> {
        Term::stdout()
            .size_checked()
            .map(|(_, cols)| usize::from(cols).saturating_sub(1).max(40))
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            style.apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }

    pub(crate) fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }
    pub(crate) fn dim(&self, text: &str) -> String {
        self.paint(Style::new().dim(), text)
    }
    pub(crate) fn green(&self, text: &str) -> String {
        self.paint(Style::new().green(), text)
    }
    pub(crate) fn red(&self, text: &str) -> String {
        self.paint(Style::new().red(), text)
    }
    pub(crate) fn yellow(&self, text: &str) -> String {
        self.paint(Style::new().yellow(), text)
    }
    pub(crate) fn cyan(&self, text: &str) -> String {
        self.paint(Style::new().cyan(), text)
    }
    pub(crate) fn italic(&self, text: &str) -> String {
        self.paint(Style::new().italic(), text)
    }
    /// A highlighted manifest field.
    pub(crate) fn highlight(&self, text: &str) -> String {
        self.paint(Style::new().yellow().bold(), text)
    }

    pub(crate) fn line(&self, text: &str) {
        if !self.quiet {
            println!("{text}");
        }
    }
    pub(crate) fn heading(&self, text: &str) {
        self.line(&format!("\n{}", self.bold(&self.cyan(text))));
    }
    pub(crate) fn ok(&self, text: &str) {
        self.line(&format!("{} {text}", self.green("✔")));
    }
    pub(crate) fn fail(&self, text: &str) {
        self.line(&format!("{} {text}", self.red("✘")));
    }
    pub(crate) fn warn(&self, text: &str) {
        self.line(&format!("{} {text}", self.yellow("!")));
    }
    /// The kubectl command that does the same by hand.
    pub(crate) fn kubectl(&self, command: &str) {
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

    /// Asks whether to run a step: Enter runs it, `s` skips, `q` quits; Ctrl-C interrupts.
    /// Without a terminal (or with --yes) it runs every step.
    pub(crate) fn ask_step(&self, label: &str) -> Answer {
        if !self.interactive {
            return Answer::Run;
        }
        let theme = Prompts {
            ui: self,
            hint: STEP_HINT,
        };
        let answer = Input::<String>::with_theme(&theme)
            .with_prompt(label)
            .allow_empty(true)
            .validate_with(|text: &String| match step_answer(text) {
                Some(_) => Ok(()),
                None => Err(format!(
                    "{text:?}: press Enter to run the step, s to skip, q to quit"
                )),
            })
            .interact_text_on(&Term::stdout());
        match answer {
            Ok(text) => step_answer(&text).unwrap_or(Answer::Run),
            Err(err) if interrupted(&err) => Answer::Interrupted,
            Err(_) => Answer::Quit,
        }
    }

    /// A yes/no confirmation; `--yes` answers yes, no terminal answers no.
    pub(crate) fn confirm(&self, question: &str, yes: bool) -> bool {
        if yes {
            return true;
        }
        if !self.interactive {
            return false;
        }
        let theme = Prompts {
            ui: self,
            hint: "[y/N]",
        };
        Confirm::with_theme(&theme)
            .with_prompt(question)
            .default(false)
            .wait_for_newline(true)
            .interact_on(&Term::stdout())
            .unwrap_or(false)
    }

    /// A spinner on stderr when it is a terminal, hidden otherwise.
    pub(crate) fn spinner(&self, message: &str) -> ProgressBar {
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
    pub(crate) fn bar(&self, done: usize, total: usize) -> String {
        let width = 24;
        let filled = (done * width).checked_div(total).unwrap_or(0).min(width);
        format!(
            "[{}{}] {done}/{total}",
            self.green(&"#".repeat(filled)),
            self.dim(&"-".repeat(width - filled))
        )
    }
}

/// Breaks a styled line between words to fit `width` columns (colour codes take none),
/// later lines indented by `indent`; no width leaves it whole.
pub(crate) fn wrap(line: &str, indent: usize, width: Option<usize>) -> String {
    let Some(width) = width else {
        return line.to_string();
    };
    let body = line.trim_start();
    let lead = line.len() - body.len();
    let mut out = " ".repeat(lead);
    let mut used = lead;
    for (i, word) in body.split(' ').enumerate() {
        let w = console::measure_text_width(word);
        if i > 0 && used + 1 + w > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            used = indent;
        } else if i > 0 {
            out.push(' ');
            used += 1;
        }
        out.push_str(word);
        used += w;
    }
    out
}
