//! `PJRT_Client` and its devices: compile and upload.

use std::fmt;
use std::sync::Arc;

use super::buffer::Buffer;
use super::executable::Executable;
use super::plugin::{is_unimplemented, string_from, Plugin};
use super::{ffi, signature, Element};
use crate::error::{Error, Result};

/// A serialized `xla.CompileOptionsProto`: `executable_build_options` (field 3, 4 bytes) with
/// `num_replicas = 1` (field 4) and `num_partitions = 1` (field 5), the rest default.
/// (An empty `executable_build_options`, `[0x1a, 0x00]`, leaves `num_replicas = 0`, and the
/// 0.81 CPU plugin then aborts the process in a CHECK while compiling.)
const COMPILE_OPTIONS: [u8; 6] = [0x1a, 0x04, 0x20, 0x01, 0x28, 0x01];

/// A PJRT client. Cheap to clone; the PJRT client is destroyed when the last clone, device,
/// executable and buffer made from it are gone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    plugin: Plugin,
    raw: *mut ffi::PJRT_Client,
}

// SAFETY: PJRT clients are thread-safe.
unsafe impl Send for ClientInner {}
unsafe impl Sync for ClientInner {}

impl Drop for ClientInner {
    fn drop(&mut self) {
        let mut args = ffi::PJRT_Client_Destroy_Args::new();
        args.client = self.raw;
        let _ = pjrt_call!(&self.plugin, PJRT_Client_Destroy, &mut args);
    }
}

impl Client {
    pub(crate) fn create(plugin: &Plugin) -> Result<Client> {
        let mut args = ffi::PJRT_Client_Create_Args::new();
        pjrt_call!(plugin, PJRT_Client_Create, &mut args)?;
        if args.client.is_null() {
            return Err(Error::PjrtApi(
                "PJRT_Client_Create returned no client".into(),
            ));
        }
        Ok(Client {
            inner: Arc::new(ClientInner {
                plugin: plugin.clone(),
                raw: args.client,
            }),
        })
    }

    pub fn plugin(&self) -> &Plugin {
        &self.inner.plugin
    }

    pub(crate) fn raw(&self) -> *mut ffi::PJRT_Client {
        self.inner.raw
    }

    pub(crate) fn same(&self, other: &Client) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// E.g. "cpu", "cuda", "tpu".
    pub fn platform_name(&self) -> Result<String> {
        let mut args = ffi::PJRT_Client_PlatformName_Args::new();
        args.client = self.raw();
        pjrt_call!(self.plugin(), PJRT_Client_PlatformName, &mut args)?;
        // SAFETY: owned by the client, which is alive.
        Ok(unsafe { string_from(args.platform_name, args.platform_name_size) })
    }

    pub fn platform_version(&self) -> Result<String> {
        let mut args = ffi::PJRT_Client_PlatformVersion_Args::new();
        args.client = self.raw();
        pjrt_call!(self.plugin(), PJRT_Client_PlatformVersion, &mut args)?;
        // SAFETY: owned by the client, which is alive.
        Ok(unsafe { string_from(args.platform_version, args.platform_version_size) })
    }

    /// The devices this client can issue work to.
    pub fn devices(&self) -> Result<Vec<Device>> {
        let mut args = ffi::PJRT_Client_AddressableDevices_Args::new();
        args.client = self.raw();
        pjrt_call!(self.plugin(), PJRT_Client_AddressableDevices, &mut args)?;
        if args.addressable_devices.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: an array of `num_addressable_devices` devices owned by the client.
        let raws = unsafe {
            std::slice::from_raw_parts(args.addressable_devices, args.num_addressable_devices)
        };
        raws.iter().map(|&raw| Device::new(self, raw)).collect()
    }

    /// The first addressable device.
    pub fn default_device(&self) -> Result<Device> {
        self.devices()?
            .into_iter()
            .next()
            .ok_or_else(|| Error::PjrtApi("the client has no addressable device".into()))
    }

    /// Compiles a StableHLO module in MLIR text form (format "mlir", default options).
    pub fn compile(&self, mlir_text: &str) -> Result<Executable> {
        let format = "mlir";
        let mut program = ffi::PJRT_Program::new();
        program.code = mlir_text.as_ptr().cast_mut().cast();
        program.code_size = mlir_text.len();
        program.format = format.as_ptr().cast();
        program.format_size = format.len();
        let mut args = ffi::PJRT_Client_Compile_Args::new();
        args.client = self.raw();
        args.program = &program;
        args.compile_options = COMPILE_OPTIONS.as_ptr().cast();
        args.compile_options_size = COMPILE_OPTIONS.len();
        pjrt_call!(self.plugin(), PJRT_Client_Compile, &mut args)?;
        Executable::new(self, args.executable, signature::main_params(mlir_text))
    }

