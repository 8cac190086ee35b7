//! Forward latency of several compiled models measured together: their calls interleaved
//! in rounds ([`super::rounds`]), the machine's load read around them ([`super::load`]).

use std::borrow::Borrow;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use super::ci::median_ci;
use super::load::{Load, LoadProbe};
use super::rounds::{interleave_timed, Sampling, Stop};
use super::Summary;
use crate::error::Result;
use crate::pjrt::CompiledMemoryStats;
use crate::runtime::CompiledModel;

/// What was measured of one model.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Execute-and-await of one batch (the output stays on the device), seconds.
    pub run: Summary,
    /// Seconds of every timed call, in the order they were made.
    pub samples: Vec<f64>,
    /// 95% interval of `run.p50` (order statistics), seconds; `None` under 6 samples.
    pub p50_ci: Option<(f64, f64)>,
    /// Host-to-device copy of the input batch plus execute-and-await (a short interleaved
    /// measurement of its own).
    pub with_upload: Summary,
    /// Images per second at the median latency.
    pub throughput: f64,
    pub memory: Option<CompiledMemoryStats>,
    pub flops: Option<f64>,
}

/// What one interleaved measurement of several models found.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// One per model, in the order given (none when interrupted).
    pub models: Vec<Latency>,
    /// Interleaved rounds.
    pub rounds: usize,
    pub stop: Stop,
    /// The machine's load during the rounds (`None` off Linux).
    pub load: Option<Load>,
}

/// Memory figures of a compiled program, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryFigures {
    /// What PJRT's compiled memory stats call the peak (`peak_memory_in_bytes`); `None` where
    /// the plugin leaves it 0 (the 0.81 CPU plugin reports argument + output + 4 bytes there).
    pub compiler_peak: Option<i64>,
    /// argument + output + temp: the least one call must hold at once, inputs and outputs
    /// counted apart (an output aliasing a donated input would be counted twice; prunebench's
    /// forward programs donate nothing).
    pub program_min: i64,
}

impl MemoryFigures {
    pub fn of(m: &CompiledMemoryStats) -> MemoryFigures {
        MemoryFigures {
            compiler_peak: (m.peak_bytes > 0).then_some(m.peak_bytes),
            program_min: m.argument_bytes + m.output_bytes + m.temp_bytes,
        }
    }
}

/// A model that can be timed: a compiled program with its weights resident, on any runtime.
pub trait Timed {
    /// Images per call.
    fn batch(&self) -> usize;
    /// Values of one input batch (`batch * H * W * C`).
    fn input_len(&self) -> usize;
    /// Copies `x` (one NHWC batch, [`input_len`](Self::input_len) values) to where the model
    /// reads its input, and keeps it there for [`call`](Self::call).
    fn set_input(&mut self, x: &[f32]) -> Result<()>;
    /// One execute-and-await on the resident input; the output stays where the runtime puts it.
    fn call(&mut self) -> Result<()>;
    /// The compiler's memory figures, where the runtime reports them.
    fn memory(&self) -> Option<CompiledMemoryStats> {
        None
    }
    /// The compiler's FLOP count, where the runtime reports it.
    fn flops(&self) -> Option<f64> {
        None
    }
}

/// A [`CompiledModel`] (owned or borrowed) with its input buffer on the device.
pub struct XlaTimed<M: Borrow<CompiledModel>> {
    pub model: M,
    input: Option<crate::pjrt::Buffer>,
}

impl<M: Borrow<CompiledModel>> XlaTimed<M> {
    pub fn new(model: M) -> Self {
        XlaTimed { model, input: None }
    }
}

impl<M: Borrow<CompiledModel>> Timed for XlaTimed<M> {
    fn batch(&self) -> usize {
        self.model.borrow().batch
    }
    fn input_len(&self) -> usize {
        let m = self.model.borrow();
        m.batch * m.arch.input.iter().product::<usize>()
    }
    fn set_input(&mut self, x: &[f32]) -> Result<()> {
        self.input = Some(self.model.borrow().upload_input(x)?);
        Ok(())
    }
    fn call(&mut self) -> Result<()> {
        let input = self.input.as_ref().expect("set_input before call");
        self.model.borrow().run(input).map(drop)
    }
    fn memory(&self) -> Option<CompiledMemoryStats> {
        self.model.borrow().executable().compiled_memory_stats().ok()
    }
    fn flops(&self) -> Option<f64> {
        self.model
            .borrow()
            .executable()
            .cost_analysis()
            .ok()
            .and_then(|c| c.into_iter().find(|(k, _)| k == "flops").map(|(_, v)| v))
    }
}

/// A fixed pseudo-random input of `n` values (latency does not depend on the values).
fn input_of(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect()
}

/// [`measure_timed`] on XLA models.
pub fn measure(models: &[&CompiledModel], s: &Sampling, stop: &AtomicBool) -> Result<Measurement> {
    let mut timed: Vec<XlaTimed<&CompiledModel>> = models.iter().map(|m| XlaTimed::new(*m)).collect();
    let mut refs: Vec<&mut dyn Timed> = timed.iter_mut().map(|t| t as &mut dyn Timed).collect();
    measure_timed(&mut refs, s, stop)
}

/// Measures `models` side by side: their calls interleaved in rounds as `s` says, then a short
/// interleaved measurement of input copy + call. Errors of any call end the measurement; a set
/// `stop` ends it early with [`Stop::Interrupted`].
pub fn measure_timed(models: &mut [&mut dyn Timed], s: &Sampling, stop: &AtomicBool) -> Result<Measurement> {
    let xs: Vec<Vec<f32>> = models.iter().map(|m| input_of(m.input_len())).collect();
    for (m, x) in models.iter_mut().zip(&xs) {
        m.set_input(x)?;
    }
    let probe = LoadProbe::start();
    let rounds = interleave_timed(models.len(), s, stop, |i| models[i].call())?;
    let load = probe.finish();
    if rounds.stop == Stop::Interrupted {
        return Ok(Measurement { models: Vec::new(), rounds: rounds.rounds(), stop: rounds.stop, load });
    }
    // The copy only adds a column: five interleaved rounds of one call each.
    let short = Sampling {
        warmup: 0,
        calls_per_round: 1,
        min_rounds: 5,
        min_samples: 5,
        min_seconds: 0.0,
        target_ci: f64::INFINITY,
        time_cap_s: 0.0,
        ..*s
    };
    let copies = interleave_timed(models.len(), &short, stop, |i| {
        models[i].set_input(&xs[i])?;
        models[i].call()
    })?;
    let out = models
        .iter()
        .zip(rounds.samples.iter().zip(&copies.samples))
        .map(|(m, (samples, copy))| {
            let run = Summary::of(samples);
            Latency {
                throughput: m.batch() as f64 / run.p50,
                run,
                p50_ci: median_ci(samples),
                samples: samples.clone(),
                with_upload: Summary::of(copy),
                memory: m.memory(),
                flops: m.flops(),
            }
        })
        .collect();
    Ok(Measurement { models: out, rounds: rounds.rounds(), stop: rounds.stop, load })
}
