//! Checkpoints: safetensors files that describe themselves.
//!
//! Tensor names and layouts (all f32 when written; f64 and bf16 are accepted on load):
//!
//! | name | shape | meaning |
//! |---|---|---|
//! | `features.{i}.weight` | `[3, 3, in, out]` | conv `i` kernel, HWIO |
//! | `features.{i}.bias` | `[out]` | conv `i` bias |
//! | `features.{i}.bn.gamma`, `.bn.beta` | `[out]` | BN affine (when the model has BN) |
//! | `features.{i}.bn.running_mean`, `.bn.running_var` | `[out]` | BN statistics |
//! | `classifier.{j}.weight` | `[in, out]` | dense `j`, the last is the classifier |
//! | `classifier.{j}.bias` | `[out]` | dense `j` bias |
//!
//! The header metadata holds `prunebench.format` (`vgg16/1`), `prunebench.arch` (the
//! architecture as JSON: form, input, channel list, BN, hidden widths, classes) and any
//! provenance keys the writer adds (e.g. how a pruned network was made).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ndarray::{Array1, Array2, Array4};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};

use super::arch::Arch;
use super::weights::{BatchNorm, Conv, Dense, Vgg};
use crate::error::{Error, Result};

pub const FORMAT: &str = "vgg16/1";
const KEY_FORMAT: &str = "prunebench.format";
const KEY_ARCH: &str = "prunebench.arch";

/// A loaded checkpoint: the network and the metadata written with it.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub model: Vgg,
    /// Metadata beyond format and architecture (provenance).
    pub meta: BTreeMap<String, String>,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
}

/// Every tensor of `v` with its checkpoint name, shape and data.
pub fn named_tensors(v: &Vgg) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut out = Vec::new();
    let mut push = |name: String, shape: &[usize], data: Vec<f32>| out.push((name, shape.to_vec(), data));
    for (i, c) in v.convs.iter().enumerate() {
        push(format!("features.{i}.weight"), c.kernel.shape(), c.kernel.iter().copied().collect());
        push(format!("features.{i}.bias"), c.bias.shape(), c.bias.to_vec());
        if let Some(bn) = &c.bn {
            for (n, a) in [("gamma", &bn.gamma), ("beta", &bn.beta), ("running_mean", &bn.mean), ("running_var", &bn.var)] {
                push(format!("features.{i}.bn.{n}"), a.shape(), a.to_vec());
            }
        }
    }
    for (j, d) in v.dense.iter().enumerate() {
        push(format!("classifier.{j}.weight"), d.weight.shape(), d.weight.iter().copied().collect());
        push(format!("classifier.{j}.bias"), d.bias.shape(), d.bias.to_vec());
    }
    out
}

/// Serialises `v` with `meta` to safetensors bytes.
pub fn to_bytes(v: &Vgg, meta: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let tensors = named_tensors(v);
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, shape, _), b) in tensors.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, shape.clone(), b)
            .map_err(|e| Error::checkpoint("<memory>", format!("tensor {name}: {e}")))?;
        views.push((name.clone(), view));
    }
    let mut header: HashMap<String, String> = meta.clone().into_iter().collect();
    header.insert(KEY_FORMAT.into(), FORMAT.into());
    header.insert(KEY_ARCH.into(), serde_json::to_string(&v.arch).expect("arch serialises"));
    safetensors::serialize(views, &Some(header)).map_err(|e| Error::checkpoint("<memory>", e.to_string()))
}

/// Writes a checkpoint atomically (a temporary file renamed into place), so a crash never
/// leaves a half-written file under `path`. Returns the file's SHA-256.
///
/// The bytes are first read back with the loader's own rules ([`from_bytes`]: shapes,
/// finite values, ...), so no writer can leave a file prunebench cannot load: a network that
/// fails them (e.g. an infinite BN `running_var`) is an error and nothing is written.
pub fn save(path: &Path, v: &Vgg, meta: &BTreeMap<String, String>) -> Result<String> {
    let bytes = to_bytes(v, meta)?;
    from_bytes(&bytes).map_err(|m| Error::checkpoint(path, format!("not written, prunebench could not load it back: {m}")))?;
    crate::util::write_atomic(path, &bytes)?;
    Ok(hex_sha256(&bytes))
}

