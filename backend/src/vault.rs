//! The credential vault: encrypts secrets (API account private keys, later TOTP secrets)
//! before they reach the database, and decrypts them only for the moment they are used.
//!
//! Design:
//! * AES-256-GCM with a fresh random 96-bit nonce per value. The nonce is stored next to
//!   the ciphertext ([`Sealed`]); random nonces are safe for far more than the 2^32 values
//!   one key will ever seal here.
//! * The owning row's identity is the associated data (for example
//!   `api_account:<uuid>:private_key`), so ciphertext copied into another row, or into
//!   another column, does not decrypt.
//! * The key-encryption key ([`MasterKey`]) comes from `[vault] master_key`
//!   (`ORCHARD_VAULT__MASTER_KEY` or `ORCHARD_MASTER_KEY`, exactly 64 hex characters) or
//!   from a key file created with mode 0600 on first run. There is no built-in fallback.
//! * A key-check value (a fixed marker sealed at first run, kept in `vault_meta`) tells a
//!   wrong key apart from corrupt data at start, before anything is decrypted.
//! * Every encrypted column is listed in [`SEALED_COLUMNS`], so key rotation
//!   ([`rotate_master_key`]) and the "database holds secrets" check cover all of them.
//!   Another module adds its column by adding one entry there.
//! * Plaintext lives in zeroizing memory ([`SecretBytes`]), is never `Serialize`, and prints
//!   as `[redacted]`.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore as _;
use zeroize::Zeroizing;

use crate::config::VaultConfig;
use crate::store::Store;

/// Bytes of a master key (AES-256).
pub const KEY_LEN: usize = 32;
/// Bytes of a GCM nonce.
pub const NONCE_LEN: usize = 12;
/// The plaintext sealed as the key-check value.
const KEY_CHECK_MARKER: &[u8] = b"orchard vault key check v1";
/// Name of the key-check row in `vault_meta`.
pub const KEY_CHECK_NAME: &str = "key_check";

/// `Result` of vault operations.
pub type Result<T, E = VaultError> = std::result::Result<T, E>;

/// Why the vault refused. Never holds key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "the master key must be exactly 64 hexadecimal characters (32 random bytes); generate one with `openssl rand -hex 32`"
    )]
    MalformedKey,
    #[error(
        "the master key is too weak (all its bytes are equal); generate one with `openssl rand -hex 32`"
    )]
    WeakKey,
    #[error(
        "the master key file {path} is missing, but the database already holds encrypted secrets: restore the key file or set ORCHARD_VAULT__MASTER_KEY"
    )]
    KeyFileMissing { path: PathBuf },
    #[error("cannot use the master key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the master key file {path} does not hold a valid key: {reason}")]
    KeyFileInvalid { path: PathBuf, reason: String },
    #[error(
        "wrong master key: it cannot decrypt the key-check value stored in the database; use the key this database was created with"
    )]
    WrongMasterKey,
    /// Wrong key, wrong associated data, or tampered ciphertext: GCM cannot tell which.
    #[error("an encrypted value cannot be decrypted (wrong key, wrong row, or tampered data)")]
    Decrypt,
    #[error("the vault's storage failed")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot record the key rotation in the audit log")]
    Audit(#[from] crate::audit::AuditError),
}

/// The key-encryption key. Zeroized on drop, redacted in `Debug`, never `Serialize`.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Parses 64 hex characters (surrounding whitespace ignored). Shorter, longer, non-hex and
    /// constant keys (such as all zeros) are refused.
    pub fn from_hex(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.len() != KEY_LEN * 2 {
            return Err(VaultError::MalformedKey);
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(text, bytes.as_mut_slice()).map_err(|_| VaultError::MalformedKey)?;
        if bytes.iter().all(|b| *b == bytes[0]) {
            return Err(VaultError::WeakKey);
        }
        Ok(Self(bytes))
    }

    /// 32 bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut_slice());
        Self(bytes)
    }

    /// The hex form, in zeroizing memory (written to the key file).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_slice()))
    }
}

/// An encrypted value as stored: the nonce and the ciphertext with its 16-byte GCM tag.
/// Not secret, but not meant for display either; `Debug` shows only lengths.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.ciphertext.len())
    }
}

impl Sealed {
    /// Rebuilds a stored value; `Err` when the nonce column does not have 12 bytes.
    pub fn from_parts(nonce: &[u8], ciphertext: Vec<u8>) -> Result<Self, String> {
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| format!("nonce has {} bytes, expected {NONCE_LEN}", nonce.len()))?;
        Ok(Self { nonce, ciphertext })
    }
}

