//! Test fixture: a well-formed shared library that is not a sidecar plugin.
//! The host must refuse it by name ("exports no abi_stable root module")
//! instead of crashing or guessing.

/// A symbol, so the library is not empty.
#[no_mangle]
pub extern "C" fn not_a_plugin() -> i32 {
    42
}
