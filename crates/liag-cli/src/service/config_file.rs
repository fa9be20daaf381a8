//! `--config FILE`: a TOML file whose keys are the command's long flags. Its values go in
//! front of clap as if typed, except where the command line gives the flag itself, so flags
//! override the file and clap checks everything alike. Unknown keys and bad values are
//! refused with the file, the line and the key.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use toml::{Spanned, Value};

/// The id of the global `--config` flag.
pub(crate) const CONFIG: &str = "config";

/// Flags a file may not set: they choose the file, or print and exit.
const NOT_IN_FILE: [&str; 3] = [CONFIG, "help", "version"];

/// The command line with the configuration file's keys added, or `argv` as it is when it
/// names no file (or does not parse; clap's own error then follows).
pub(crate) fn layered(cli: &Command, argv: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let Ok(matches) = cli.clone().ignore_errors(true).try_get_matches_from(&argv) else {
        return Ok(argv);
    };
    // Built, so global flags (`log-format`) are keys of every subcommand too.
    let mut cli = cli.clone();
    cli.build();
    let (path, leaf, leaf_matches) = leaf(&cli, &matches);
    let Some(file) = leaf_matches
        .try_get_one::<std::path::PathBuf>(CONFIG)
        .ok()
        .flatten()
    else {
        return Ok(argv);
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the configuration {}: {e}", file.display()))?;
    let added = file_args(&text, file, &path, leaf, leaf_matches)?;
    let mut out = argv;
    let at = out.iter().position(|a| a == "--").unwrap_or(out.len());
    out.splice(at..at, added);
    Ok(out)
}

/// The deepest subcommand `matches` reached: its path (`["tunnel", "server"]`), its
/// definition and its matches.
pub(crate) fn leaf<'a>(
    cli: &'a Command,
    matches: &'a ArgMatches,
) -> (Vec<String>, &'a Command, &'a ArgMatches) {
    let (mut command, mut matches, mut path) = (cli, matches, Vec::new());
    while let Some((name, sub)) = matches.subcommand() {
        let Some(found) = command.find_subcommand(name) else {
            break;
        };
        path.push(name.to_string());
        (command, matches) = (found, sub);
    }
    (path, command, matches)
}

/// The arguments a file may set: those with a long name.
pub(crate) fn settable(command: &Command) -> impl Iterator<Item = &Arg> {
    command.get_arguments().filter(|a| {
        a.get_long()
            .is_some_and(|long| !NOT_IN_FILE.contains(&long))
    })
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

/// The file's keys as command-line arguments, each checked by its flag's own parser.
fn file_args(
    text: &str,
    file: &Path,
    path: &[String],
    command: &Command,
    matches: &ArgMatches,
) -> Result<Vec<OsString>, String> {
    let at = |offset: usize| format!("{}:{}", file.display(), line_of(text, offset));
    let table: BTreeMap<Spanned<String>, Spanned<Value>> = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        format!("{}:{line}: {}", file.display(), e.message())
    })?;
    let who = format!("liag {}", path.join(" "));
    let mut out = Vec::new();
    for (key, value) in &table {
        let name = key.get_ref().as_str();
        let Some(arg) = settable(command).find(|a| a.get_long() == Some(name)) else {
            return Err(format!(
                "{}: `{name}` is not a key of `{who}`; the keys are its long flags \
                 (`{who} --help`), without the dashes",
                at(key.span().start)
            ));
        };
        let given = matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine);
        let values = strings(value.get_ref(), arg)
            .map_err(|e| format!("{}: `{name}`: {e}", at(value.span().start)))?;
        for v in &values {
            check(arg, name, v)
                .map_err(|e| format!("{}: `{name}`: {}", at(value.span().start), first_line(&e)))?;
        }
        if given {
            continue;
        }
        match arg.get_action() {
            ArgAction::SetTrue => {
                if values.first().is_some_and(|v| v == "true") {
                    out.push(OsString::from(format!("--{name}")));
                }
            }
            _ => out.extend(
                values
                    .iter()
                    .map(|v| OsString::from(format!("--{name}={v}"))),
            ),
        }
    }
    Ok(out)
}