    /// Copies `data` (row-major, shape `dims`) to `device`. Returns once the host data has
    /// been consumed (`kImmutableUntilTransferCompletes`, then awaits
    /// `done_with_host_buffer`).
    pub fn upload<T: Element>(&self, data: &[T], dims: &[i64], device: &Device) -> Result<Buffer> {
        let expected = dims.iter().try_fold(
            1i64,
            |acc, &d| if d < 0 { None } else { acc.checked_mul(d) },
        );
        if expected.and_then(|n| usize::try_from(n).ok()) != Some(data.len()) {
            return Err(Error::shape(
                "upload",
                format!(
                    "{} elements given for dims {dims:?} ({} expected)",
                    data.len(),
                    match expected {
                        Some(n) => n.to_string(),
                        None => "invalid dims".to_string(),
                    }
                ),
            ));
        }
        if !device.client.same(self) {
            return Err(Error::invalid(
                "device",
                device.id,
                "the device belongs to another client",
            ));
        }
        let mut args = ffi::PJRT_Client_BufferFromHostBuffer_Args::new();
        args.client = self.raw();
        args.data = data.as_ptr().cast();
        args.type_ = T::TYPE.to_raw();
        args.dims = dims.as_ptr();
        args.num_dims = dims.len();
        args.host_buffer_semantics = ffi::host_buffer_semantics::IMMUTABLE_UNTIL_TRANSFER_COMPLETES;
        args.device = device.raw;
        pjrt_call!(self.plugin(), PJRT_Client_BufferFromHostBuffer, &mut args)?;
        // Own the buffer first so that it is destroyed even if the event reports an error.
        let buffer = Buffer::with_meta(self, args.buffer, T::TYPE, dims);
        self.plugin().await_event(
            "PJRT_Client_BufferFromHostBuffer",
            args.done_with_host_buffer,
        )?;
        Ok(buffer)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("plugin", self.plugin())
            .finish_non_exhaustive()
    }
}

/// An addressable device of a client.
#[derive(Clone)]
pub struct Device {
    client: Client,
    raw: *mut ffi::PJRT_Device,
    id: i32,
    kind: String,
}

// SAFETY: a device handle is an immutable pointer owned by the (thread-safe) client.
unsafe impl Send for Device {}
unsafe impl Sync for Device {}

/// `PJRT_Device_MemoryStats`: bytes in use now; the rest when the plugin reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct DeviceMemoryStats {
    pub bytes_in_use: i64,
    pub peak_bytes_in_use: Option<i64>,
    pub bytes_limit: Option<i64>,
}

impl Device {
    fn new(client: &Client, raw: *mut ffi::PJRT_Device) -> Result<Device> {
        let plugin = client.plugin();
        let mut desc = ffi::PJRT_Device_GetDescription_Args::new();
        desc.device = raw;
        pjrt_call!(plugin, PJRT_Device_GetDescription, &mut desc)?;
        let mut id = ffi::PJRT_DeviceDescription_Id_Args::new();
        id.device_description = desc.device_description;
        pjrt_call!(plugin, PJRT_DeviceDescription_Id, &mut id)?;
        let mut kind = ffi::PJRT_DeviceDescription_Kind_Args::new();
        kind.device_description = desc.device_description;
        pjrt_call!(plugin, PJRT_DeviceDescription_Kind, &mut kind)?;
        // SAFETY: owned by the device, which the client keeps alive.
        let kind = unsafe { string_from(kind.device_kind, kind.device_kind_size) };
        Ok(Device {
            client: client.clone(),
            raw,
            id: id.id,
            kind,
        })
    }

    pub fn id(&self) -> i32 {
        self.id
    }

    /// E.g. "cpu", or the GPU model name.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Memory statistics, or `None` where the plugin does not implement them (CPU).
    pub fn memory_stats(&self) -> Result<Option<DeviceMemoryStats>> {
        let mut args = ffi::PJRT_Device_MemoryStats_Args::new();
        args.device = self.raw;
        match pjrt_call!(self.client.plugin(), PJRT_Device_MemoryStats, &mut args) {
            Ok(()) => Ok(Some(DeviceMemoryStats {
                bytes_in_use: args.bytes_in_use,
                peak_bytes_in_use: args
                    .peak_bytes_in_use_is_set
                    .then_some(args.peak_bytes_in_use),
                bytes_limit: args.bytes_limit_is_set.then_some(args.bytes_limit),
            })),
            Err(e) if is_unimplemented(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish()
    }
}
