//! A compiled program: `PJRT_LoadedExecutable` plus its `PJRT_Executable` view.

use std::fmt;
use std::ptr;

use super::buffer::Buffer;
use super::client::Client;
use super::ffi;
use super::plugin::{is_unimplemented, named_values, string_from, Plugin};
use super::signature::{tensor_type, Param};
use crate::error::{Error, Result};

/// Argument and output pointer lists up to this long need no heap allocation.
const STACK_ARGS: usize = 64;

/// A list of buffer pointers, on the stack when short.
#[allow(clippy::large_enum_variant)] // a short-lived local: being big on the stack is the point
enum Ptrs {
    Stack([*mut ffi::PJRT_Buffer; STACK_ARGS], usize),
    Heap(Vec<*mut ffi::PJRT_Buffer>),
}

impl Ptrs {
    fn new(n: usize) -> Ptrs {
        if n <= STACK_ARGS {
            Ptrs::Stack([ptr::null_mut(); STACK_ARGS], n)
        } else {
            Ptrs::Heap(vec![ptr::null_mut(); n])
        }
    }

    fn as_mut_slice(&mut self) -> &mut [*mut ffi::PJRT_Buffer] {
        match self {
            Ptrs::Stack(a, n) => &mut a[..*n],
            Ptrs::Heap(v) => v,
        }
    }
}

/// `0, 1, 2, ...`: the default "no input is donated" list, without allocating per call.
static ALL_INDICES: [i64; 1024] = {
    let mut a = [0i64; 1024];
    let mut i = 0;
    while i < a.len() {
        a[i] = i as i64;
        i += 1;
    }
    a
};

/// A compiled program, loaded on its client's device 0.
pub struct Executable {
    client: Client,
    loaded: *mut ffi::PJRT_LoadedExecutable,
    exe: *mut ffi::PJRT_Executable,
    num_outputs: usize,
    /// `@main`'s parameter types from the source text, where they could be read.
    params: Option<Vec<Param>>,
}

// SAFETY: PJRT executables are thread-safe (execution may be issued from any thread).
unsafe impl Send for Executable {}
unsafe impl Sync for Executable {}

/// `PJRT_Executable_GetCompiledMemoryStats`, in bytes. The `host_*` fields count host
/// memory where a device has its own (GPU, TPU); on CPU everything is in the plain fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct CompiledMemoryStats {
    pub argument_bytes: i64,
    pub output_bytes: i64,
    /// How much of the arguments is reused for outputs.
    pub alias_bytes: i64,
    pub temp_bytes: i64,
    pub generated_code_bytes: i64,
    pub host_argument_bytes: i64,
    pub host_output_bytes: i64,
    pub host_alias_bytes: i64,
    pub host_temp_bytes: i64,
    pub host_generated_code_bytes: i64,
    /// Peak device memory of one run, where the plugin computes it (0 otherwise).
    pub peak_bytes: i64,
}

impl Executable {
    pub(crate) fn new(
        client: &Client,
        loaded: *mut ffi::PJRT_LoadedExecutable,
        params: Option<Vec<Param>>,
    ) -> Result<Executable> {
        if loaded.is_null() {
            return Err(Error::PjrtApi(
                "PJRT_Client_Compile returned no executable".into(),
            ));
        }
        // Owned from here on: `Drop` frees whatever was obtained if a later step fails.
        let mut me = Executable {
            client: client.clone(),
            loaded,
            exe: ptr::null_mut(),
            num_outputs: 0,
            params,
        };
        let mut get = ffi::PJRT_LoadedExecutable_GetExecutable_Args::new();
        get.loaded_executable = loaded;
        pjrt_call!(me.plugin(), PJRT_LoadedExecutable_GetExecutable, &mut get)?;
        me.exe = get.executable;
        let mut n = ffi::PJRT_Executable_NumOutputs_Args::new();
        n.executable = me.exe;
        pjrt_call!(me.plugin(), PJRT_Executable_NumOutputs, &mut n)?;
        me.num_outputs = n.num_outputs;
        Ok(me)
    }

