//! The host's transport into a module's message vtable (Allocator, Hook, Isolator).

use modhost_abi::{
    AllocatorVtable, Answer, Buffer, Bytes, CallError, HookVtable, IsolatorVtable, Kind, MessageFn, MessageTransport,
    Remote,
};

use super::{KindHandle, RawInstance, outcome};

/// Calls a module's message methods through its vtable.
pub struct VtableTransport<V: 'static> {
    raw: RawInstance,
    vtable: &'static V,
}

impl<V: Sync + 'static> MessageTransport<V> for VtableTransport<V> {
    fn call(
        &mut self,
        _method: &'static str,
        entry: fn(&V) -> MessageFn,
        request: &[u8],
        response: &mut dyn FnMut(Answer<'_>) -> Result<(), CallError>,
    ) -> Result<(), CallError> {
        let function = entry(self.vtable);
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
}

/// An Allocator instance in a loaded library.
pub type AllocatorHandle = Remote<VtableTransport<AllocatorVtable>>;
/// A Hook instance in a loaded library.
pub type HookHandle = Remote<VtableTransport<HookVtable>>;
/// An Isolator instance in a loaded library.
pub type IsolatorHandle = Remote<VtableTransport<IsolatorVtable>>;

macro_rules! message_handle {
    ($vtable:ty, $kind:expr) => {
        impl KindHandle for Remote<VtableTransport<$vtable>> {
            const KIND: Kind = $kind;

            fn from_raw(raw: RawInstance) -> Result<Self, String> {
                let vtable = raw.vtable::<$vtable>($kind)?;
                Ok(Remote(VtableTransport { raw, vtable }))
            }
        }
        impl super::sealed::Sealed for Remote<VtableTransport<$vtable>> {}
    };
}

message_handle!(AllocatorVtable, Kind::Allocator);
message_handle!(HookVtable, Kind::Hook);
message_handle!(IsolatorVtable, Kind::Isolator);
