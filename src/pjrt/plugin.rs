//! The loaded plugin: the library, its `PJRT_Api` table, entry checks and error conversion.

use std::ffi::c_char;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::client::Client;
use super::discover::Probe;
use super::ffi;
use super::xla_ffi;
use crate::error::{Error, Result};

/// A PJRT plugin: the `dlopen`ed library and its function table. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    lib: Arc<Library>,
}

struct Library {
    path: PathBuf,
    api: *const ffi::PJRT_Api,
    version: (i32, i32),
    // Checked at load: every error path needs these three.
    error_destroy: unsafe extern "C" fn(*mut ffi::PJRT_Error_Destroy_Args),
    error_message: unsafe extern "C" fn(*mut ffi::PJRT_Error_Message_Args),
    error_get_code: unsafe extern "C" fn(*mut ffi::PJRT_Error_GetCode_Args) -> *mut ffi::PJRT_Error,
    // Kept last and never dropped in practice (see `Plugin::load`).
    _lib: libloading::Library,
}

// SAFETY: the PJRT C API is thread-safe; the table is immutable after `GetPjrtApi`.
unsafe impl Send for Library {}
unsafe impl Sync for Library {}

/// Every plugin loaded by this process, so that a file is loaded and initialised once and
/// never unloaded: XLA plugins start threads and register global state that do not survive
/// `dlclose`.
static LOADED: Mutex<Vec<Arc<Library>>> = Mutex::new(Vec::new());

