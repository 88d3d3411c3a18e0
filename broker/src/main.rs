//! The `strom` binary: `node`, `dev`, and the admin and client commands.

#[cfg(not(madsim))]
use mimalloc::MiMalloc;

// mimalloc reserves huge allocations without committing them, so a tiny frame that
// claims 2^31 array elements fails to decode and its connection is closed (Kafka's
// answer to a malformed request) instead of aborting the process. Under an address
// space limit (`ulimit -v`) the reservation still fails: docs/STATUS.md, issue 15.
#[cfg(not(madsim))]
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[cfg(not(madsim))]
mod cli;

#[cfg(not(madsim))]
extern "C" {
    /// mimalloc's option setter (linked through the `mimalloc` crate).
    fn mi_option_set(option: i32, value: std::os::raw::c_long);
}

/// `mi_option_arena_eager_commit` (4) = 0: commit arena memory as it is used, not the
/// whole arena up front (an idle node then holds ~14 MB instead of ~57 MB). It must run
/// before the first allocation, so it is a constructor (`.init_array`), not code in main.
#[cfg(all(not(madsim), target_os = "linux"))]
#[used]
#[link_section = ".init_array"]
static LAZY_ARENA_COMMIT: extern "C" fn() = {
    extern "C" fn lazy_arena_commit() {
        unsafe { mi_option_set(4, 0) };
    }
    lazy_arena_commit
};

#[cfg(not(madsim))]
fn main() {
    std::process::exit(cli::main());
}

/// Under `--cfg madsim` the library runs inside simulation tests; the binary has no
/// simulated entry point.
#[cfg(madsim)]
fn main() {
    eprintln!("this strom binary was built with --cfg madsim; run the simulation tests instead");
    std::process::exit(2);
}
