//! `pg-load`: fills a PostgreSQL database with a corpus the host can read
//! back with `--source postgres`, for `make demo-pg`, the benchmark, and
//! trying the PostgreSQL source by hand on a corpus of any size.
//!
//! Usage: `pg-load --corpus embedded|generated:SIZE[:SEED]|dir:PATH
//! [--database NAME [--create]]`. It connects as the administrator the tests
//! use (`DATABASE_URL` or the `PG*` variables, see `sidecar_tests::pg`), to
//! NAME rather than the database those settings name when given; `--create`
//! creates NAME first (and fails if it exists, rather than mixing two
//! corpora). It applies the schema (`host/sql/schema.sql`), loads the corpus
//! in one transaction, and prints what it loaded. Errors are one line on
//! stderr, with exit status 1; usage errors exit 2.
//!
//! The benchmark loads through this binary rather than in its own process:
//! a child's reported peak RSS includes its parent's (Linux carries the
//! high-water mark across `exec`), so the bench must stay small.

use std::process::ExitCode;
use std::time::Instant;

use postgres::NoTls;
use sidecar::source::{parse_source_spec, DatabaseOptions};
use sidecar_tests::pg::{load_source, try_admin_config};

const USAGE: &str = "usage: pg-load --corpus embedded|generated:SIZE[:SEED]|dir:PATH \
                     [--database NAME [--create]]";

/// What the command line asks for.
struct Args {
    corpus: String,
    database: Option<String>,
    create: bool,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The arguments, or `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut corpus, mut database, mut create) = (None, None, false);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--corpus" => &mut corpus,
            "--database" => &mut database,
            "--create" => {
                create = true;
                continue;
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unexpected argument `{other}`")),
        };
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        if slot.replace(value).is_some() {
            return Err(format!("{arg} given twice"));
        }
    }
    if create && database.is_none() {
        return Err("--create needs --database NAME".into());
    }
    Ok(Some(Args { corpus: corpus.ok_or("--corpus is required")?, database, create }))
}

fn run(args: &Args) -> Result<(), String> {
    let corpus = args.corpus.as_str();
    // Loading from PostgreSQL would read as the administrator, which the
    // source's preflight refuses anyway.
    if corpus.starts_with("postgres") {
        return Err(format!("corpus `{corpus}`: expected embedded, generated:SIZE or dir:PATH"));
    }
    let source = parse_source_spec(Some(corpus), &DatabaseOptions::default())
        .map_err(|err| err.to_string())?;
    let mut config = try_admin_config()?;
    let connect = |config: &postgres::Config| {
        config
            .connect(NoTls)
            .map_err(|err| format!("cannot connect to {}: {err}", describe(config)))
    };
    if let Some(name) = &args.database {
        if args.create {
            let mut admin = connect(&config)?;
            admin
                .batch_execute(&format!("CREATE DATABASE {}", quote_identifier(name)))
                .map_err(|err| format!("create database `{name}`: {}", message(&err)))?;
        }
        config.dbname(name);
    }
    let mut client = connect(&config)?;
    client
        .batch_execute(sidecar::pg::SCHEMA)
        .map_err(|err| format!("schema: {}", message(&err)))?;
    let start = Instant::now();
    let loaded = load_source(&mut client, source.as_ref()).map_err(|err| err.to_string())?;
    println!(
        "loaded {} documents, {} versions, {} units from {} into {} in {:.1} s",
        loaded.documents,
        loaded.versions,
        loaded.units,
        source.describe().location,
        describe(&config),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `user@host:port/db`, never the password.
fn describe(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    format!(
        "{}@{host}:{}/{}",
        config.get_user().unwrap_or("?"),
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_dbname().unwrap_or("?")
    )
}

/// The server's message rather than the driver's "db error".
fn message(err: &postgres::Error) -> String {
    err.as_db_error().map_or_else(|| err.to_string(), |db| db.message().to_owned())
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