    fn plugin(&self) -> &Plugin {
        self.client.plugin()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Number of outputs per run (a tuple result counts its elements). Cached at compile.
    pub fn num_outputs(&self) -> Result<usize> {
        Ok(self.num_outputs)
    }

    pub fn compiled_memory_stats(&self) -> Result<CompiledMemoryStats> {
        let mut a = ffi::PJRT_Executable_GetCompiledMemoryStats_Args::new();
        a.executable = self.exe;
        pjrt_call!(
            self.plugin(),
            PJRT_Executable_GetCompiledMemoryStats,
            &mut a
        )?;
        Ok(CompiledMemoryStats {
            argument_bytes: a.argument_size_in_bytes,
            output_bytes: a.output_size_in_bytes,
            alias_bytes: a.alias_size_in_bytes,
            temp_bytes: a.temp_size_in_bytes,
            generated_code_bytes: a.generated_code_size_in_bytes,
            host_argument_bytes: a.host_argument_size_in_bytes,
            host_output_bytes: a.host_output_size_in_bytes,
            host_alias_bytes: a.host_alias_size_in_bytes,
            host_temp_bytes: a.host_temp_size_in_bytes,
            host_generated_code_bytes: a.host_generated_code_size_in_bytes,
            peak_bytes: a.peak_memory_in_bytes,
        })
    }

    /// XLA's cost analysis (e.g. "flops", "bytes accessed"), numeric values only; empty
    /// where the plugin does not implement it.
    pub fn cost_analysis(&self) -> Result<Vec<(String, f64)>> {
        let mut a = ffi::PJRT_Executable_GetCostAnalysis_Args::new();
        a.executable = self.exe;
        match pjrt_call!(self.plugin(), PJRT_Executable_GetCostAnalysis, &mut a) {
            Ok(()) => {}
            Err(e) if is_unimplemented(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
        // SAFETY: `num_properties` values owned by the executable, which is alive.
        let values = unsafe { named_values(a.properties, a.num_properties) };
        Ok(values
            .into_iter()
            .filter_map(|(k, v)| v.as_f64().map(|x| (k, x)))
            .collect())
    }

    /// The optimized program as `(format, bytes)` (e.g. a serialized `HloModuleProto`), or
    /// `None` where the plugin does not implement it.
    pub fn optimized_program(&self) -> Result<Option<(String, Vec<u8>)>> {
        let mut program = ffi::PJRT_Program::new();
        let mut a = ffi::PJRT_Executable_OptimizedProgram_Args::new();
        a.executable = self.exe;
        a.program = &mut program;
        match pjrt_call!(self.plugin(), PJRT_Executable_OptimizedProgram, &mut a) {
            Ok(()) => {}
            Err(e) if is_unimplemented(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut code = vec![0u8; program.code_size];
        program.code = code.as_mut_ptr().cast();
        a.program = &mut program;
        pjrt_call!(self.plugin(), PJRT_Executable_OptimizedProgram, &mut a)?;
        code.truncate(program.code_size);
        // SAFETY: the format string is owned by the plugin and outlives this call.
        let format = unsafe { string_from(program.format, program.format_size) };
        Ok(Some((format, code)))
    }

    /// Runs once on the executable's device and waits for completion. No input is donated.
    pub fn execute(&self, args: &[&Buffer]) -> Result<Vec<Buffer>> {
        let n = args.len();
        if n <= ALL_INDICES.len() {
            self.run(args, &ALL_INDICES[..n])
        } else {
            let keep: Vec<i64> = (0..n as i64).collect();
            self.run(args, &keep)
        }
    }

    /// Like [`execute`](Self::execute), but lets the program reuse the memory of the inputs
    /// at the indices in `donate` (they become unusable afterwards). Donation only happens
    /// for inputs the program aliases to an output.
    pub fn execute_donated(&self, args: &[&Buffer], donate: &[usize]) -> Result<Vec<Buffer>> {
        if let Some(&bad) = donate.iter().find(|&&i| i >= args.len()) {
            return Err(Error::invalid(
                "donated argument index",
                bad,
                format!("there are {} arguments", args.len()),
            ));
        }
        let keep: Vec<i64> = (0..args.len())
            .filter(|i| !donate.contains(i))
            .map(|i| i as i64)
            .collect();
        self.run(args, &keep)
    }

    fn run(&self, args: &[&Buffer], non_donatable: &[i64]) -> Result<Vec<Buffer>> {
        if let Some(i) = args.iter().position(|b| !b.client().same(&self.client)) {
            return Err(Error::invalid(
                "argument",
                i,
                "the buffer belongs to another client",
            ));
        }
        self.check_args(args)?;
        let mut raw_args = Ptrs::new(args.len());
        for (slot, b) in raw_args.as_mut_slice().iter_mut().zip(args) {
            *slot = b.raw();
        }
        let mut outputs = Ptrs::new(self.num_outputs);

        let mut options = ffi::PJRT_ExecuteOptions::new();
        options.non_donatable_input_indices = non_donatable.as_ptr();
        options.num_non_donatable_input_indices = non_donatable.len();
        let arg_list: *const *mut ffi::PJRT_Buffer = raw_args.as_mut_slice().as_ptr();
        let out_list: *mut *mut ffi::PJRT_Buffer = outputs.as_mut_slice().as_mut_ptr();
        let mut done: *mut ffi::PJRT_Event = ptr::null_mut();
        let mut a = ffi::PJRT_LoadedExecutable_Execute_Args::new();
        a.executable = self.loaded;
        a.options = &mut options;
        a.argument_lists = &arg_list;
        a.num_devices = 1;
        a.num_args = args.len();
        a.output_lists = &out_list;
        a.device_complete_events = &mut done;
        pjrt_call!(self.plugin(), PJRT_LoadedExecutable_Execute, &mut a)?;

        // Own the outputs before waiting, so that they are freed if the run failed.
        let outputs: Vec<Buffer> = outputs
            .as_mut_slice()
            .iter()
            .map(|&raw| Buffer::new(&self.client, raw))
            .collect();
        self.plugin()
            .await_event("PJRT_LoadedExecutable_Execute", done)?;
        Ok(outputs)
    }
}

impl Executable {
    /// Argument count, element types and dims against `@main`'s signature, where known.
    fn check_args(&self, args: &[&Buffer]) -> Result<()> {
        let Some(params) = &self.params else {
            return Ok(());
        };
        if params.len() != args.len() {
            return Err(Error::shape(
                "execute",
                format!(
                    "the program takes {} arguments, {} given",
                    params.len(),
                    args.len()
                ),
            ));
        }
        for (i, (param, arg)) in params.iter().zip(args).enumerate() {
            let Some((want_t, want_dims)) = param else {
                continue;
            };
            let (t, dims) = arg.meta()?;
            if t != want_t || dims != want_dims {
                return Err(Error::shape(
                    "execute",
                    format!(
                        "argument {i} is {}, the program expects {}",
                        tensor_type(*t, dims),
                        tensor_type(*want_t, want_dims)
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Executable {
    fn drop(&mut self) {
        if !self.exe.is_null() {
            let mut a = ffi::PJRT_Executable_Destroy_Args::new();
            a.executable = self.exe;
            let _ = pjrt_call!(self.plugin(), PJRT_Executable_Destroy, &mut a);
        }
        let mut a = ffi::PJRT_LoadedExecutable_Destroy_Args::new();
        a.executable = self.loaded;
        let _ = pjrt_call!(self.plugin(), PJRT_LoadedExecutable_Destroy, &mut a);
    }
}

impl fmt::Debug for Executable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executable")
            .field("num_outputs", &self.num_outputs)
            .finish_non_exhaustive()
    }
}