/// Decrypted bytes: zeroized on drop, redacted in `Debug`, neither `Serialize` nor `Display`.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// The plaintext. Keep the borrow short; never log or format it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([redacted])")
    }
}

/// Seals and opens values with one master key. Cheap to share behind an `Arc`.
#[derive(Clone)]
pub struct Vault {
    cipher: Aes256Gcm,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault([redacted])")
    }
}

impl Vault {
    /// A vault using `key` (no storage checks; see [`Vault::open_at_startup`]).
    pub fn new(key: &MasterKey) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.0.as_slice().into()),
        }
    }

    /// Encrypts `plaintext` bound to `aad` (the owning row's identity) under a fresh nonce.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // Only fails for plaintexts beyond GCM's 64 GiB limit.
            .expect("AES-GCM encryption of a bounded value");
        Sealed { nonce, ciphertext }
    }

    /// Decrypts a value sealed with the same key and the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &Sealed) -> Result<SecretBytes> {
        self.cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map(|plain| SecretBytes(Zeroizing::new(plain)))
            .map_err(|_| VaultError::Decrypt)
    }

    /// Loads the master key as configured and checks it against the database:
    /// 1. `[vault] master_key` if set, else the key file;
    /// 2. a missing key file is created (0600, 32 random bytes in hex), unless the database
    ///    already holds encrypted values, which would then be lost: that is refused;
    /// 3. the stored key-check value must open (else "wrong master key"); on first run it is
    ///    written.
    #[tracing::instrument(skip_all)]
    pub async fn open_at_startup(config: &VaultConfig, store: &dyn Store) -> Result<Self> {
        let has_secrets = store.has_sealed_values(SEALED_COLUMNS).await?;
        let (key, fresh) = match &config.master_key {
            Some(hex) => (MasterKey::from_hex(hex.expose_secret())?, false),
            None => load_or_create_key_file(&config.key_file, has_secrets)?,
        };
        let vault = Self::new(&key);
        let aad = key_check_aad();
        match store.key_check().await? {
            Some(check) => match vault.open(&aad, &check) {
                Ok(plain) if plain.expose() == KEY_CHECK_MARKER => {}
                // A new key on a database without secrets: nothing is lost by re-keying it.
                _ if fresh && !has_secrets => {
                    store
                        .set_key_check(&vault.seal(&aad, KEY_CHECK_MARKER))
                        .await?;
                }
                _ => return Err(VaultError::WrongMasterKey),
            },
            None => {
                store
                    .set_key_check(&vault.seal(&aad, KEY_CHECK_MARKER))
                    .await?;
            }
        }
        Ok(vault)
    }
}

/// Associated data of the key-check value.
fn key_check_aad() -> Vec<u8> {
    format!("vault_meta:{KEY_CHECK_NAME}").into_bytes()
}

