//! Where a PostgreSQL source connects, and as whom: from an env file (the
//! field's `PG_HOST`, `PG_PORT`, `PG_DB`, `PG_USER_RO`, `PG_PASSWORD_RO`), a
//! libpq URL, or the standard `PG*` variables, in that order of precedence
//! when several are given.
//!
//! The password is a [`SecretString`] from the moment it is read: it is only
//! exposed to build the driver's [`postgres::Config`], never printed, logged,
//! written to a run folder or passed to a worker. [`Target::describe`] is
//! the redacted form every report uses.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;
use secrecy::{ExposeSecret, SecretString};

/// The session settings every connection starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// `statement_timeout`, e.g. `30s`.
    pub statement_timeout: String,
    /// `lock_timeout`.
    pub lock_timeout: String,
    /// `idle_in_transaction_session_timeout`.
    pub idle_in_transaction_session_timeout: String,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            statement_timeout: "30s".into(),
            lock_timeout: "2s".into(),
            idle_in_transaction_session_timeout: "60s".into(),
        }
    }
}

impl SessionSettings {
    /// The startup `options`: read-only by default, and the three timeouts.
    pub fn startup_options(&self) -> String {
        format!(
            "-c default_transaction_read_only=on -c statement_timeout={} -c lock_timeout={} \
             -c idle_in_transaction_session_timeout={}",
            self.statement_timeout, self.lock_timeout, self.idle_in_transaction_session_timeout
        )
    }
}

/// Checks a PostgreSQL duration setting: digits with an optional unit
/// (`ms`, `s`, `min`, `h`, `d`). Returns it unchanged.
pub fn parse_pg_duration(text: &str) -> Result<String, String> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not a duration like 30s, 500ms or 2min"));
    }
    if !["", "ms", "s", "min", "h", "d"].contains(&unit) {
        return Err(format!("`{text}`: unit `{unit}` is not one of ms, s, min, h, d"));
    }
    Ok(text.to_owned())
}

/// Where the settings came from, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An env file.
    EnvFile(PathBuf),
    /// A URL given on the command line.
    Url,
    /// The `PG*` environment variables.
    Environment,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::EnvFile(path) => write!(f, "env file {}", path.display()),
            Origin::Url => f.write_str("URL"),
            Origin::Environment => f.write_str("PG* environment variables"),
        }
    }
}

/// A database to read, and the role to read it as.
pub struct Target {
    /// Where the settings came from.
    pub origin: Origin,
    /// A host name, an address, or a Unix socket directory (starting `/`).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The database.
    pub dbname: String,
    /// The role.
    pub user: String,
    password: Option<SecretString>,
    /// The session settings.
    pub session: SessionSettings,
    /// Things the operator should know (a secrets file others can read).
    pub warnings: Vec<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Why the connection settings cannot be used. Each names the file and line,
/// the variable or the URL part at fault.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The env file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the env file is not `KEY=VALUE`.
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A required setting is missing.
    #[error("{origin}: {what} is not set")]
    Missing {
        /// Where it was looked for.
        origin: Origin,
        /// Which key or variable.
        what: &'static str,
    },
    /// A setting has a bad value.
    #[error("{origin}: {what}: {reason}")]
    Invalid {
        /// Where it came from.
        origin: Origin,
        /// Which key or variable.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl Target {
    /// Reads an env file of `KEY=VALUE` lines (`#` comments, blank lines,
    /// an optional `export `, values optionally in single or double quotes).
    /// Keys other than the `PG_*` ones it needs are ignored.
    pub fn from_env_file(path: &Path) -> Result<Self, TargetError> {
        let read = |source| TargetError::Read { path: path.to_owned(), source };
        let text = fs::read_to_string(path).map_err(read)?;
        let mode = fs::metadata(path).map_err(read)?.permissions().mode();
        let vars = parse_env_file(path, &text)?;
        let origin = Origin::EnvFile(path.to_owned());
        let mut target = Self::from_vars(origin, &vars, ENV_FILE_KEYS)?;
        if mode & 0o077 != 0 {
            target.warnings.push(format!(
                "{} holds a password and is readable by others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            ));
        }
        Ok(target)
    }

    /// Reads the standard `PG*` variables through `var`.
    pub fn from_environment(var: impl Fn(&str) -> Option<String>) -> Result<Self, TargetError> {
        let mut vars = BTreeMap::new();
        for key in ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD"] {
            if let Some(value) = var(key).filter(|v| !v.is_empty()) {
                vars.insert(key.to_owned(), value);
            }
        }
        Self::from_vars(Origin::Environment, &vars, PG_ENV_KEYS)
    }

    /// Parses a `postgres://` or `postgresql://` URL.
    pub fn from_url(url: &str) -> Result<Self, TargetError> {
        let invalid =
            |what, reason: String| TargetError::Invalid { origin: Origin::Url, what, reason };
        // The driver's parser; its errors never echo the password.
        let config = postgres::Config::from_str(url).map_err(|e| invalid("URL", e.to_string()))?;
        let host = match config.get_hosts() {
            [] => "localhost".to_owned(),
            [Host::Tcp(host)] => host.clone(),
            [Host::Unix(path)] => path.display().to_string(),
            _ => return Err(invalid("host", "only one host is supported".into())),
        };
        let port = match config.get_ports() {
            [] => 5432,
            [port] => *port,
            _ => return Err(invalid("port", "only one port is supported".into())),
        };
        let user = config
            .get_user()
            .map(str::to_owned)
            .ok_or(TargetError::Missing { origin: Origin::Url, what: "user" })?;
        let dbname = config.get_dbname().map_or_else(|| user.clone(), str::to_owned);
        let password = match config.get_password() {
            None => None,
            Some(bytes) => Some(SecretString::from(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| invalid("password", "not UTF-8".into()))?,
            )),
        };
        Ok(Self {
            origin: Origin::Url,
            host,
            port,
            dbname,
            user,
            password,
            session: SessionSettings::default(),
            warnings: Vec::new(),
        })
    }

    fn from_vars(
        origin: Origin,
        vars: &BTreeMap<String, String>,
        keys: Keys,
    ) -> Result<Self, TargetError> {
        let get = |key: &'static str| vars.get(key).filter(|v| !v.is_empty()).cloned();
        let required = |key: &'static str| {
            get(key).ok_or_else(|| TargetError::Missing { origin: origin.clone(), what: key })
        };
        let port = match get(keys.port) {
            None => 5432,
            Some(port) => port.parse().map_err(|_| TargetError::Invalid {
                origin: origin.clone(),
                what: keys.port,
                reason: format!("`{port}` is not a port number"),
            })?,
        };
        let user = required(keys.user)?;
        Ok(Self {
            host: get(keys.host).unwrap_or_else(|| "localhost".into()),
            port,
            dbname: get(keys.dbname).unwrap_or_else(|| user.clone()),
            user,
            password: get(keys.password).map(SecretString::from),
            session: SessionSettings::default(),
            warnings: Vec::new(),
            origin,
        })
    }