impl Plugin {
    /// Opens a PJRT plugin (`dlopen` + `GetPjrtApi`), checks its API table (major version 0,
    /// long enough for the error entries) and runs `PJRT_Plugin_Initialize` if it has one.
    ///
    /// Loading the same file again returns the same plugin. `libtpu` is refused unless TPU
    /// hardware is present: off a TPU host it contacts a cloud metadata server and hangs.
    pub fn load(path: &Path) -> Result<Plugin> {
        let load_err = |message: String| Error::PluginLoad {
            path: path.to_path_buf(),
            message,
        };
        let is_libtpu = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("libtpu"));
        if is_libtpu {
            let probe = Probe::system();
            if !probe.tpu_hardware() {
                return Err(load_err(format!(
                    "refusing to load libtpu: no TPU hardware detected (checked {})",
                    probe.tpu_checks()
                )));
            }
        }
        let canonical = path.canonicalize().map_err(|e| load_err(e.to_string()))?;
        let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lib) = loaded.iter().find(|l| l.path == canonical) {
            return Ok(Plugin { lib: lib.clone() });
        }

        // SAFETY: loading a shared library runs its initialisers; a PJRT plugin is meant to
        // be loaded this way.
        let lib =
            unsafe { libloading::Library::new(&canonical) }.map_err(|e| load_err(e.to_string()))?;
        // SAFETY: `GetPjrtApi` has this signature in every PJRT plugin.
        let get_api = unsafe { lib.get::<ffi::GetPjrtApiFn>(b"GetPjrtApi\0") }
            .map_err(|e| load_err(format!("not a PJRT plugin (no GetPjrtApi symbol): {e}")))?;
        // SAFETY: returns a pointer to a static table, or null.
        let api = unsafe { get_api() };
        if api.is_null() {
            return Err(load_err("GetPjrtApi returned null".into()));
        }
        // SAFETY: non-null; `struct_size` is the first field of every version of the table.
        let table = unsafe { &*api };
        let needed =
            std::mem::offset_of!(ffi::PJRT_Api, PJRT_Error_GetCode) + std::mem::size_of::<usize>();
        if table.struct_size < needed {
            return Err(Error::PjrtApi(format!(
                "{}: PJRT_Api table is {} bytes, too short to hold the error functions ({needed} bytes)",
                canonical.display(),
                table.struct_size
            )));
        }
        let version = (
            table.pjrt_api_version.major_version,
            table.pjrt_api_version.minor_version,
        );
        if version.0 != 0 {
            return Err(Error::PjrtApi(format!(
                "{}: PJRT API version {}.{}, but prunebench speaks major version 0 (0.81)",
                canonical.display(),
                version.0,
                version.1
            )));
        }
        let missing =
            |name: &str| Error::PjrtApi(format!("{}: {name} is null", canonical.display()));
        let lib = Arc::new(Library {
            path: canonical.clone(),
            api,
            version,
            error_destroy: table
                .PJRT_Error_Destroy
                .ok_or_else(|| missing("PJRT_Error_Destroy"))?,
            error_message: table
                .PJRT_Error_Message
                .ok_or_else(|| missing("PJRT_Error_Message"))?,
            error_get_code: table
                .PJRT_Error_GetCode
                .ok_or_else(|| missing("PJRT_Error_GetCode"))?,
            _lib: lib,
        });
        let plugin = Plugin { lib };
        if plugin.has_entry(std::mem::offset_of!(ffi::PJRT_Api, PJRT_Plugin_Initialize))
            && table.PJRT_Plugin_Initialize.is_some()
        {
            pjrt_call!(
                &plugin,
                PJRT_Plugin_Initialize,
                &mut ffi::PJRT_Plugin_Initialize_Args::new()
            )?;
        }
        loaded.push(plugin.lib.clone());
        Ok(plugin)
    }

    /// The plugin file (canonical path).
    pub fn path(&self) -> &Path {
        &self.lib.path
    }

    /// `(major, minor)` of the PJRT C API the plugin was built with.
    pub fn api_version(&self) -> (i32, i32) {
        self.lib.version
    }

    /// `PJRT_Plugin_Attributes` (e.g. `xla_version`, `stablehlo_current_version`), values
    /// rendered as strings (lists as `[1, 2]`).
    pub fn attributes(&self) -> Result<Vec<(String, String)>> {
        let mut args = ffi::PJRT_Plugin_Attributes_Args::new();
        pjrt_call!(self, PJRT_Plugin_Attributes, &mut args)?;
        // SAFETY: the plugin returned `num_attributes` values living as long as the process.
        let values = unsafe { named_values(args.attributes, args.num_attributes) };
        Ok(values
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect())
    }

    /// Registers a typed XLA FFI handler for custom calls to `target` on `platform` (e.g.
    /// `"Host"` for the CPU plugin), through the plugin's FFI extension. An error if the plugin
    /// has no FFI extension, or is not built with PJRT API 0.81: the registration struct's
    /// layout changed across versions and only 0.81's is known (see
    /// [`ffi::PJRT_FFI_Register_Handler_Args`]).
    pub fn register_ffi_handler(&self, target: &str, platform: &str, handler: xla_ffi::Handler) -> Result<()> {
        let name = "PJRT_FFI_Register_Handler";
        if self.lib.version != (0, 81) {
            let (major, minor) = self.lib.version;
            return Err(Error::PjrtApi(format!(
                "{name}: only the layout of PJRT API 0.81 is known, the plugin has {major}.{minor}"
            )));
        }
        let mut ext = self.api().extension_start;
        // SAFETY: the plugin's extension chain is immutable and lives as long as the library;
        // each node's `struct_size` is checked before reading past the base.
        let register = unsafe {
            loop {
                if ext.is_null() {
                    return Err(Error::PjrtApi(format!("the plugin has no FFI extension, so {name} is unavailable")));
                }
                if (*ext).type_ == ffi::EXTENSION_TYPE_FFI {
                    let min = std::mem::offset_of!(ffi::PJRT_FFI_Extension, register_handler) + std::mem::size_of::<usize>();
                    if (*ext).struct_size < min {
                        return Err(Error::PjrtApi(format!(
                            "the plugin's FFI extension ({} bytes) predates {name}",
                            (*ext).struct_size
                        )));
                    }
                    break (*(ext as *const ffi::PJRT_FFI_Extension)).register_handler.ok_or_else(|| self.null_entry(name))?;
                }
                ext = (*ext).next;
            }
        };
        let mut args = ffi::PJRT_FFI_Register_Handler_Args {
            struct_size: ffi::PJRT_FFI_Register_Handler_Args::STRUCT_SIZE,
            target_name: target.as_ptr().cast(),
            target_name_size: target.len(),
            handler: handler as *mut std::ffi::c_void,
            platform_name: platform.as_ptr().cast(),
            platform_name_size: platform.len(),
            traits: 0,
        };
        // SAFETY: `register` comes from the plugin's FFI extension; `args` is fully initialised
        // and its strings outlive the call (XLA copies them).
        self.check(name, unsafe { register(&mut args) })
    }

    /// A client with default options (`PJRT_Client_Create`).
    pub fn client(&self) -> Result<Client> {
        Client::create(self)
    }

    // ---- crate-internal plumbing -------------------------------------------------------

    pub(crate) fn api(&self) -> &ffi::PJRT_Api {
        // SAFETY: checked non-null at load; the library (and its table) is never unloaded.
        unsafe { &*self.lib.api }
    }

    fn has_entry(&self, offset: usize) -> bool {
        self.api().struct_size >= offset + std::mem::size_of::<usize>()
    }

    /// Ok if the plugin's table reaches past the entry at `offset`.
    pub(crate) fn check_entry(&self, name: &str, offset: usize) -> Result<()> {
        if self.has_entry(offset) {
            Ok(())
        } else {
            let (major, minor) = self.lib.version;
            Err(Error::PjrtApi(format!(
                "{name} is not in the plugin's API table ({} bytes, PJRT API {major}.{minor}); \
                 prunebench needs a plugin built with PJRT API 0.81 or newer",
                self.api().struct_size
            )))
        }
    }

    pub(crate) fn null_entry(&self, name: &str) -> Error {
        Error::PjrtApi(format!("the plugin does not implement {name} (null entry)"))
    }

    /// Turns a returned `PJRT_Error*` into a result; destroys the error.
    pub(crate) fn check(&self, call: &'static str, err: *mut ffi::PJRT_Error) -> Result<()> {
        if err.is_null() {
            Ok(())
        } else {
            Err(self.take_error(call, err))
        }
    }

    /// Reads message and code of a non-null `PJRT_Error`, then destroys it (exactly once).
    fn take_error(&self, call: &'static str, err: *mut ffi::PJRT_Error) -> Error {
        let lib = &*self.lib;
        let mut msg = ffi::PJRT_Error_Message_Args::new();
        msg.error = err;
        // SAFETY: `err` is a live error from this plugin; the message lives as long as it.
        unsafe { (lib.error_message)(&mut msg) };
        let message = unsafe { string_from(msg.message, msg.message_size) };
        let mut code = ffi::PJRT_Error_GetCode_Args::new();
        code.error = err;
        // SAFETY: as above.
        let code_err = unsafe { (lib.error_get_code)(&mut code) };
        let code = if code_err.is_null() {
            code_name(code.code)
        } else {
            self.destroy_error(code_err);
            "UNKNOWN".to_string()
        };
        self.destroy_error(err);
        Error::Pjrt {
            call,
            code,
            message,
        }
    }

    fn destroy_error(&self, err: *mut ffi::PJRT_Error) {
        let mut args = ffi::PJRT_Error_Destroy_Args::new();
        args.error = err;
        // SAFETY: `err` is a live error of this plugin, destroyed here once.
        unsafe { (self.lib.error_destroy)(&mut args) };
    }

    /// Awaits and destroys an event (null: nothing to do). Returns the event's error.
    pub(crate) fn await_event(
        &self,
        call: &'static str,
        event: *mut ffi::PJRT_Event,
    ) -> Result<()> {
        if event.is_null() {
            return Ok(());
        }
        let mut wait = ffi::PJRT_Event_Await_Args::new();
        wait.event = event;
        let awaited = pjrt_call!(self, PJRT_Event_Await, &mut wait);
        let mut destroy = ffi::PJRT_Event_Destroy_Args::new();
        destroy.event = event;
        let _ = pjrt_call!(self, PJRT_Event_Destroy, &mut destroy);
        awaited.map_err(|e| match e {
            Error::Pjrt { code, message, .. } => Error::Pjrt {
                call,
                code,
                message,
            },
            other => other,
        })
    }
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.lib.version;
        f.debug_struct("Plugin")
            .field("path", &self.lib.path)
            .field("api_version", &format_args!("{major}.{minor}"))
            .finish()
    }
}

