//! The table names the SQL stores accept.

/// The longest table name: the stores derive other names from it (`<name>_by_expiry`, and
/// during an upgrade from an earlier layout `<name>_fields`…), and PostgreSQL cuts identifiers
/// at 63 bytes.
const MAX_TABLE_NAME: usize = 40;

/// A table name given to a SQL store's `table_name` (`SqliteStore`, `PostgresStore`) is not a
/// plain SQL identifier.
///
/// A valid name starts with an ASCII letter or `_`, goes on with ASCII letters, digits and `_`,
/// and is at most 40 characters long (the stores derive longer names from it). Both stores
/// check names the same way, and return this error from `try_table_name`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use sessions::store::TableNameError;
/// # #[cfg(feature = "sqlite")] {
/// let store = sessions::SqliteStore::in_memory().await.unwrap();
/// let err: TableNameError = store.try_table_name("sessions; DROP TABLE users").unwrap_err();
/// assert!(err.to_string().contains("letters, digits and `_`"));
/// assert_eq!(err.name(), "sessions; DROP TABLE users");
/// # }
/// # #[cfg(feature = "postgres")] {
/// let pool = sessions::PostgresStore::pool_options().connect_lazy("postgres://localhost/app").unwrap();
/// let err: TableNameError = sessions::PostgresStore::from_pool(pool).try_table_name("9lives").unwrap_err();
/// assert!(err.to_string().contains("start with an ASCII letter"));
/// # }
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session table name {name:?}: {reason}")]
pub struct TableNameError {
    name: String,
    reason: &'static str,
}

impl TableNameError {
    /// The refused name.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # #[cfg(feature = "sqlite")] {
    /// let store = sessions::SqliteStore::in_memory().await.unwrap();
    /// assert_eq!(store.try_table_name("").unwrap_err().name(), "");
    /// # }
    /// # });
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Checks that `name` is a plain identifier of at most 40 characters.
pub(crate) fn check(name: &str) -> Result<(), TableNameError> {
    let refuse = |reason| {
        Err(TableNameError {
            name: name.to_owned(),
            reason,
        })
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return refuse("it is empty"),
        Some(b) if !(b.is_ascii_alphabetic() || b == b'_') => {
            return refuse("it must start with an ASCII letter or `_`");
        }
        Some(_) => {}
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return refuse("only ASCII letters, digits and `_` are allowed");
    }
    if name.len() > MAX_TABLE_NAME {
        return refuse("it is longer than 40 characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_identifiers_of_up_to_40_characters() {
        for good in ["sessions", "_s", "Shop_Sessions_2", &"a".repeat(40)] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("2fa", "start with"),
            ("app-sessions", "letters, digits"),
            ("sessions\"; --", "letters, digits"),
            ("sessiôns", "letters, digits"),
            (&"a".repeat(41), "longer than 40"),
        ] {
            let err = check(bad).expect_err(bad);
            assert_eq!(err.name(), bad);
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }
}
