//! Data: datasets held in memory as NHWC `f32`, the loaders for the formats they come in, the
//! transforms a VGG run applies, and the batch iterator that feeds a compiled program.
//!
//! - [`dataset`]: [`Dataset`], the in-memory form every loader returns; subsets.
//! - [`idx`]: IDX files (MNIST, Fashion-MNIST), gzip or raw.
//! - [`npy`]: `.npy` float32 NHWC image arrays (`predict`, `prune --images`).
//! - [`fashion`]: where Fashion-MNIST lives on this machine; [`fashion_mnist`].
//! - [`cifar`]: CIFAR-10 / CIFAR-100 binary batches.
//! - [`folder`]: ImageFolder trees of JPEG/PNG (ImageNet validation layout).
//! - [`transform`]: per-channel normalisation, padding, seeded crop/flip augmentation.
//! - [`batch`]: fixed-size batches, seeded epoch order, padding of the last batch.
//!
//! Every loader checks what it reads: wrong magic, truncated or oversized files, counts that
//! disagree and labels out of range are errors that name the file and the byte offset or
//! record index.

pub mod batch;
pub mod cifar;
pub mod dataset;
pub mod fashion;
pub mod folder;
pub mod idx;
pub mod npy;
pub mod source;
pub mod transform;

pub use batch::{epoch_order, even_batches, Batch, Batches, LastBatch};
pub use cifar::{cifar10, cifar100, load_cifar_files, CifarKind};
pub use dataset::{Dataset, Split};
pub use fashion::{fashion_mnist, fashion_mnist_dir, fashion_mnist_from};
pub use folder::{load_image_folder, FolderConfig, ImageFolder};
pub use idx::{load_idx_pair, read_idx, IdxArray};
pub use npy::{images_from_npy_bytes, read_images_npy};
pub use source::{Source, FOLDER_LIMIT_SEED};
pub use transform::{Augment, Normalize};