/// True for the error a plugin returns for a call it does not implement.
pub(crate) fn is_unimplemented(e: &Error) -> bool {
    matches!(e, Error::Pjrt { code, .. } if code == "UNIMPLEMENTED")
}

fn code_name(code: i32) -> String {
    usize::try_from(code)
        .ok()
        .and_then(|i| ffi::error_code::NAMES.get(i))
        .map_or_else(|| format!("code {code}"), |s| s.to_string())
}

/// Copies a (pointer, length) string from the plugin; null gives "".
///
/// # Safety
/// `ptr` is null or points to `len` readable bytes.
pub(crate) unsafe fn string_from(ptr: *const c_char, len: usize) -> String {
    if ptr.is_null() || len == 0 {
        return String::new();
    }
    let bytes = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
    String::from_utf8_lossy(bytes).into_owned()
}

/// A decoded `PJRT_NamedValue`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Bool(bool),
    Unknown(i32),
}

impl Value {
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Float(x) => Some(f64::from(x)),
            Value::Bool(b) => Some(f64::from(u8::from(b))),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Ints(v) => write!(f, "{v:?}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Unknown(t) => write!(f, "<value of type {t}>"),
        }
    }
}

/// Decodes `n` named values.
///
/// # Safety
/// `ptr` is null or points to `n` valid `PJRT_NamedValue`s.
pub(crate) unsafe fn named_values(
    ptr: *const ffi::PJRT_NamedValue,
    n: usize,
) -> Vec<(String, Value)> {
    use ffi::named_value_type as t;
    if ptr.is_null() {
        return Vec::new();
    }
    std::slice::from_raw_parts(ptr, n)
        .iter()
        .map(|nv| {
            let name = string_from(nv.name, nv.name_size);
            let value = match nv.type_ {
                t::STRING => Value::Str(string_from(nv.value.string_value, nv.value_size)),
                t::INT64 => Value::Int(nv.value.int64_value),
                t::INT64_LIST if nv.value.int64_array_value.is_null() => Value::Ints(Vec::new()),
                t::INT64_LIST => Value::Ints(
                    std::slice::from_raw_parts(nv.value.int64_array_value, nv.value_size).to_vec(),
                ),
                t::FLOAT => Value::Float(nv.value.float_value),
                t::BOOL => Value::Bool(nv.value.bool_value != 0),
                other => Value::Unknown(other),
            };
            (name, value)
        })
        .collect()
}
