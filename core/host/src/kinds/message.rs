//! The host's transport into a module's message vtable (Allocator, Hook, Isolator).

use modhost_abi::{
    ALLOCATOR_METHODS, AllocatorVtable, Answer, Buffer, Bytes, CallError, HOOK_METHODS, HookVtable, ISOLATOR_METHODS,
    IsolatorVtable, Kind, MessageFn, MessageTransport, Remote,
};

use super::{KindHandle, RawInstance, outcome};

/// Calls a module's message methods through its vtable.
pub struct VtableTransport<V: 'static> {
    raw: RawInstance,
    /// A copy of the module's vtable; entries a module built for an earlier ABI minor lacks
    /// are never called.
    vtable: Box<V>,
    /// The kind's methods in vtable order, and how many of them the module has.
    methods: &'static [&'static str],
    present: usize,
}

impl<V: Send + Sync + 'static> MessageTransport<V> for VtableTransport<V> {
    fn call(
        &mut self,
        _method: &'static str,
        entry: fn(&V) -> MessageFn,
        request: &[u8],
        response: &mut dyn FnMut(Answer<'_>) -> Result<(), CallError>,
    ) -> Result<(), CallError> {
        let function = entry(&self.vtable);
        let mut output = Buffer::empty();
        let mut error = Buffer::empty();
        // SAFETY: the instance is live and used only through `&mut self`; the vtable was
        // checked at creation; the request outlives the call; both buffers are valid.
        let status = unsafe { function(self.raw.this, Bytes::new(request), &mut output, &mut error) };
        // SAFETY: the module filled `error` by the buffer contract (or left it empty).
        let result = unsafe { outcome(status, error) };
        // SAFETY: the module filled `output` by the buffer contract (or left it empty), whose
        // `release` any thread may call; it is released even when the call failed (dropped).
        let answer = unsafe { Answer::handed(output) };
        result.and_then(|()| response(answer))
    }

    fn json_messages(&self) -> bool {
        self.raw.json_messages
    }

    /// A module built for an earlier ABI minor lacks the methods appended since: the kind's
    /// default answers for them (for `update_quota`, a refusal).
    fn implements(&self, method: &'static str) -> bool {
        self.present == self.methods.len() || self.methods[..self.present].contains(&method)
    }
}

/// An Allocator instance in a loaded library.
pub type AllocatorHandle = Remote<VtableTransport<AllocatorVtable>>;
/// A Hook instance in a loaded library.
pub type HookHandle = Remote<VtableTransport<HookVtable>>;
/// An Isolator instance in a loaded library.
pub type IsolatorHandle = Remote<VtableTransport<IsolatorVtable>>;

/// The words of a message vtable before its methods: `size` and `destroy`.
const HEADER_WORDS: usize = 2;

macro_rules! message_handle {
    ($vtable:ty, $kind:expr, $methods:expr, first published with $first:expr) => {
        impl KindHandle for Remote<VtableTransport<$vtable>> {
            const KIND: Kind = $kind;

            fn from_raw(raw: RawInstance) -> Result<Self, String> {
                let oldest = (HEADER_WORDS + $first) * size_of::<usize>();
                let (vtable, have) = raw.message_vtable_copy::<$vtable>($kind, oldest)?;
                let present = have / size_of::<usize>() - HEADER_WORDS;
                Ok(Remote(VtableTransport { raw, vtable, methods: $methods, present }))
            }
        }
        impl super::sealed::Sealed for Remote<VtableTransport<$vtable>> {}
    };
}

// How many methods each vtable had in ABI 1.0; later minors appended the rest.
message_handle!(AllocatorVtable, Kind::Allocator, ALLOCATOR_METHODS, first published with ALLOCATOR_METHODS.len() - 2);
message_handle!(HookVtable, Kind::Hook, HOOK_METHODS, first published with HOOK_METHODS.len());
message_handle!(IsolatorVtable, Kind::Isolator, ISOLATOR_METHODS, first published with ISOLATOR_METHODS.len());
