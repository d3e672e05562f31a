//! `sessiond completions` and `sessiond man`: shell completions and manual pages, generated from
//! the command-line definitions at run time, so they always match the binary that prints them.

use super::{print_json, print_stdout};
use crate::cli::Cli;
use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;
use std::path::{Path, PathBuf};

/// The name completions are registered for: the name of the installed binary.
const BIN_NAME: &str = "sessiond";

/// `sessiond completions SHELL`: prints the completion script for SHELL (bash, zsh, fish, elvish
/// or powershell) to standard output.
///
/// # Errors
/// When standard output cannot be written.
pub(crate) fn completions(shell: Shell) -> anyhow::Result<()> {
    print_stdout(&completion_script(shell)?)
}

/// The completion script for `shell`.
fn completion_script(shell: Shell) -> anyhow::Result<String> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, BIN_NAME, &mut script);
    String::from_utf8(script).with_context(|| format!("the {shell} completion script is not UTF-8"))
}

/// `sessiond man [--dir DIR]`: prints the manual page sessiond(1) as roff, or with `--dir` writes
/// it and one page per subcommand (`sessiond-serve.1`, `sessiond-sessions-revoke.1`, …: the
/// pages sessiond(1) refers to) into DIR, which must exist.
///
/// `--dir` output: `wrote N manual pages to DIR`. `--json`: `{"dir":"DIR","pages":["sessiond.1",…]}`.
///
/// # Errors
/// When a page cannot be written (DIR missing or read-only) or standard output cannot be written.
pub(crate) fn man(dir: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let Some(dir) = dir else {
        let main = manual_pages()?.into_iter().next().map(|page| page.roff).unwrap_or_default();
        return print_stdout(&main);
    };
    let written = write_pages(dir)?;
    if json {
        print_json(&serde_json::json!({ "dir": dir.display().to_string(), "pages": written }))
    } else {
        print_stdout(&format!("wrote {} manual pages to {}\n", written.len(), dir.display()))
    }
}

/// Writes every page into `dir` and returns their file names.
fn write_pages(dir: &Path) -> anyhow::Result<Vec<String>> {
    let pages = manual_pages()?;
    let mut written = Vec::with_capacity(pages.len());
    for page in pages {
        let path: PathBuf = dir.join(&page.file_name);
        std::fs::write(&path, &page.roff).with_context(|| format!("writing {}", path.display()))?;
        written.push(page.file_name);
    }
    Ok(written)
}

/// One manual page: its file name (`sessiond-serve.1`) and its roff text.
#[derive(Debug)]
struct ManualPage {
    file_name: String,
    roff: String,
}

/// sessiond(1) first, then one page per visible subcommand, depth first.
fn manual_pages() -> anyhow::Result<Vec<ManualPage>> {
    // `help` is clap's own subcommand; a page for it would only repeat `--help`.
    let mut root = Cli::command().disable_help_subcommand(true);
    // Building names every subcommand after its parents (`sessiond-sessions-revoke`), which is
    // what each page's title and file name are made of.
    root.build();
    let mut pages = Vec::new();
    collect_pages(&root, &mut pages)?;
    Ok(pages)
}