/// Reads the key file, or creates it when it is missing and nothing needs the old key.
/// Returns the key and whether it was just created.
fn load_or_create_key_file(path: &Path, has_secrets: bool) -> Result<(MasterKey, bool)> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = MasterKey::from_hex(&text).map_err(|e| VaultError::KeyFileInvalid {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            warn_if_readable_by_others(path);
            Ok((key, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if has_secrets {
                return Err(VaultError::KeyFileMissing {
                    path: path.to_owned(),
                });
            }
            let key = MasterKey::generate();
            write_key_file(path, &key).map_err(|source| VaultError::KeyFile {
                path: path.to_owned(),
                source,
            })?;
            tracing::info!(path = %path.display(), "created a new vault master key file (mode 0600); back it up");
            Ok((key, true))
        }
        Err(source) => Err(VaultError::KeyFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Creates the key file exclusively (never overwrites), readable by the owner only.
fn write_key_file(path: &Path, key: &MasterKey) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Mode is applied at creation, so the key is never briefly world-readable.
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(key.to_hex().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the vault key file is accessible to other users; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// One encrypted column: where its nonce and ciphertext live and how its associated data is
/// derived from the row id. Names are compile-time constants, never user input.
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    pub table: &'static str,
    /// Primary key column; compared as text so UUID and TEXT ids work on both databases.
    pub id_column: &'static str,
    pub nonce_column: &'static str,
    pub ciphertext_column: &'static str,
    /// Associated data for the row whose id (text form) is given.
    pub aad: fn(&str) -> Vec<u8>,
    /// Whether a row in this column means "the database holds secrets" (false for the
    /// key-check value, which holds none).
    pub holds_secrets: bool,
}

/// Associated data of an API account's private key.
pub fn api_account_key_aad(id: &str) -> Vec<u8> {
    format!("api_account:{id}:private_key").into_bytes()
}

/// Associated data of a user's TOTP secret (the identity module seals with the same).
pub fn totp_secret_aad(user_id: &str) -> Vec<u8> {
    format!("orchard.totp:{user_id}").into_bytes()
}

fn vault_meta_aad(name: &str) -> Vec<u8> {
    format!("vault_meta:{name}").into_bytes()
}

/// Every encrypted column. Rotation re-encrypts all of them in one transaction.
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "api_accounts",
        id_column: "id",
        nonce_column: "private_key_nonce",
        ciphertext_column: "private_key_ciphertext",
        aad: api_account_key_aad,
        holds_secrets: true,
    },
    SealedColumn {
        table: "users",
        id_column: "id",
        nonce_column: "totp_nonce",
        ciphertext_column: "totp_secret",
        aad: totp_secret_aad,
        holds_secrets: true,
    },
    SealedColumn {
        table: "vault_meta",
        id_column: "name",
        nonce_column: "nonce",
        ciphertext_column: "ciphertext",
        aad: vault_meta_aad,
        holds_secrets: false,
    },
];

/// Re-encrypts every value of every [`SEALED_COLUMNS`] entry from `old` to `new` in one
/// transaction: either all values move to the new key or none does. Returns how many values
/// were re-encrypted. Afterwards, configure the new key (env or key file) before restarting.
#[tracing::instrument(skip_all)]
pub async fn rotate_master_key(store: &dyn Store, old: &Vault, new: &Vault) -> Result<usize> {
    let reseal = |column: &SealedColumn, id: &str, sealed: &Sealed| {
        let aad = (column.aad)(id);
        let plain = old.open(&aad, sealed).map_err(|_| {
            format!(
                "{}.{} of row {id} does not open with the old key",
                column.table, column.ciphertext_column
            )
        })?;
        Ok(new.seal(&aad, plain.expose()))
    };
    let count = store.reseal_all(SEALED_COLUMNS, &reseal).await?;
    tracing::info!(count, "re-encrypted vault values under the new master key");
    crate::audit::append(
        store,
        &crate::audit::Actor::system(),
        crate::audit::AuditAction::MasterKeyRotated,
        "vault",
        serde_json::json!({ "values": count }),
    )
    .await?;
    Ok(count)
}

/// What [`rotate_configured_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRotation {
    /// Values re-encrypted.
    pub values: usize,
    /// The key file now holds the new key; `false` when the key comes from the
    /// environment, which the operator must now change.
    pub key_file_replaced: bool,
}

/// Rotates the configured master key (run while Orchard is stopped): checks the current
/// key, re-encrypts every value under `new` in one transaction, then replaces the key file.
///
/// With a key file, the new key is first written to `<key file>.new` (0600), so that an
/// interruption between the database commit and the file swap leaves the new key on disk;
/// the swap is a rename. With `[vault] master_key` (environment), nothing is written: the
/// caller tells the operator to set the new key.
pub async fn rotate_configured_key(
    config: &VaultConfig,
    store: &dyn Store,
    new: &MasterKey,
) -> Result<KeyRotation> {
    let old = Vault::open_at_startup(config, store).await?;
    let from_file = config.master_key.is_none();
    let pending = config.key_file.with_extension("key.new");
    if from_file {
        let _ = std::fs::remove_file(&pending);
        write_key_file(&pending, new).map_err(|source| VaultError::KeyFile {
            path: pending.clone(),
            source,
        })?;
    }
    let values = match rotate_master_key(store, &old, &Vault::new(new)).await {
        Ok(values) => values,
        Err(err) => {
            if from_file {
                let _ = std::fs::remove_file(&pending);
            }
            return Err(err);
        }
    };
    if from_file {
        std::fs::rename(&pending, &config.key_file).map_err(|source| VaultError::KeyFile {
            path: config.key_file.clone(),
            source,
        })?;
    }
    Ok(KeyRotation {
        values,
        key_file_replaced: from_file,
    })
}

/// TOTP secrets are sealed by the same vault, bound to `orchard.totp:<user id>`.
impl crate::identity::totp::SecretSealer for Vault {
    fn seal(
        &self,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<crate::store::identity::SealedSecret, crate::identity::totp::SealError> {
        let sealed = Vault::seal(self, context, plaintext);
        Ok(crate::store::identity::SealedSecret {
            ciphertext: sealed.ciphertext,
            nonce: sealed.nonce.to_vec(),
        })
    }

    fn open(
        &self,
        context: &[u8],
        sealed: &crate::store::identity::SealedSecret,
    ) -> Result<Zeroizing<Vec<u8>>, crate::identity::totp::SealError> {
        let sealed = Sealed::from_parts(&sealed.nonce, sealed.ciphertext.clone())
            .map_err(crate::identity::totp::SealError)?;
        let plain = Vault::open(self, context, &sealed)
            .map_err(|e| crate::identity::totp::SealError(e.to_string()))?;
        Ok(Zeroizing::new(plain.expose().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        let mut hex = String::new();
        for i in 0..KEY_LEN {
            hex.push_str(&format!("{:02x}", byte.wrapping_add(i as u8)));
        }
        MasterKey::from_hex(&hex).unwrap()
    }

    #[test]
    fn sealed_values_open_with_the_same_key_and_aad() {
        let vault = Vault::new(&key(1));
        let sealed = vault.seal(b"row:1", b"secret bytes");
        assert_eq!(
            vault.open(b"row:1", &sealed).unwrap().expose(),
            b"secret bytes"
        );
        assert_ne!(sealed.ciphertext, b"secret bytes");
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let vault = Vault::new(&key(1));
        let a = vault.seal(b"row:1", b"x");
        let b = vault.seal(b"row:1", b"x");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn ciphertext_moved_to_another_row_does_not_open() {
        let vault = Vault::new(&key(1));
        let sealed = vault.seal(b"api_account:a:private_key", b"secret");
        assert!(matches!(
            vault.open(b"api_account:b:private_key", &sealed),
            Err(VaultError::Decrypt)
        ));
    }

    #[test]
    fn another_key_does_not_open() {
        let sealed = Vault::new(&key(1)).seal(b"row", b"secret");
        assert!(Vault::new(&key(2)).open(b"row", &sealed).is_err());
    }

    #[test]
    fn tampered_ciphertext_or_nonce_does_not_open() {
        let vault = Vault::new(&key(1));
        let sealed = vault.seal(b"row", b"secret");
        let mut bad = sealed.clone();
        bad.ciphertext[0] ^= 1;
        assert!(vault.open(b"row", &bad).is_err());
        let mut bad = sealed.clone();
        let last = bad.ciphertext.len() - 1;
        bad.ciphertext[last] ^= 0x80;
        assert!(vault.open(b"row", &bad).is_err());
        let mut bad = sealed;
        bad.nonce[0] ^= 1;
        assert!(vault.open(b"row", &bad).is_err());
    }

    #[test]
    fn malformed_and_weak_keys_are_refused() {
        assert!(matches!(
            MasterKey::from_hex(""),
            Err(VaultError::MalformedKey)
        ));
        assert!(matches!(
            MasterKey::from_hex(&"ab".repeat(16)),
            Err(VaultError::MalformedKey)
        ));
        assert!(matches!(
            MasterKey::from_hex(&"zz".repeat(32)),
            Err(VaultError::MalformedKey)
        ));
        assert!(matches!(
            MasterKey::from_hex(&"00".repeat(32)),
            Err(VaultError::WeakKey)
        ));
        assert!(MasterKey::from_hex(&format!("  {}\n", key(7).to_hex().as_str())).is_ok());
    }

    #[test]
    fn keys_and_plaintext_never_print() {
        let k = key(9);
        let hex = k.to_hex();
        let vault = Vault::new(&k);
        let opened = vault
            .open(b"r", &vault.seal(b"r", b"plain-canary"))
            .unwrap();
        for printed in [
            format!("{k:?}"),
            format!("{vault:?}"),
            format!("{opened:?}"),
        ] {
            assert!(!printed.contains(hex.as_str()), "{printed}");
            assert!(!printed.contains("plain-canary"), "{printed}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_new_key_file_is_created_with_mode_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let (created, fresh) = load_or_create_key_file(&path, false).unwrap();
        assert!(fresh);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        let (read, fresh) = load_or_create_key_file(&path, true).unwrap();
        assert!(!fresh);
        assert_eq!(created.to_hex().as_str(), read.to_hex().as_str());
    }

    #[test]
    fn a_missing_key_file_is_refused_when_secrets_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let err = load_or_create_key_file(&path, true).unwrap_err();
        assert!(matches!(err, VaultError::KeyFileMissing { .. }), "{err}");
        assert!(err.to_string().contains("master.key"));
        assert!(!path.exists());
    }
}
