//! Benchmarks of sessiond; see the README in this folder.
