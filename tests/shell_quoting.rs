//! Every command a newcomer may paste — from README.md, docs/*.md and the
//! `--help` examples — works in zsh as well as bash: no `[`, `]`, `?` or
//! `*` outside quotes. zsh expands them as patterns and fails with "no
//! matches found" (`tcp://[::1]:7000`, `...?framing=len32`); bash does
//! the same whenever a file happens to match.

mod common;

use common::bin;

/// The words of `line` holding a pattern character outside quotes.
fn unquoted_patterns(line: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let (mut word, mut globbed) = (String::new(), false);
    let mut chars = line.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, '\\') => {
                word.extend(chars.next());
            }
            (None, '#') if word.is_empty() => break,
            (None, c) if c.is_whitespace() => {
                if globbed {
                    bad.push(std::mem::take(&mut word));
                }
                word.clear();
                globbed = false;
            }
            (None, c) => {
                globbed |= matches!(c, '[' | ']' | '?' | '*');
                word.push(c);
            }
        }
    }
    if globbed {
        bad.push(word);
    }
    bad
}

/// Shell command lines in a markdown file: `sh` blocks, `$ ` lines of
/// `console` blocks (with `\` continuations), and inline code spans that
/// start with `sockloop ` or `printf `.
fn commands_in_markdown(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut prose = String::new();
    let mut fence: Option<String> = None;
    let mut continued = false;
    for line in text.lines() {
        let t = line.trim_end();
        match &fence {
            None if t.starts_with("```") => fence = Some(t[3..].to_string()),
            None => {
                prose.push_str(t);
                prose.push(' ');
            }
            Some(_) if t == "```" => fence = None,
            Some(lang) if lang == "sh" => commands.push(t.to_string()),
            Some(lang) if lang == "console" => {
                if let Some(cmd) = t.strip_prefix("$ ") {
                    commands.push(cmd.to_string());
                    continued = cmd.ends_with('\\');
                } else if continued {
                    commands.push(t.to_string());
                    continued = t.ends_with('\\');
                }
            }
            Some(_) => {}
        }
    }
    for (i, span) in prose.split('`').enumerate() {
        if i % 2 == 1 && (span.starts_with("sockloop ") || span.starts_with("printf ")) {
            commands.push(span.to_string());
        }
    }
    commands
}

#[test]
fn docs_and_help_examples_paste_into_zsh() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut sources: Vec<(String, Vec<String>)> = Vec::new();
    let mut files = vec![format!("{root}/README.md")];
    for entry in std::fs::read_dir(format!("{root}/docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path.display().to_string());
        }
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        sources.push((file, commands_in_markdown(&text)));
    }
    for sub in ["serve", "send", "chat", "load"] {
        let help = bin().args([sub, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        let examples: Vec<String> = help
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with("sockloop ") || l.starts_with("printf "))
            .map(String::from)
            .collect();
        assert!(!examples.is_empty(), "{sub} --help has examples");
        sources.push((format!("sockloop {sub} --help"), examples));
    }
    let mut checked = 0;
    for (source, commands) in &sources {
        for cmd in commands {
            let bad = unquoted_patterns(cmd);
            assert!(bad.is_empty(), "{source}: quote {bad:?} in: {cmd}");
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} commands found");
}

#[test]
fn the_check_sees_what_zsh_would_expand() {
    assert_eq!(
        unquoted_patterns("sockloop send tcp://[::1]:7000"),
        ["tcp://[::1]:7000"]
    );
    assert_eq!(
        unquoted_patterns("sockloop serve --listen count=tcp://127.0.0.1:1?framing=len32"),
        ["count=tcp://127.0.0.1:1?framing=len32"]
    );
    assert!(unquoted_patterns("sockloop send 'tcp://[::1]:7000' # a [comment]").is_empty());
    assert!(unquoted_patterns("printf 'a?\\n' | sockloop send \"tcp://[::1]:1\"").is_empty());
}
