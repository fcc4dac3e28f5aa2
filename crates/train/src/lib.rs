//! The training engine. It talks to the world only through `Sink`s (metrics, checkpoints,
//! predictions), so the CLI, the server's job runner and the tests drive the same loop.

pub mod autoencoder;
pub mod classifier;
pub mod config;
pub mod features;
pub mod gen_eval;
pub mod generator;
pub mod metrics;
pub mod predictor;
pub mod repa;
pub mod schedule;
pub mod scratch;
pub mod sink;
pub mod weights;