/// Runs `value` through the flag's own parser (as a lone flag, so no other rule applies).
fn check(arg: &Arg, name: &str, value: &str) -> Result<(), clap::Error> {
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return Ok(());
    }
    let mut alone = Arg::new("value")
        .long(name.to_string())
        .value_parser(arg.get_value_parser().clone());
    if let Some(shown) = arg.get_value_names().and_then(|n| n.first()) {
        alone = alone.value_name(shown.clone());
    }
    Command::new("liag")
        .no_binary_name(true)
        .arg(alone)
        .try_get_matches_from([format!("--{name}={value}")])
        .map(drop)
}

/// clap's message without its `error: ` prefix, usage and tips.
fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or("invalid value");
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// A value as the strings the flag would be given: one for a single flag, any number for a
/// repeatable one, `true`/`false` for a switch.
fn strings(value: &Value, arg: &Arg) -> Result<Vec<String>, String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        Value::Datetime(d) => Ok(d.to_string()),
        Value::Boolean(_) | Value::Array(_) | Value::Table(_) => {
            Err(format!("expected a value, found {}", v.type_str()))
        }
    };
    match (arg.get_action(), value) {
        (ArgAction::SetTrue, Value::Boolean(b)) => Ok(vec![b.to_string()]),
        (ArgAction::SetTrue, v) => Err(format!("expected true or false, found {}", v.type_str())),
        (ArgAction::Append, Value::Array(items)) => items.iter().map(scalar).collect(),
        (_, Value::Array(_)) => Err("expected one value, found an array".into()),
        (_, v) => scalar(v).map(|s| vec![s]),
    }
}

