//! The documentation states numbers that can drift from the code: the segment header's
//! size, the subscriber entry's size and the layout version. This test reads
//! `docs/design.md` and `docs/guarantees.md` and fails when a number they state is not the
//! one the code has, so a layout change cannot leave the docs behind.

use std::mem::size_of;
use std::path::PathBuf;

use ringcast_core::layout::{Header, SubscriberEntry, LAYOUT_VERSION};

fn doc(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The number right after each occurrence of `before` (case-insensitive), in order.
/// Panics if `before` does not occur at all, so a reworded sentence is noticed too.
fn numbers_after(text: &str, before: &str, file: &str) -> Vec<u64> {
    let lower = text.to_lowercase();
    let key = before.to_lowercase();
    let found: Vec<u64> = lower
        .match_indices(&key)
        .map(|(i, _)| {
            let rest = &lower[i + key.len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits
                .parse()
                .unwrap_or_else(|_| panic!("{file}: no number after {before:?}"))
        })
        .collect();
    assert!(
        !found.is_empty(),
        "{file} no longer says {before:?}: keep the statement (this test checks it) or update the test"
    );
    found
}

fn check(file: &str, before: &str, actual: u64) {
    let text = doc(file);
    for stated in numbers_after(&text, before, file) {
        assert_eq!(
            stated, actual,
            "docs/{file} says {before:?}{stated}, but the code has {actual}: update the doc"
        );
    }
}

#[test]
fn design_doc_states_the_current_header_size() {
    check("design.md", "Header (repr C, ", size_of::<Header>() as u64);
}

#[test]
fn design_doc_states_the_current_entry_size() {
    check(
        "design.md",
        "SubscriberEntry x max_subscribers, ",
        size_of::<SubscriberEntry>() as u64,
    );
}

#[test]
fn docs_state_the_current_layout_version() {
    check(
        "design.md",
        "the current layout version is ",
        u64::from(LAYOUT_VERSION),
    );
    check(
        "guarantees.md",
        "Segments written by this build (layout version ",
        u64::from(LAYOUT_VERSION),
    );
}
