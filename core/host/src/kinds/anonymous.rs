//! The host's handle of an Anonymous instance.

use modhost_abi::{Anonymous, AnonymousVtable, Kind};

use super::{KindHandle, RawInstance};

/// An Anonymous instance: it lives until the handle is dropped.
pub struct AnonymousHandle {
    _raw: RawInstance,
}

impl KindHandle for AnonymousHandle {
    const KIND: Kind = Kind::Anonymous;

    fn from_raw(raw: RawInstance) -> Result<Self, String> {
        raw.vtable::<AnonymousVtable>(Kind::Anonymous)?;
        Ok(AnonymousHandle { _raw: raw })
    }
}

impl Anonymous for AnonymousHandle {}