/// Checks `v` against the loader's rules (what [`save`] checks before writing); the error
/// names the first bad tensor, e.g. `tensor 'features.3.bn.running_var' holds a non-finite
/// value at flat index 2`.
pub fn check(v: &Vgg) -> std::result::Result<(), String> {
    let bytes = to_bytes(v, &BTreeMap::new()).map_err(|e| e.to_string())?;
    from_bytes(&bytes).map(|_| ())
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads and validates a checkpoint; the error names the first tensor that is wrong.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::checkpoint(
            path,
            "file not found; make one with `prunebench init --out FILE` (or check the path)",
        ),
        _ => Error::io(path, e),
    })?;
    let mut ck = from_bytes(&bytes).map_err(|m| Error::checkpoint(path, m))?;
    ck.sha256 = hex_sha256(&bytes);
    Ok(ck)
}

/// Parses checkpoint bytes; the error is a message without the path.
pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
    let mut meta: BTreeMap<String, String> =
        header.metadata().clone().unwrap_or_default().into_iter().collect();
    let fmt = meta.remove(KEY_FORMAT);
    let arch_json = meta.remove(KEY_ARCH);
    let arch_json = match (fmt.as_deref(), arch_json) {
        (Some(FORMAT), Some(a)) => a,
        (Some(other), _) => return Err(format!("unsupported checkpoint format '{other}' (this prunebench reads '{FORMAT}')")),
        _ => {
            return Err(format!(
                "not a prunebench VGG-16 checkpoint: metadata '{KEY_FORMAT}'/'{KEY_ARCH}' missing \
                 (torchvision/timm VGG-16 weights must be imported first)"
            ))
        }
    };
    let arch: Arch = serde_json::from_str(&arch_json).map_err(|e| format!("metadata '{KEY_ARCH}' is not a valid architecture: {e}"))?;
    arch.form.require_vgg("loading a checkpoint").map_err(|e| e.to_string())?;
    arch.validate().map_err(|e| e.to_string())?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("corrupt safetensors data: {e}"))?;

    let expected = tensor_names(&arch);
    let mut names: Vec<String> = st.names().into_iter().cloned().collect();
    names.sort();
    for n in &names {
        if !expected.contains(n) {
            return Err(format!("unexpected tensor '{n}' for architecture {}", arch.describe()));
        }
    }
    let get = |name: &str, shape: &[usize]| -> std::result::Result<Vec<f32>, String> {
        let t = st.tensor(name).map_err(|_| format!("tensor '{name}' missing (architecture {})", arch.describe()))?;
        if t.shape() != shape {
            return Err(format!("tensor '{name}' has shape {:?}, expected {:?}", t.shape(), shape));
        }
        let data = decode(name, t.dtype(), t.data())?;
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(format!("tensor '{name}' holds a non-finite value at flat index {i}"));
        }
        Ok(data)
    };
    let mut convs = Vec::new();
    for i in 0..arch.channels.len() {
        let (cin, cout) = (arch.conv_in(i), arch.channels[i]);
        let kernel = Array4::from_shape_vec((3, 3, cin, cout), get(&format!("features.{i}.weight"), &[3, 3, cin, cout])?).expect("checked");
        let bias = Array1::from(get(&format!("features.{i}.bias"), &[cout])?);
        let bn = if arch.batch_norm {
            let g = |n: &str| get(&format!("features.{i}.bn.{n}"), &[cout]).map(Array1::from);
            Some(BatchNorm { gamma: g("gamma")?, beta: g("beta")?, mean: g("running_mean")?, var: g("running_var")? })
        } else {
            None
        };
        convs.push(Conv { kernel, bias, bn });
    }
    let mut dense = Vec::new();
    for (j, (i, o)) in arch.dense_dims().into_iter().enumerate() {
        let weight = Array2::from_shape_vec((i, o), get(&format!("classifier.{j}.weight"), &[i, o])?).expect("checked");
        let bias = Array1::from(get(&format!("classifier.{j}.bias"), &[o])?);
        dense.push(Dense { weight, bias });
    }
    Ok(Checkpoint { model: Vgg { arch, convs, dense }, meta, sha256: String::new() })
}