    /// `user@host:port/dbname`: which data, as whom.
    pub fn address(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }

    /// [`address`](Self::address) with where the settings came from and
    /// whether a password is set (never the password).
    pub fn describe(&self) -> String {
        let password = if self.password.is_some() { "password ***" } else { "no password" };
        format!("{} ({password}, from {})", self.address(), self.origin)
    }

    /// The driver's configuration; the only place the password is exposed.
    pub fn config(&self, application_name: &str, connect_timeout: Duration) -> postgres::Config {
        let mut config = postgres::Config::new();
        config
            .user(&self.user)
            .dbname(&self.dbname)
            .port(self.port)
            .application_name(application_name)
            .options(&self.session.startup_options())
            .connect_timeout(connect_timeout);
        if self.host.starts_with('/') {
            config.host_path(&self.host);
        } else {
            config.host(&self.host);
        }
        if let Some(password) = &self.password {
            config.password(password.expose_secret());
        }
        config
    }
}

/// The names a settings source uses for each part.
#[derive(Clone, Copy)]
struct Keys {
    host: &'static str,
    port: &'static str,
    dbname: &'static str,
    user: &'static str,
    password: &'static str,
}

const ENV_FILE_KEYS: Keys = Keys {
    host: "PG_HOST",
    port: "PG_PORT",
    dbname: "PG_DB",
    user: "PG_USER_RO",
    password: "PG_PASSWORD_RO",
};

const PG_ENV_KEYS: Keys = Keys {
    host: "PGHOST",
    port: "PGPORT",
    dbname: "PGDATABASE",
    user: "PGUSER",
    password: "PGPASSWORD",
};

