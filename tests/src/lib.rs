//! Test support shared by the end-to-end test binaries.