/// The names of every tensor a checkpoint of `arch` holds.
pub fn tensor_names(arch: &Arch) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..arch.channels.len() {
        out.push(format!("features.{i}.weight"));
        out.push(format!("features.{i}.bias"));
        if arch.batch_norm {
            for n in ["gamma", "beta", "running_mean", "running_var"] {
                out.push(format!("features.{i}.bn.{n}"));
            }
        }
    }
    for j in 0..arch.dense_dims().len() {
        out.push(format!("classifier.{j}.weight"));
        out.push(format!("classifier.{j}.bias"));
    }
    out
}

fn decode(name: &str, dtype: Dtype, data: &[u8]) -> std::result::Result<Vec<f32>, String> {
    Ok(match dtype {
        Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F64 => data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect(),
        Dtype::BF16 => data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        other => return Err(format!("tensor '{name}' has dtype {other:?}; expected a float type (F32, F64, BF16, F16)")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Vgg {
        let mut v = Vgg::init(&Arch::cifar(0.0625, 1, 10, vec![8]).unwrap(), 3);
        v.randomize_bn(4);
        v
    }

    #[test]
    fn round_trips_weights_and_metadata() {
        let v = small();
        let mut meta = BTreeMap::new();
        meta.insert("prunebench.seed".to_string(), "3".to_string());
        let ck = from_bytes(&to_bytes(&v, &meta).unwrap()).unwrap();
        assert_eq!(ck.model, v);
        assert_eq!(ck.meta, meta);
    }

    #[test]
    fn save_refuses_what_load_would_refuse_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let v = small();
        let sha = save(&path, &v, &BTreeMap::new()).unwrap();
        let mut bad = v.clone();
        bad.convs[3].bn.as_mut().unwrap().var[2] = f32::INFINITY;
        assert_eq!(check(&bad).unwrap_err(), "tensor 'features.3.bn.running_var' holds a non-finite value at flat index 2");
        assert!(check(&v).is_ok());
        let e = save(&path, &bad, &BTreeMap::new()).unwrap_err().to_string();
        assert!(e.contains("not written") && e.contains("features.3.bn.running_var") && e.contains("non-finite"), "{e}");
        // The earlier file is untouched and still loads; a new path is not created.
        assert_eq!(load(&path).unwrap().sha256, sha);
        let fresh = dir.path().join("new.safetensors");
        bad.dense[0].weight[[0, 0]] = f32::NAN;
        assert!(save(&fresh, &bad, &BTreeMap::new()).is_err());
        assert!(!fresh.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a temporary file was left behind");
    }

    #[test]
    fn names_the_first_wrong_tensor() {
        let v = small();
        let mut bad = v.clone();
        bad.convs[4].bias = Array1::zeros(3);
        let bytes = to_bytes(&bad, &BTreeMap::new()).unwrap();
        let e = from_bytes(&bytes).unwrap_err();
        assert!(e.contains("features.4.bias") && e.contains("[3]"), "{e}");
        let e = from_bytes(b"garbage that is not safetensors").unwrap_err();
        assert!(e.contains("not a safetensors"), "{e}");
    }

    #[test]
    fn rejects_foreign_safetensors() {
        let data = vec![0u8; 16];
        let view = TensorView::new(Dtype::F32, vec![4], &data).unwrap();
        let bytes = safetensors::serialize(vec![("features.0.weight", view)], &None).unwrap();
        let e = from_bytes(&bytes).unwrap_err();
        assert!(e.contains("not a prunebench VGG-16 checkpoint"), "{e}");
    }
}