/// `KEY=VALUE` lines; the error names the line.
fn parse_env_file(path: &Path, text: &str) -> Result<BTreeMap<String, String>, TargetError> {
    let mut vars = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let error = |reason: &str| TargetError::Line {
            path: path.to_owned(),
            line: index + 1,
            reason: reason.to_owned(),
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let (key, value) = line.split_once('=').ok_or_else(|| error("expected KEY=VALUE"))?;
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(error("the key must be letters, digits and `_`"));
        }
        let value = value.trim();
        let value = match value.as_bytes().first() {
            Some(&quote @ (b'"' | b'\'')) => {
                let inner = &value[1..];
                let end = inner
                    .find(char::from(quote))
                    .ok_or_else(|| error("the quoted value is not closed"))?;
                if !inner[end + 1..].trim().is_empty() {
                    return Err(error("text after the closing quote"));
                }
                inner[..end].to_owned()
            }
            // An unquoted value ends at ` #`.
            _ => value.split(" #").next().unwrap_or_default().trim_end().to_owned(),
        };
        vars.insert(key.to_owned(), value);
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env_file(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp");
        file.write_all(text.as_bytes()).expect("write");
        fs::set_permissions(file.path(), fs::Permissions::from_mode(mode)).expect("chmod");
        file
    }

    #[test]
    fn an_env_file_gives_host_port_db_user_and_a_secret_password() {
        let file = env_file(
            "# field report keys\nexport PG_HOST=db.internal\nPG_PORT=6432\nPG_DB='kb'\n\
             PG_USER_RO=sidecar_ro  # the read-only role\nPG_PASSWORD_RO=\"s3cr#t\"\nOTHER=1\n",
            0o600,
        );
        let target = Target::from_env_file(file.path()).expect("parses");
        assert_eq!(
            (target.host.as_str(), target.port, target.dbname.as_str(), target.user.as_str()),
            ("db.internal", 6432, "kb", "sidecar_ro")
        );
        assert!(target.warnings.is_empty());
        let described = target.describe();
        assert!(
            described.starts_with("sidecar_ro@db.internal:6432/kb (password ***, from env file")
        );
        assert!(!described.contains("s3cr#t") && !format!("{target:?}").contains("s3cr#t"));
        let config = target.config("sidecar-test", Duration::from_secs(5));
        assert_eq!(config.get_password(), Some(&b"s3cr#t"[..]));
        assert!(!format!("{config:?}").contains("s3cr#t"));
    }

    #[test]
    fn a_secrets_file_others_can_read_is_warned_about() {
        let file = env_file("PG_USER_RO=ro\nPG_PASSWORD_RO=x\n", 0o644);
        let target = Target::from_env_file(file.path()).expect("parses");
        assert_eq!(target.warnings.len(), 1, "{:?}", target.warnings);
        assert!(target.warnings[0].contains("readable by others (mode 644)"));
    }

    #[test]
    fn a_malformed_env_file_names_the_line() {
        for (text, line, reason) in [
            ("PG_USER_RO=ro\nnot a pair\n", 2, "expected KEY=VALUE"),
            ("\n\nPG_PASSWORD_RO='open\n", 3, "the quoted value is not closed"),
            ("PG HOST=x\n", 1, "the key must be letters, digits and `_`"),
        ] {
            let file = env_file(text, 0o600);
            let err = Target::from_env_file(file.path()).expect_err(text).to_string();
            assert_eq!(err, format!("{}:{line}: {reason}", file.path().display()));
        }
        let file = env_file("PG_HOST=x\n", 0o600);
        let err = Target::from_env_file(file.path()).expect_err("no user").to_string();
        assert!(err.ends_with(": PG_USER_RO is not set"), "{err}");
        let file = env_file("PG_USER_RO=ro\nPG_PORT=fivefour\n", 0o600);
        let err = Target::from_env_file(file.path()).expect_err("bad port").to_string();
        assert!(err.ends_with(": PG_PORT: `fivefour` is not a port number"), "{err}");
    }

    #[test]
    fn a_url_and_the_environment_parse_alike() {
        let url = Target::from_url("postgres://ro:pw@db:5433/kb").expect("url");
        let vars: BTreeMap<&str, &str> = [
            ("PGHOST", "db"),
            ("PGPORT", "5433"),
            ("PGDATABASE", "kb"),
            ("PGUSER", "ro"),
            ("PGPASSWORD", "pw"),
        ]
        .into();
        let env = Target::from_environment(|k| vars.get(k).map(|v| (*v).to_owned())).expect("env");
        for target in [&url, &env] {
            assert_eq!(
                (target.host.as_str(), target.port, target.dbname.as_str(), target.user.as_str()),
                ("db", 5433, "kb", "ro")
            );
            assert!(!target.describe().contains("pw"));
        }
        assert!(url.describe().ends_with("(password ***, from URL)"));
        let err = Target::from_url("postgres://db/kb").expect_err("no user").to_string();
        assert_eq!(err, "URL: user is not set");
    }

    #[test]
    fn durations_are_checked() {
        assert_eq!(parse_pg_duration("30s"), Ok("30s".into()));
        assert_eq!(parse_pg_duration("1500"), Ok("1500".into()));
        assert!(parse_pg_duration("soon").is_err());
        assert!(parse_pg_duration("3 weeks").is_err());
        assert!(parse_pg_duration("3w").is_err());
    }
}
