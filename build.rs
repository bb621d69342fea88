//! Link the programs as position-dependent executables (`-no-pie`).
//!
//! Measured on the target machines: as a PIE, each start of docker-credential-lava applies
//! ~40k relative relocations, dirtying ~250 pages of .data.rel.ro before `main` runs; that was
//! over half of a cached `get` (2.6 ms vs 1.7 ms for `version`). Packed RELR relocations did
//! not help (the cost is the dirtied pages, not the table). The price is that the executable
//! image itself is not randomised (libraries, heap and stack still are); see docs/NOTES.md.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
