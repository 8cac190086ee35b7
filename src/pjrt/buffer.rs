//! `PJRT_Buffer`: an array on a device.

use std::fmt;
use std::sync::OnceLock;

use super::client::Client;
use super::plugin::Plugin;
use super::{ffi, Element, ElementType};
use crate::error::{Error, Result};

/// An array on a device. Destroyed (and its memory freed) on drop; keeps its client alive.
pub struct Buffer {
    client: Client,
    raw: *mut ffi::PJRT_Buffer,
    /// Element type and dims, known at upload, asked for once otherwise.
    meta: OnceLock<(ElementType, Vec<i64>)>,
}

// SAFETY: PJRT buffers are thread-safe.
unsafe impl Send for Buffer {}
unsafe impl Sync for Buffer {}

impl Buffer {
    /// Takes ownership of `raw` (may be null: then nothing is destroyed).
    pub(crate) fn new(client: &Client, raw: *mut ffi::PJRT_Buffer) -> Buffer {
        Buffer {
            client: client.clone(),
            raw,
            meta: OnceLock::new(),
        }
    }

    /// Like `new`, with element type and dims already known.
    pub(crate) fn with_meta(
        client: &Client,
        raw: *mut ffi::PJRT_Buffer,
        t: ElementType,
        dims: &[i64],
    ) -> Buffer {
        Buffer {
            client: client.clone(),
            raw,
            meta: OnceLock::from((t, dims.to_vec())),
        }
    }

    /// Element type and dims (cached).
    pub(crate) fn meta(&self) -> Result<&(ElementType, Vec<i64>)> {
        if let Some(m) = self.meta.get() {
            return Ok(m);
        }
        let m = (self.query_element_type()?, self.query_dims()?);
        Ok(self.meta.get_or_init(|| m))
    }

    pub(crate) fn raw(&self) -> *mut ffi::PJRT_Buffer {
        self.raw
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn plugin(&self) -> &Plugin {
        self.client.plugin()
    }

    pub fn dims(&self) -> Result<Vec<i64>> {
        Ok(self.meta()?.1.clone())
    }

    pub fn element_type(&self) -> Result<ElementType> {
        Ok(self.meta()?.0)
    }

    fn query_dims(&self) -> Result<Vec<i64>> {
        let mut a = ffi::PJRT_Buffer_Dimensions_Args::new();
        a.buffer = self.raw;
        pjrt_call!(self.plugin(), PJRT_Buffer_Dimensions, &mut a)?;
        if a.dims.is_null() || a.num_dims == 0 {
            return Ok(Vec::new());
        }
        // SAFETY: `num_dims` values owned by the buffer, which is alive.
        Ok(unsafe { std::slice::from_raw_parts(a.dims, a.num_dims) }.to_vec())
    }

    fn query_element_type(&self) -> Result<ElementType> {
        let mut a = ffi::PJRT_Buffer_ElementType_Args::new();
        a.buffer = self.raw;
        pjrt_call!(self.plugin(), PJRT_Buffer_ElementType, &mut a)?;
        Ok(ElementType::from_raw(a.type_))
    }

    /// Copies the buffer to a new host vector (row-major). `T` must match the buffer's
    /// element type.
    pub fn to_host<T: Element>(&self) -> Result<Vec<T>> {
        let have = self.element_type()?;
        if have != T::TYPE {
            return Err(Error::invalid(
                "element type",
                T::TYPE,
                format!("the buffer holds {have} elements; read it with the matching Rust type"),
            ));
        }
        let size = std::mem::size_of::<T>();
        let mut a = ffi::PJRT_Buffer_ToHostBuffer_Args::new();
        a.src = self.raw;
        pjrt_call!(self.plugin(), PJRT_Buffer_ToHostBuffer, &mut a)?;
        self.plugin()
            .await_event("PJRT_Buffer_ToHostBuffer", a.event)?;
        #[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` needs Rust 1.87
        if a.dst_size % size != 0 {
            return Err(Error::PjrtApi(format!(
                "PJRT_Buffer_ToHostBuffer needs {} bytes, not a multiple of the {size}-byte {have}",
                a.dst_size
            )));
        }
        let n = a.dst_size / size;
        let mut out: Vec<T> = Vec::with_capacity(n);
        a.dst = out.as_mut_ptr().cast();
        a.dst_size = n * size;
        a.event = std::ptr::null_mut();
        pjrt_call!(self.plugin(), PJRT_Buffer_ToHostBuffer, &mut a)?;
        self.plugin()
            .await_event("PJRT_Buffer_ToHostBuffer", a.event)?;
        // SAFETY: the plugin wrote `n` elements of `T`'s type (checked above); `T: Element`
        // has no invalid bit patterns.
        unsafe { out.set_len(n) };
        Ok(out)
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            let mut a = ffi::PJRT_Buffer_Destroy_Args::new();
            a.buffer = self.raw;
            let _ = pjrt_call!(self.plugin(), PJRT_Buffer_Destroy, &mut a);
        }
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Buffer");
        if let (Ok(t), Ok(dims)) = (self.element_type(), self.dims()) {
            d.field("element_type", &t).field("dims", &dims);
        }
        d.finish_non_exhaustive()
    }
}
