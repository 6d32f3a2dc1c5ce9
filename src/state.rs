//! The shared state every request handler and background job gets: the
//! configuration and the infrastructure handles, nothing from a capability.

use std::sync::Arc;

use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::infra::claims::ClaimSet;
use crate::infra::crypto::{PasswordHasher, SecretKey};
use crate::infra::db::{Db, DbError};
use crate::infra::fsutil;
use crate::infra::mail::Mailer;
use crate::infra::plugins::PluginHost;
use crate::infra::ratelimit::RateLimiter;
use crate::infra::render::{RenderedEmail, Renderer};
use crate::infra::search::SearchIndex;
use crate::infra::storage::Store;
use crate::infra::web::WebSettings;
use crate::infra::web::cookies::CookieNames;
use crate::infra::web::csrf::origin_of;

/// Everything a request handler or background job needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub mailer: Mailer,
    pub renderer: Arc<Renderer>,
    pub key: SecretKey,
    pub hasher: Arc<PasswordHasher>,
    pub limiter: Arc<RateLimiter>,
    pub web: WebSettings,
    pub store: Store,
    pub search: Arc<SearchIndex>,
    /// Text extraction for search runs one document at a time.
    pub indexing: Arc<tokio::sync::Semaphore>,
    /// Resumable uploads being written right now. A second request for the same
    /// upload (two tabs, or a retry while the first still runs) is refused rather
    /// than letting two writers append to one file.
    pub uploads_in_flight: Arc<ClaimSet<i64>>,
    /// Bounds concurrent argon2 work (each hash takes its full memory cost), so a
    /// flood of sign-in attempts queues instead of exhausting memory.
    hash_slots: Arc<tokio::sync::Semaphore>,
    /// Task-type plugins loaded from `plugins.dir` at start. Calls block: use
    /// `spawn_blocking`.
    pub plugins: Arc<PluginHost>,
}

impl AppState {
    /// Opens the data directory (creating it on first start) and everything in it.
    pub fn open(config: Config) -> anyhow::Result<Self> {
        let renderer = Renderer::new(&config)?;
        let data = &config.storage.data_dir;
        fsutil::private_by_default();
        fsutil::private_dir(data).map_err(|e| {
            anyhow::anyhow!("cannot create the data directory {}: {e}", data.display())
        })?;
        fsutil::close_modes(data, |name| fsutil::DATA_ENTRIES.contains(&name));
        let outbox = config.outbox_dir();
        if config.mail.smtp_host.is_empty() {
            fsutil::private_dir(&outbox).map_err(|e| {
                anyhow::anyhow!(
                    "cannot create the outbox directory {}: {e}",
                    outbox.display()
                )
            })?;
            if !outbox.starts_with(data) {
                fsutil::close_modes(&outbox, |name| name.ends_with(".eml"));
            }
        }
        let db = Db::open(&data.join("portal.db"))?;
        let key = SecretKey::load_or_create(&data.join("keys").join("secret.key"))?;
        let store = Store::open(data, &data.join("keys"))?;
        let search = Arc::new(SearchIndex::open(&data.join("search"))?);
        let hasher = PasswordHasher::new(&config.security)?;
        let mailer = Mailer::new(&config, db.clone())?;
        let plugins = Arc::new(PluginHost::open(&config)?);
        let web = WebSettings {
            https: config.is_https(),
            trust_proxy_headers: config.server.trust_proxy_headers,
            trusted_proxies: Arc::new(config.server.proxy_networks().unwrap_or_default()),
            cookies: CookieNames::new(config.is_https()),
            public_origin: origin_of(config.server.public_url.as_str()).unwrap_or_default(),
        };
        Ok(AppState {
            config: Arc::new(config),
            db,
            mailer,
            renderer: Arc::new(renderer),
            key,
            hasher: Arc::new(hasher),
            limiter: Arc::new(RateLimiter::default()),
            web,
            store,
            search,
            uploads_in_flight: Arc::default(),
            indexing: Arc::new(tokio::sync::Semaphore::new(1)),
            hash_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            )),
            plugins,
        })
    }

    /// Runs `work` in a write transaction that queues mail, then wakes the mail
    /// worker so that the mail goes out now rather than at its next round.
    pub async fn write_and_mail<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&rusqlite::Transaction) -> Result<T, E> + Send + 'static,
    {
        let done = self.db.write(work).await?;
        self.mailer.wake();
        Ok(done)
    }

    pub fn email(&self, template: &str, ctx: minijinja::Value) -> AppResult<RenderedEmail> {
        Ok(self.renderer.render_email(template, ctx)?)
    }

    /// argon2id off the async runtime.
    pub async fn hash_secret(&self, secret: String) -> AppResult<String> {
        self.with_hasher(move |hasher| hasher.hash(&secret))
            .await?
            .map_err(AppError::Internal)
    }

    /// Constant work whether or not `stored` exists (a decoy hash is checked instead).
    pub async fn verify_secret(&self, secret: String, stored: Option<String>) -> AppResult<bool> {
        self.with_hasher(move |hasher| hasher.verify(&secret, stored.as_deref()))
            .await
    }

    /// Runs `work` on a blocking thread once one of the hash slots is free.
    async fn with_hasher<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> AppResult<T> {
        let _slot = self
            .hash_slots
            .acquire()
            .await
            .map_err(AppError::internal)?;
        let hasher = self.hasher.clone();
        Ok(tokio::task::spawn_blocking(move || work(&hasher)).await?)
    }
}
