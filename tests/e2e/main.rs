//! End-to-end tests over real files: one test binary, one module per capability.

mod cli;
mod datagen;
mod link;
mod profile;
mod public;
mod support;
