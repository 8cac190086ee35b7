//! The PJRT C API, safely: load a plugin, make a client, compile StableHLO text, move
//! buffers, execute.
//!
//! Ownership: [`Plugin`] (the `dlopen`ed library and its function table) <- [`Client`] <-
//! [`Device`], [`Executable`], [`Buffer`]. Every child holds an `Arc` of its parent, so
//! objects may be dropped in any order; each PJRT object is destroyed exactly once, in
//! `Drop`. Plugins are never unloaded (see [`Plugin::load`]).
//!
//! Every `PJRT_Error` becomes [`Error::Pjrt`](crate::error::Error::Pjrt) with the plugin's
//! message and code; a table too short for an entry, or another major version, becomes
//! [`Error::PjrtApi`](crate::error::Error::PjrtApi). Nothing here panics across the FFI.

/// Calls one entry of the plugin's `PJRT_Api` table: checks that the table is long enough
/// to hold it and that it is not null, calls it, and turns a returned `PJRT_Error` into
/// `Error::Pjrt`. Evaluates to `Result<()>`.
macro_rules! pjrt_call {
    ($plugin:expr, $entry:ident, $args:expr) => {{
        let plugin: &$crate::pjrt::Plugin = $plugin;
        let name: &'static str = stringify!($entry);
        let args = $args;
        plugin
            .check_entry(
                name,
                ::std::mem::offset_of!($crate::pjrt::ffi::PJRT_Api, $entry),
            )
            .and_then(|()| plugin.api().$entry.ok_or_else(|| plugin.null_entry(name)))
            // SAFETY: the entry lies inside the plugin's table and is non-null; `args` is a
            // valid, initialised args struct made by its `new()`.
            .and_then(|f| plugin.check(name, unsafe { f(args) }))
    }};
}

pub mod discover;
pub mod ffi;
pub mod xla_ffi;

mod buffer;
mod client;
mod executable;
mod plugin;
mod signature;

pub use buffer::Buffer;
pub use client::{Client, Device, DeviceMemoryStats};
pub use discover::{find_plugin, DeviceChoice, Found};
pub use executable::{CompiledMemoryStats, Executable};
pub use plugin::Plugin;

use std::fmt;

/// Element type of a buffer (`PJRT_Buffer_Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    F32,
    F64,
    BF16,
    F16,
    I32,
    I64,
    U8,
    Pred,
    /// Any other `PJRT_Buffer_Type` value, as the plugin reported it.
    Other(i32),
}

impl ElementType {
    pub fn from_raw(raw: i32) -> Self {
        use ffi::buffer_type as t;
        match raw {
            t::F32 => ElementType::F32,
            t::F64 => ElementType::F64,
            t::BF16 => ElementType::BF16,
            t::F16 => ElementType::F16,
            t::S32 => ElementType::I32,
            t::S64 => ElementType::I64,
            t::U8 => ElementType::U8,
            t::PRED => ElementType::Pred,
            other => ElementType::Other(other),
        }
    }

    pub fn to_raw(self) -> i32 {
        use ffi::buffer_type as t;
        match self {
            ElementType::F32 => t::F32,
            ElementType::F64 => t::F64,
            ElementType::BF16 => t::BF16,
            ElementType::F16 => t::F16,
            ElementType::I32 => t::S32,
            ElementType::I64 => t::S64,
            ElementType::U8 => t::U8,
            ElementType::Pred => t::PRED,
            ElementType::Other(raw) => raw,
        }
    }

    /// Bytes per element, where known.
    pub fn size_in_bytes(self) -> Option<usize> {
        match self {
            ElementType::F64 | ElementType::I64 => Some(8),
            ElementType::F32 | ElementType::I32 => Some(4),
            ElementType::BF16 | ElementType::F16 => Some(2),
            ElementType::U8 | ElementType::Pred => Some(1),
            ElementType::Other(_) => None,
        }
    }
}

/// Prints the MLIR element type name (`f32`, `bf16`, `i32`, `ui8`, `i1`, ...).
impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElementType::F32 => f.write_str("f32"),
            ElementType::F64 => f.write_str("f64"),
            ElementType::BF16 => f.write_str("bf16"),
            ElementType::F16 => f.write_str("f16"),
            ElementType::I32 => f.write_str("i32"),
            ElementType::I64 => f.write_str("i64"),
            ElementType::U8 => f.write_str("ui8"),
            ElementType::Pred => f.write_str("i1"),
            ElementType::Other(raw) => write!(f, "PJRT_Buffer_Type({raw})"),
        }
    }
}

/// A Rust type whose memory layout is exactly that of a PJRT element type.
///
/// # Safety
/// Implement only for plain types with no padding and no invalid bit patterns whose size
/// and bits match `TYPE`: buffers are copied to and from such types byte for byte.
pub unsafe trait Element: Copy + 'static {
    const TYPE: ElementType;
}

unsafe impl Element for f32 {
    const TYPE: ElementType = ElementType::F32;
}
unsafe impl Element for f64 {
    const TYPE: ElementType = ElementType::F64;
}
unsafe impl Element for half::bf16 {
    const TYPE: ElementType = ElementType::BF16;
}
unsafe impl Element for half::f16 {
    const TYPE: ElementType = ElementType::F16;
}
unsafe impl Element for i32 {
    const TYPE: ElementType = ElementType::I32;
}
unsafe impl Element for i64 {
    const TYPE: ElementType = ElementType::I64;
}
unsafe impl Element for u8 {
    const TYPE: ElementType = ElementType::U8;
}
