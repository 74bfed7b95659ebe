//! What the Debian package installs from the grammar: each shell's
//! completion script offers every command, and a man page renders for the
//! command and for each subcommand.

use crate::support::{Workdir, stdout};

/// Every command path under `path` (`["keys", "rotate"]`, ...), read from
/// the real binary's `--help`, so a command added later is checked too.
fn commands(work: &Workdir, path: &[String]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let help = work.ok(&args);
    let mut found = Vec::new();
    let listed = help
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty());
    for line in listed {
        let name = line.split_whitespace().next().unwrap().to_owned();
        if name == "help" {
            continue;
        }
        let mut sub = path.to_vec();
        sub.push(name);
        found.extend(commands(work, &sub));
        found.push(sub);
    }
    found
}

#[test]
fn completions_offer_every_command_in_bash_zsh_and_fish() {
    let work = Workdir::new();
    let commands = commands(&work, &[]);
    // 1. the top level, 2. a nested command.
    for expected in [&["license"][..], &["keys", "install-certificate"]] {
        assert!(
            commands.iter().any(|c| c == expected),
            "{expected:?} in {commands:?}"
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = work.ok(&["completions", shell]);
        for command in &commands {
            let name = command.last().unwrap();
            // How each script lists a command it completes.
            let offered = match shell {
                "bash" => format!(",{name})"),
                "zsh" => format!("'{name}:"),
                _ => format!("-a \"{name}\""),
            };
            assert!(
                script.contains(&offered),
                "{shell}: {command:?} ({offered}) missing"
            );
        }
    }
    let out = work.run(&["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_pages_render_for_the_command_and_every_subcommand() {
    let work = Workdir::new();
    let page = work.ok(&["man"]);
    assert!(
        page.lines()
            .any(|line| line.starts_with(".TH ren3-issuer 1 ")),
        "{page}"
    );
    assert!(page.contains(".SH NAME\nren3\\-issuer \\- "), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");

    let listed = work.ok(&["man", "--out-dir", "pages"]);
    let commands = commands(&work, &[]);
    for command in std::iter::once(Vec::new()).chain(commands) {
        let name = std::iter::once("ren3-issuer".to_owned())
            .chain(command)
            .collect::<Vec<_>>()
            .join("-");
        let file = format!("pages/{name}.1");
        assert!(
            listed.lines().any(|line| line == file),
            "{file} not listed in {listed}"
        );
        let roff = std::fs::read_to_string(work.path(&file)).unwrap();
        assert!(
            roff.lines()
                .any(|line| line.starts_with(&format!(".TH {name} 1 "))),
            "{name}: {roff}"
        );
        assert!(roff.contains(".SH SYNOPSIS"), "{name}");
    }
    // Nothing else goes to stdout; the count is on stderr.
    let out = work.run(&["man", "--out-dir", "pages"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("wrote "),
        "{}",
        stdout(&out)
    );
}
