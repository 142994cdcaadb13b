//! A per-call memory limit for Python scripts.
//!
//! CPython has no limit of its own. Before the interpreter starts, the bridge wraps its
//! object and memory allocators: each block carries its size in a 16-byte header (keeping
//! 16-byte alignment), a counter follows what is live, and while a call runs an allocation
//! that would take the call more than `memory_limit` past what was live when it began is
//! refused. Python turns the refusal into a `MemoryError` in the script, which the bridge
//! reports like any other exception; the host goes on.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pyo3::ffi::{PyMem_GetAllocator, PyMem_SetAllocator, PyMemAllocatorDomain, PyMemAllocatorEx};

const HEADER: usize = 16;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static BASELINE: AtomicUsize = AtomicUsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(0);
static ACTIVE: AtomicBool = AtomicBool::new(false);

fn refuse(extra: usize) -> bool {
    ACTIVE.load(Ordering::Relaxed) && {
        let limit = LIMIT.load(Ordering::Relaxed);
        limit > 0 && LIVE.load(Ordering::Relaxed).saturating_add(extra) > BASELINE.load(Ordering::Relaxed) + limit
    }
}

/// The original allocator of a domain, kept as our allocator's context.
fn original(ctx: *mut c_void) -> &'static PyMemAllocatorEx {
    // SAFETY: every context handed to Python by `install` is a leaked PyMemAllocatorEx.
    unsafe { &*ctx.cast::<PyMemAllocatorEx>() }
}

/// Records `size` in the header of `block` and returns the address after the header.
fn finish(block: *mut c_void, size: usize) -> *mut c_void {
    if block.is_null() {
        return block;
    }
    // SAFETY: `block` was allocated with HEADER extra bytes, aligned for a usize.
    unsafe { block.cast::<usize>().write(size) };
    LIVE.fetch_add(size, Ordering::Relaxed);
    // SAFETY: the block is at least HEADER bytes long.
    unsafe { block.cast::<u8>().add(HEADER).cast() }
}

/// The block and size behind an address this module returned.
fn block_of(ptr: *mut c_void) -> (*mut c_void, usize) {
    // SAFETY: `ptr` came from `finish`, so a header precedes it within the same block.
    let block: *mut c_void = unsafe { ptr.cast::<u8>().sub(HEADER).cast() };
    // SAFETY: the header holds the size written by `finish`.
    (block, unsafe { block.cast::<usize>().read() })
}

extern "C" fn malloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    if refuse(size) {
        return std::ptr::null_mut();
    }
    let original = original(ctx);
    let Some(allocate) = original.malloc else { return std::ptr::null_mut() };
    finish(allocate(original.ctx, size + HEADER), size)
}

extern "C" fn calloc(ctx: *mut c_void, count: usize, each: usize) -> *mut c_void {
    let Some(size) = count.checked_mul(each) else { return std::ptr::null_mut() };
    if refuse(size) {
        return std::ptr::null_mut();
    }
    let original = original(ctx);
    let Some(allocate) = original.calloc else { return std::ptr::null_mut() };
    finish(allocate(original.ctx, 1, size + HEADER), size)
}

extern "C" fn realloc(ctx: *mut c_void, ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        return malloc(ctx, size);
    }
    let (block, old) = block_of(ptr);
    if size > old && refuse(size - old) {
        return std::ptr::null_mut();
    }
    let original = original(ctx);
    let Some(reallocate) = original.realloc else { return std::ptr::null_mut() };
    let moved = reallocate(original.ctx, block, size + HEADER);
    if moved.is_null() {
        return moved;
    }
    LIVE.fetch_sub(old, Ordering::Relaxed);
    finish(moved, size)
}

extern "C" fn free(ctx: *mut c_void, ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    let (block, size) = block_of(ptr);
    LIVE.fetch_sub(size, Ordering::Relaxed);
    let original = original(ctx);
    if let Some(release) = original.free {
        release(original.ctx, block);
    }
}

/// Wraps the MEM and OBJ allocators. Must run before the interpreter starts, so that every
/// block freed through the wrapper was allocated through it.
pub fn install() {
    for domain in [PyMemAllocatorDomain::PYMEM_DOMAIN_MEM, PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ] {
        let kept: &'static mut PyMemAllocatorEx = Box::leak(Box::new(PyMemAllocatorEx {
            ctx: std::ptr::null_mut(),
            malloc: None,
            calloc: None,
            realloc: None,
            free: None,
        }));
        // SAFETY: PyMem_GetAllocator fills the struct it is given; callable before
        // initialisation.
        unsafe { PyMem_GetAllocator(domain, kept) };
        let mut ours = PyMemAllocatorEx {
            ctx: (kept as *mut PyMemAllocatorEx).cast(),
            malloc: Some(malloc),
            calloc: Some(calloc),
            realloc: Some(realloc),
            free: Some(free),
        };
        // SAFETY: called once, before Py_Initialize, with a complete allocator whose context
        // lives for the process.
        unsafe { PyMem_SetAllocator(domain, &mut ours) };
    }
}

/// Starts counting a call against `limit` bytes (0: no limit). Called with the GIL.
pub fn begin(limit: usize) {
    BASELINE.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    LIMIT.store(limit, Ordering::Relaxed);
    ACTIVE.store(true, Ordering::Relaxed);
}

/// Stops counting. Called with the GIL.
pub fn end() {
    ACTIVE.store(false, Ordering::Relaxed);
}