fn collect_pages(command: &clap::Command, pages: &mut Vec<ManualPage>) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(command.clone())
        .source(format!("{BIN_NAME} {}", env!("CARGO_PKG_VERSION")))
        .manual("sessiond manual");
    let mut roff = Vec::new();
    man.render(&mut roff).context("rendering a manual page")?;
    let file_name = man.get_filename();
    let roff = String::from_utf8(roff).with_context(|| format!("the manual page {file_name} is not UTF-8"))?;
    pages.push(ManualPage { file_name, roff });
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        collect_pages(sub, pages)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every visible subcommand path, `["serve"]`, `["sessions", "revoke"]`, …, without `help`.
    fn subcommand_paths() -> Vec<Vec<String>> {
        fn walk(command: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
            for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
                let mut path = prefix.to_vec();
                path.push(sub.get_name().to_owned());
                out.push(path.clone());
                walk(sub, &path, out);
            }
        }
        let mut out = Vec::new();
        walk(&Cli::command(), &[], &mut out);
        out
    }

    #[test]
    fn bash_completions_offer_the_subcommands_and_their_options() {
        let script = completion_script(Shell::Bash).unwrap();
        assert!(script.contains("complete -F _sessiond"), "the script registers itself for sessiond");
        for word in ["serve", "sessions", "revoke", "healthcheck", "completions", "--config", "--json"] {
            assert!(script.contains(word), "bash completions lack {word}");
        }
    }

    #[test]
    fn every_shell_gets_a_script_naming_sessiond() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell] {
            let script = completion_script(shell).unwrap();
            assert!(script.contains("sessiond"), "{shell} script does not mention sessiond");
            assert!(script.contains("serve"), "{shell} script does not offer serve");
        }
    }

    #[test]
    fn main_manual_page_is_roff_listing_every_subcommand() {
        let pages = manual_pages().unwrap();
        let main = &pages[0];
        assert_eq!(main.file_name, "sessiond.1");
        let title = format!(".TH sessiond 1  \"sessiond {}\" \"sessiond manual\"", env!("CARGO_PKG_VERSION"));
        assert!(main.roff.contains(&title), "no title line {title}: {}", main.roff);
        assert!(main.roff.contains(".SH SYNOPSIS"));
        let top_level: Vec<_> = subcommand_paths().into_iter().filter(|p| p.len() == 1).collect();
        assert!(top_level.len() >= 8, "expected every top-level subcommand, got {top_level:?}");
        for path in top_level {
            // roff escapes the dash: `sessiond\-hash\-password(1)`.
            let reference = format!("sessiond\\-{}(1)", path[0].replace('-', "\\-"));
            assert!(main.roff.contains(&reference), "sessiond(1) does not list {reference}");
        }
        assert!(!main.roff.contains("sessiond\\-help"), "clap's help subcommand gets no page");
    }

    #[test]
    fn there_is_a_page_for_every_subcommand_at_every_depth() {
        let names: Vec<String> = manual_pages().unwrap().into_iter().map(|p| p.file_name).collect();
        for path in subcommand_paths() {
            let expected = format!("sessiond-{}.1", path.join("-"));
            assert!(names.contains(&expected), "no page {expected} among {names:?}");
        }
        assert!(names.contains(&"sessiond-sessions-revoke.1".to_owned()));
        assert_eq!(names.len(), subcommand_paths().len() + 1, "one page per command and no more: {names:?}");
    }

    #[test]
    fn subcommand_pages_document_their_own_options() {
        let pages = manual_pages().unwrap();
        let revoke = pages.iter().find(|p| p.file_name == "sessiond-sessions-revoke.1").unwrap();
        assert!(revoke.roff.contains(".TH sessiond-sessions-revoke 1  \"sessiond "), "{}", revoke.roff);
        assert!(revoke.roff.contains("\\-\\-user"), "revoke's page lacks --user: {}", revoke.roff);
        let healthcheck = pages.iter().find(|p| p.file_name == "sessiond-healthcheck.1").unwrap();
        assert!(healthcheck.roff.contains("\\-\\-url"));
        assert!(healthcheck.roff.contains("\\-\\-timeout"));
    }

    #[test]
    fn man_dir_writes_every_page_and_a_missing_dir_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut reported = write_pages(dir.path()).unwrap();
        reported.sort();
        let mut written: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        written.sort();
        let mut expected: Vec<_> = manual_pages().unwrap().into_iter().map(|p| p.file_name).collect();
        expected.sort();
        assert_eq!(written, expected);
        assert_eq!(reported, expected);
        let main = std::fs::read_to_string(dir.path().join("sessiond.1")).unwrap();
        assert!(main.contains(".TH sessiond 1"));

        let missing = dir.path().join("no-such-dir");
        let error = write_pages(&missing).unwrap_err();
        assert!(format!("{error:#}").contains("no-such-dir"), "the error names the path: {error:#}");
    }
}
