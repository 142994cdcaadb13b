//! `declare_module!`: exports a Rust type as a module.

/// Exports a Rust type as a module: an unmangled [`ModuleDescriptor`](crate::ModuleDescriptor)
/// static named after the module, plus the `extern "C"` glue of its kind.
///
/// The type implements [`Construct`](crate::Construct) and the kind's trait. Every generated
/// entry point catches panics and reports them to the host as errors.
///
/// ```
/// use modhost_abi::{Anonymous, CallError, Construct, Parameters, declare_module};
///
/// struct Quiet;
/// impl Construct for Quiet {
///     fn create(_: Parameters) -> Result<Self, CallError> {
///         Ok(Quiet)
///     }
/// }
/// impl Anonymous for Quiet {}
///
/// // The name Mesos's own example gives its check: the macro defines no name of its own
/// // beside the author's items, so any name is free to use.
/// fn compatible() -> Result<(), String> {
///     if cfg!(target_os = "linux") { Ok(()) } else { Err("needs Linux".into()) }
/// }
///
/// declare_module! {
///     /// A module that does nothing, quietly.
///     static com_example_Quiet: Anonymous = Quiet {
///         author_name: "Example",
///         author_email: "example@example.com",
///         description: "Does nothing.",
///         compatible: compatible,
///         flags: modhost_abi::FLAG_SINGLETON,
///     }
/// }
/// # assert_eq!(com_example_Quiet.flags, modhost_abi::FLAG_SINGLETON | modhost_abi::FLAG_PACKED_MESSAGES);
/// ```
///
/// `compatible` (optional) names a `fn() -> Result<(), String>`, or is a closure of that
/// signature that captures nothing; an `Err` makes the host refuse the module and print the
/// reason. `flags` (optional) is a bit set of
/// [`FLAG_THREAD_SAFE`](crate::FLAG_THREAD_SAFE) and [`FLAG_SINGLETON`](crate::FLAG_SINGLETON);
/// [`FLAG_PACKED_MESSAGES`](crate::FLAG_PACKED_MESSAGES) is always added.
///
/// A check that carries state is refused when the module is compiled, since the host calls
/// it through a plain C function:
///
/// ```compile_fail
/// # use modhost_abi::{Anonymous, CallError, Construct, Parameters, declare_module};
/// # struct Quiet;
/// # impl Construct for Quiet { fn create(_: Parameters) -> Result<Self, CallError> { Ok(Quiet) } }
/// # impl Anonymous for Quiet {}
/// const NEEDED: &str = "/dev/nvidia0";
/// declare_module! {
///     static com_example_Quiet: Anonymous = Quiet {
///         author_name: "Example",
///         author_email: "example@example.com",
///         description: "Does nothing.",
///         compatible: { let device = std::path::Path::new(NEEDED); move || device.exists().then_some(()).ok_or_else(String::new) },
///     }
/// }
/// ```
#[macro_export]
macro_rules! declare_module {
    (
        $(#[$meta:meta])*
        static $symbol:ident : $kind:ident = $ty:ty {
            author_name: $author:literal,
            author_email: $email:literal,
            description: $description:literal
            $(, compatible: $compatible:expr)?
            $(, flags: $flags:expr)?
            $(,)?
        }
    ) => {
        $(#[$meta])*
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static $symbol: $crate::ModuleDescriptor = $crate::ModuleDescriptor::new(
            <$crate::__modhost_glue!($kind, $ty) as $crate::KindGlue>::KIND,
            0 $(| $flags)?,
            $crate::__modhost_cstr!($author),
            $crate::__modhost_cstr!($email),
            $crate::__modhost_cstr!($description),
            $crate::__modhost_compatible!($($compatible)?),
            $crate::__private::create_shim::<$crate::__modhost_glue!($kind, $ty)>,
        );
    };
}

/// The glue type of a kind, for [`declare_module!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __modhost_glue {
    (TestModule, $ty:ty) => { $crate::TestModuleGlue<$ty> };
    (Anonymous, $ty:ty) => { $crate::AnonymousGlue<$ty> };
    (Allocator, $ty:ty) => { $crate::AllocatorGlue<$ty> };
    (Hook, $ty:ty) => { $crate::HookGlue<$ty> };
    (Isolator, $ty:ty) => { $crate::IsolatorGlue<$ty> };
    (Vm, $ty:ty) => { $crate::VmGlue<$ty> };
    ($other:ident, $ty:ty) => {
        ::core::compile_error!(::core::concat!(
            "modhost-abi has no Rust interface for the kind `", ::core::stringify!($other),
            "`; the kinds are TestModule, Anonymous, Allocator, Hook, Isolator and Vm"
        ))
    };
}

/// A `&'static CStr` from a string literal, for [`declare_module!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __modhost_cstr {
    ($text:literal) => {
        match ::core::ffi::CStr::from_bytes_with_nul(::core::concat!($text, "\0").as_bytes()) {
            ::core::result::Result::Ok(text) => text,
            ::core::result::Result::Err(_) => ::core::panic!("a module's metadata must not contain NUL bytes"),
        }
    };
}

/// The descriptor's `compatible` entry, for [`declare_module!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __modhost_compatible {
    () => {
        ::core::option::Option::None
    };
    // No item is defined here: an item's name would be in scope where `$check` is written,
    // and would hide the author's own (a check named `compatible` had met the macro's).
    ($check:expr) => {
        ::core::option::Option::Some($crate::__private::compatible_entry($check))
    };
}
