//! The ReN3 vendor tool's front ends: the `ren3-issuer` command line
//! ([`cli`]) and the web console ([`web`]). Both are glue over
//! `ren3_issuer_core`, where every rule and the store live: they parse
//! what a person typed or posted, call the core, and render its answer.

pub mod cli;
mod present;
pub mod web;
