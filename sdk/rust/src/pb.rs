//! The plugin protocol's messages and service, generated from proto/plugin.proto by
//! tonic-prost-build and committed, so that building a plugin needs no protoc.
#![allow(clippy::all, missing_docs)]
include!("pb/heddle.plugin.v1.rs");
