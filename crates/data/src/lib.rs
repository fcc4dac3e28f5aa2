//! tinycats data stage: getting Oxford-IIIT Pet style datasets onto disk (fetch, import),
//! making them safe to train on (verify), turning them into a compact training cache (prepare)
//! and reading that cache back in batches (loader). Nothing here knows about models.

pub mod cache;
pub mod fetch;
pub mod fixtures;
pub mod hashing;
pub mod import;
pub mod labels;
pub mod layout;
pub mod loader;
pub mod pixels;
pub mod prepare;
pub mod stats;
pub mod verify;
