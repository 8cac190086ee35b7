//! The XLA FFI handler ABI (`xla/ffi/api/c_api.h`, API 0.1): what a typed custom-call
//! handler registered through the plugin's FFI extension receives, and the few runtime calls
//! it makes back (create an error, schedule a task on XLA's compute thread pool).
//!
//! Declared by hand like [`super::ffi`], only as far as prunebench uses it. Layout rules:
//! every struct starts with `struct_size` (and most with `extension_start`); C enums are `i32`.
//! The API table ([`Api`]) is read only up to the entries used, after checking that its
//! `struct_size` reaches past them.

#![allow(non_camel_case_types, dead_code)]

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};

/// The handler API version prunebench's handlers are written against.
pub const API_MAJOR: c_int = 0;
pub const API_MINOR: c_int = 1;

/// `XLA_FFI_Extension_Metadata`.
const EXTENSION_METADATA: c_int = 1;
/// `XLA_FFI_ExecutionStage_EXECUTE`.
pub const STAGE_EXECUTE: c_int = 3;
/// `XLA_FFI_DataType_F32`, `XLA_FFI_DataType_F64`.
pub const DTYPE_F32: c_int = 11;
pub const DTYPE_F64: c_int = 12;
/// `XLA_FFI_ArgType_BUFFER` / `XLA_FFI_RetType_BUFFER`.
const BUFFER: c_int = 1;
/// `XLA_FFI_Error_Code_INVALID_ARGUMENT`.
const INVALID_ARGUMENT: c_int = 3;

#[repr(C)]
pub struct FfiError {
    _private: [u8; 0],
}

#[repr(C)]
pub struct ExecutionContext {
    _private: [u8; 0],
}

#[repr(C)]
pub struct ExtensionBase {
    pub struct_size: usize,
    pub type_: c_int,
    pub next: *mut ExtensionBase,
}

#[repr(C)]
pub struct ApiVersion {
    pub struct_size: usize,
    pub extension_start: *mut ExtensionBase,
    pub major_version: c_int,
    pub minor_version: c_int,
}

#[repr(C)]
pub struct Metadata {
    pub struct_size: usize,
    pub api_version: ApiVersion,
    pub traits: u32,
}

#[repr(C)]
pub struct MetadataExtension {
    pub extension_base: ExtensionBase,
    pub metadata: *mut Metadata,
}

/// `XLA_FFI_Buffer`: an argument or result array.
#[repr(C)]
pub struct RawBuffer {
    pub struct_size: usize,
    pub extension_start: *mut ExtensionBase,
    pub dtype: c_int,
    pub data: *mut c_void,
    pub rank: i64,
    pub dims: *const i64,
}

/// `XLA_FFI_Args` and `XLA_FFI_Rets` share this layout.
#[repr(C)]
pub struct List {
    pub struct_size: usize,
    pub extension_start: *mut ExtensionBase,
    pub size: i64,
    pub types: *const c_int,
    pub items: *const *mut c_void,
}

#[repr(C)]
pub struct Attrs {
    pub struct_size: usize,
    pub extension_start: *mut ExtensionBase,
    pub size: i64,
    pub types: *const c_int,
    pub names: *const *const c_void,
    pub attrs: *const *mut c_void,
}

/// `XLA_FFI_CallFrame`: everything one call of a handler gets.
#[repr(C)]
pub struct CallFrame {
    pub struct_size: usize,
    pub extension_start: *mut ExtensionBase,
    pub api: *const Api,
    pub ctx: *mut ExecutionContext,
    pub stage: c_int,
    pub args: List,
    pub rets: List,
    pub attrs: Attrs,
    pub future: *mut c_void,
}

#[repr(C)]
struct ErrorCreateArgs {
    struct_size: usize,
    extension_start: *mut ExtensionBase,
    message: *const c_char,
    errc: c_int,
}

/// A task for [`schedule`]: called once with its `data` on one of XLA's threads.
pub type Task = unsafe extern "C" fn(*mut c_void);

#[repr(C)]
struct ScheduleArgs {
    struct_size: usize,
    extension_start: *mut ExtensionBase,
    ctx: *mut ExecutionContext,
    task: Option<Task>,
    data: *mut c_void,
}

type Entry<A> = Option<unsafe extern "C" fn(*mut A) -> *mut FfiError>;
type Unused = Option<unsafe extern "C" fn()>;

/// `XLA_FFI_Api`, up to `XLA_FFI_ThreadPool_Schedule`.
#[repr(C)]
pub struct Api {
    pub struct_size: usize,
    pub extension_start: *mut ExtensionBase,
    pub api_version: ApiVersion,
    internal_api: *mut c_void,
    error_create: Entry<ErrorCreateArgs>,
    error_get_message: Unused,
    error_destroy: Unused,
    handler_register: Unused,
    stream_get: Unused,
    type_id_register: Unused,
    execution_context_get: Unused,
    state_set: Unused,
    state_get: Unused,
    device_memory_allocate: Unused,
    device_memory_free: Unused,
    thread_pool_schedule: Entry<ScheduleArgs>,
}

