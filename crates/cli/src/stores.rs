//! Where `mote up` and `mote call` keep the stores of stateful services
//! (`--store`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mote_contract::Contract;
use mote_state::{Backend, MemoryBackend, PostgresBackend, SqliteBackend};

/// Opened stores, and how to name them to a person.
pub type Opened = (Arc<dyn Backend>, String);

/// What `--store` says, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// A SQLite file (`sqlite:PATH`); the default is `DIR/.mote/state.sqlite`.
    Sqlite(PathBuf),
    /// In memory, lost when the process ends (`memory`).
    Memory,
    /// A PostgreSQL database (`postgres://USER:PASSWORD@HOST/DATABASE`),
    /// which several hosts may share.
    Postgres(String),
}

impl StoreChoice {
    /// Reads `--store`'s value, or the default for the app in `dir`.
    pub fn parse(dir: &Path, text: Option<&str>) -> Result<StoreChoice, String> {
        match text {
            None => Ok(StoreChoice::Sqlite(dir.join(".mote").join("state.sqlite"))),
            Some("memory") => Ok(StoreChoice::Memory),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(StoreChoice::Postgres(url.to_string()))
            }
            Some(text) => match text.strip_prefix("sqlite:") {
                Some("") => Err("`--store sqlite:` needs a file, e.g. sqlite:state.sqlite".into()),
                Some(path) => Ok(StoreChoice::Sqlite(PathBuf::from(path))),
                None => Err(format!(
                    "`--store {text}`: expected `sqlite:PATH`, `postgres://USER:PASSWORD@HOST/DATABASE` or `memory`"
                )),
            },
        }
    }

    /// Whether hosts of a placement may share these stores.
    pub fn is_shared(&self) -> bool {
        matches!(self, StoreChoice::Postgres(_))
    }

    /// Opens the stores, creating the SQLite file and its folder if needed;
    /// `None` when no service of the app declares a store, so that an app
    /// without state leaves no file behind.
    pub fn open<'c>(
        &self,
        contracts: impl IntoIterator<Item = &'c Contract>,
    ) -> Result<Option<Opened>, String> {
        if !contracts.into_iter().any(|c| !c.stores.is_empty()) {
            return Ok(None);
        }
        match self {
            StoreChoice::Memory => Ok(Some((
                Arc::new(MemoryBackend::new()),
                "in memory (lost when mote stops)".to_string(),
            ))),
            StoreChoice::Postgres(url) => {
                let backend = PostgresBackend::open(url).map_err(|e| e.to_string())?;
                let described = format!("postgres {}", backend.location());
                Ok(Some((Arc::new(backend), described)))
            }
            StoreChoice::Sqlite(path) => {
                if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(folder)
                        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
                }
                let backend = SqliteBackend::open(path).map_err(|e| e.to_string())?;
                Ok(Some((
                    Arc::new(backend),
                    format!("sqlite {}", path.display()),
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_choices_read_as_documented() {
        let dir = Path::new("app");
        assert_eq!(
            StoreChoice::parse(dir, None),
            Ok(StoreChoice::Sqlite(PathBuf::from("app/.mote/state.sqlite")))
        );
        assert_eq!(
            StoreChoice::parse(dir, Some("memory")),
            Ok(StoreChoice::Memory)
        );
        assert_eq!(
            StoreChoice::parse(dir, Some("sqlite:/tmp/s.db")),
            Ok(StoreChoice::Sqlite(PathBuf::from("/tmp/s.db")))
        );
        assert_eq!(
            StoreChoice::parse(dir, Some("postgres://mote@db/shop")),
            Ok(StoreChoice::Postgres("postgres://mote@db/shop".into()))
        );
        for bad in ["sqlite:", "mysql://localhost/x", "file.db"] {
            assert!(StoreChoice::parse(dir, Some(bad)).is_err(), "{bad}");
        }
    }
}
