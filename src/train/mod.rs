//! Training on the device: hand-written backward rules ([`grad`]), the one-program training
//! step ([`step`]: forward in training mode, backward, SGD with momentum, BN running-stat
//! update), the optimiser and learning-rate schedule ([`optim`]), and a [`Trainer`] that
//! keeps the state on the device between steps. [`fit`] (the epoch loop with data,
//! evaluation and resumable checkpoints) is written by another part of the project.

pub mod fit;
pub mod grad;
pub mod optim;
pub mod step;
mod trainer;

pub use optim::{lr_at, Decay, LrSchedule, OptConfig};
pub use step::{
    default_graph_plan, default_plan, grad_program, graph_grad_program, graph_step_program, param_specs, stat_specs,
    step_program, step_program_with, GradProgram, TensorSpec, TrainProgram,
};
pub(crate) use trainer::host_state;
pub use trainer::{legacy_vgg_name, Trainer};
