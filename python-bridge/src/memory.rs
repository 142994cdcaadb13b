//! A per-call memory limit for Python scripts.
//!
//! CPython has no limit of its own. Before the interpreter starts, the bridge wraps its
//! object and memory allocators: each block carries its size in a 16-byte header (keeping
//! 16-byte alignment). While a call runs, its thread counts what it allocates less what it
//! frees, and an allocation that would take that past `memory_limit` is refused. The count is
//! per thread because calls from several host threads interleave at the interpreter's switch
//! interval. Python turns the refusal into a `MemoryError` in the script, which the bridge
//! reports like any other exception; the host goes on.

use std::cell::Cell;
use std::ffi::c_void;

use pyo3::ffi::{PyMem_GetAllocator, PyMem_SetAllocator, PyMemAllocatorDomain, PyMemAllocatorEx};

const HEADER: usize = 16;

thread_local! {
    /// The limit of the call running on this thread (0: none), and what it has taken so far.
    static CALL: Cell<(usize, isize)> = const { Cell::new((0, 0)) };
}

fn refuse(extra: usize) -> bool {
    let (limit, taken) = CALL.get();
    limit > 0 && taken.saturating_add(extra as isize) > limit as isize
}

fn count(bytes: isize) {
    let (limit, taken) = CALL.get();
    if limit > 0 {
        CALL.set((limit, taken.saturating_add(bytes)));
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
    count(size as isize);
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
    count(-(old as isize));
    finish(moved, size)
}

extern "C" fn free(ctx: *mut c_void, ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    let (block, size) = block_of(ptr);
    count(-(size as isize));
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

/// Starts counting this thread's call against `limit` bytes (0: no limit).
pub fn begin(limit: usize) {
    CALL.set((limit, 0));
}

/// Stops counting this thread's call.
pub fn end() {
    CALL.set((0, 0));
}