/// The effective configuration of the command `matches` reached, with every default, as TOML
/// that `--config` reads back: flags set are keys, flags without a value are comments.
pub(crate) fn show(cli: &Command, matches: &ArgMatches) -> String {
    let mut cli = cli.clone();
    cli.build();
    let (path, command, matches) = leaf(&cli, matches);
    let mut out = format!(
        "# liag {}: the effective configuration, defaults included.\n",
        path.join(" ")
    );
    for arg in settable(command) {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        out.push('\n');
        if let Some(help) = arg.get_help() {
            comment(&mut out, &help.to_string());
        }
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = match arg.get_action() {
            ArgAction::SetTrue => Some(matches.get_flag(id).to_string()),
            ArgAction::Append if !raw.is_empty() => Some(format!(
                "[{}]",
                raw.iter()
                    .map(|v| literal(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => raw.first().map(|v| literal(v)),
        };
        match value {
            Some(value) => {
                let _ = writeln!(out, "{long} = {value}");
            }
            None => {
                let what = arg
                    .get_value_names()
                    .and_then(|n| n.first())
                    .map_or("VALUE".to_string(), |n| n.to_string());
                let what = match arg.get_action() {
                    ArgAction::Append => format!("[{what}, ...]"),
                    _ => what,
                };
                let _ = writeln!(out, "# {long} = {what}  (not set)");
            }
        }
    }
    out
}

/// `text` as `# ` comment lines of at most 96 columns, broken between words.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.len() + 1 + word.len() > 96 {
            let _ = writeln!(out, "{line}");
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    let _ = writeln!(out, "{line}");
}

/// `value` as a TOML literal: an integer where it is one, a string otherwise.
fn literal(value: &str) -> String {
    match value.parse::<i64>() {
        // Only where it reads back as the same text: `0123` stays a string.
        Ok(i) if i.to_string() == value => i.to_string(),
        _ => Value::String(value.to_string()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Command {
        Command::new("liag")
            .arg(
                Arg::new(CONFIG)
                    .long(CONFIG)
                    .global(true)
                    .value_parser(clap::value_parser!(std::path::PathBuf)),
            )
            .subcommand(
                Command::new("tunnel").subcommand(
                    Command::new("server")
                        .arg(
                            Arg::new("port")
                                .long("port")
                                .short('p')
                                .action(ArgAction::Append)
                                .required(true),
                        )
                        .arg(
                            Arg::new("tcp")
                                .long("tcp")
                                .default_value("5800")
                                .value_parser(clap::value_parser!(u16)),
                        )
                        .arg(Arg::new("tls").long("tls").action(ArgAction::SetTrue)),
                ),
            )
    }

    fn with_file(text: &str, args: &[&str]) -> Result<ArgMatches, String> {
        let dir = std::env::temp_dir().join(format!("liag-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{}.toml", text.len()));
        std::fs::write(&file, text).unwrap();
        let mut argv: Vec<OsString> = ["liag", "tunnel", "server", "--config"]
            .iter()
            .map(OsString::from)
            .collect();
        argv.push(file.into_os_string());
        argv.extend(args.iter().map(OsString::from));
        let argv = layered(&cli(), argv)?;
        cli().try_get_matches_from(argv).map_err(|e| e.to_string())
    }

    fn server(m: &ArgMatches) -> &ArgMatches {
        m.subcommand().unwrap().1.subcommand().unwrap().1
    }

    #[test]
    fn file_values_apply_and_flags_override_them() {
        let m = with_file("port = [\"22\", 80]\ntcp = 6000\ntls = true\n", &[]).unwrap();
        let s = server(&m);
        let ports: Vec<&String> = s.get_many("port").unwrap().collect();
        assert_eq!(ports, ["22", "80"]);
        assert_eq!(s.get_one::<u16>("tcp"), Some(&6000));
        assert!(s.get_flag("tls"));

        let m = with_file(
            "port = [\"22\"]\ntcp = 6000\n",
            &["--tcp", "7000", "-p", "9"],
        )
        .unwrap();
        let s = server(&m);
        assert_eq!(s.get_one::<u16>("tcp"), Some(&7000));
        let ports: Vec<&String> = s.get_many("port").unwrap().collect();
        assert_eq!(
            ports,
            ["9"],
            "a repeated flag on the command line replaces the file's list"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_line() {
        let e = with_file("port = [\"22\"]\n\ntpc = 6000\n", &[]).unwrap_err();
        assert!(
            e.contains(".toml:3: `tpc` is not a key of `liag tunnel server`"),
            "{e}"
        );
        let e = with_file("port = [\"22\"]\ntcp = 70000\n", &[]).unwrap_err();
        assert!(e.contains(".toml:2: `tcp`: invalid value '70000'"), "{e}");
        let e = with_file("port = [\"22\"]\ntls = \"yes\"\n", &[]).unwrap_err();
        assert!(
            e.contains(".toml:2: `tls`: expected true or false, found string"),
            "{e}"
        );
        let e = with_file("tcp = [1, 2]\n", &[]).unwrap_err();
        assert!(
            e.contains(".toml:1: `tcp`: expected one value, found an array"),
            "{e}"
        );
        let e = with_file("port = [\"22\"\n", &[]).unwrap_err();
        assert!(e.contains(".toml:1:"), "{e}");
    }

    #[test]
    fn show_prints_toml_that_reads_back_the_same() {
        let m = with_file("port = [\"22\", \"db:5432\"]\ntls = true\n", &[]).unwrap();
        let shown = show(&cli(), &m);
        assert!(shown.contains("port = [22, \"db:5432\"]\n"), "{shown}");
        assert!(shown.contains("tcp = 5800\n"), "{shown}");
        assert!(shown.contains("tls = true\n"), "{shown}");
        let again = with_file(&shown, &[]).unwrap();
        assert_eq!(show(&cli(), &again), shown);
    }
}
