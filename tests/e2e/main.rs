//! End-to-end tests over real files: one test binary, one module per capability.

mod datagen;
mod link;
mod public;
mod support;