/// A typed XLA FFI handler.
pub type Handler = unsafe extern "C" fn(*mut CallFrame) -> *mut FfiError;

/// If this call only asks for the handler's metadata (XLA does so when the handler is
/// registered), answers it and returns true.
///
/// # Safety
/// `frame` is the call frame XLA passed to the handler.
pub unsafe fn answer_metadata(frame: *mut CallFrame) -> bool {
    let ext = (*frame).extension_start;
    if ext.is_null() || (*ext).type_ != EXTENSION_METADATA {
        return false;
    }
    let m = (*(ext as *mut MetadataExtension)).metadata;
    if !m.is_null() {
        (*m).api_version.major_version = API_MAJOR;
        (*m).api_version.minor_version = API_MINOR;
        (*m).traits = 0;
    }
    true
}

/// An array XLA handed to a handler: its element type (`DTYPE_*`), data and dimensions.
pub struct Array {
    pub dtype: c_int,
    pub data: *mut c_void,
    pub dims: Vec<i64>,
}

impl Array {
    pub fn len(&self) -> usize {
        self.dims.iter().product::<i64>() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

unsafe fn item(list: &List, i: usize, what: &str) -> Result<Array, String> {
    if i as i64 >= list.size {
        return Err(format!("{what} {i} is missing ({} given)", list.size));
    }
    if *list.types.add(i) != BUFFER {
        return Err(format!("{what} {i} is not an array"));
    }
    let b = &*(*list.items.add(i) as *const RawBuffer);
    let dims = std::slice::from_raw_parts(b.dims, b.rank as usize).to_vec();
    Ok(Array { dtype: b.dtype, data: b.data, dims })
}

/// Argument `i`.
///
/// # Safety
/// `frame` is the call frame XLA passed to the handler, in the execute stage.
pub unsafe fn arg(frame: *const CallFrame, i: usize) -> Result<Array, String> {
    item(&(*frame).args, i, "argument")
}

/// Result `i`.
///
/// # Safety
/// As [`arg`].
pub unsafe fn ret(frame: *const CallFrame, i: usize) -> Result<Array, String> {
    item(&(*frame).rets, i, "result")
}

fn has_entry(api: &Api, offset: usize) -> bool {
    api.struct_size >= offset + std::mem::size_of::<usize>()
}

/// An `INVALID_ARGUMENT` error for XLA to report (it takes ownership); null if the runtime
/// cannot make one.
///
/// # Safety
/// As [`arg`].
pub unsafe fn error(frame: *const CallFrame, message: &str) -> *mut FfiError {
    let api = (*frame).api;
    if api.is_null() || !has_entry(&*api, std::mem::offset_of!(Api, error_create)) {
        return std::ptr::null_mut();
    }
    let Some(create) = (*api).error_create else {
        return std::ptr::null_mut();
    };
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let mut args = ErrorCreateArgs {
        struct_size: std::mem::offset_of!(ErrorCreateArgs, errc) + std::mem::size_of::<c_int>(),
        extension_start: std::ptr::null_mut(),
        message: text.as_ptr(),
        errc: INVALID_ARGUMENT,
    };
    create(&mut args)
}

/// Schedules `task(data)` on XLA's compute thread pool. False if the runtime has no pool
/// (then the task is not run and `data` is not touched).
///
/// # Safety
/// As [`arg`]; `data` must stay valid until the task has run.
pub unsafe fn schedule(frame: *const CallFrame, task: Task, data: *mut c_void) -> bool {
    let api = (*frame).api;
    if api.is_null() || !has_entry(&*api, std::mem::offset_of!(Api, thread_pool_schedule)) {
        return false;
    }
    let Some(schedule) = (*api).thread_pool_schedule else {
        return false;
    };
    let mut args = ScheduleArgs {
        struct_size: std::mem::offset_of!(ScheduleArgs, data) + std::mem::size_of::<*mut c_void>(),
        extension_start: std::ptr::null_mut(),
        ctx: (*frame).ctx,
        task: Some(task),
        data,
    };
    let err = schedule(&mut args);
    // An error means the task was not scheduled; it is leaked rather than destroyed, which
    // costs a few bytes once (no pool is a fixed property of the runtime).
    err.is_null()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_the_header() {
        assert_eq!(size_of::<RawBuffer>(), 48);
        assert_eq!(size_of::<List>(), 40);
        assert_eq!(offset_of!(CallFrame, stage), 32);
        assert_eq!(offset_of!(CallFrame, args), 40);
        assert_eq!(offset_of!(CallFrame, rets), 80);
        assert_eq!(offset_of!(CallFrame, attrs), 120);
        assert_eq!(offset_of!(CallFrame, future), 168);
        assert_eq!(offset_of!(Api, error_create), 48);
        assert_eq!(offset_of!(Api, thread_pool_schedule), 136);
        assert_eq!(offset_of!(Metadata, traits), 32);
    }
}
