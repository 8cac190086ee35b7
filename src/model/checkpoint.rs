//! Checkpoints: safetensors files that describe themselves, for every network form.
//!
//! The tensors are the graph's parameter table (`graph::Graph::params`), under their table
//! names, all f32 when written (f64, bf16 and f16 are accepted on load). VGG-16 keeps the
//! names of its first format:
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
//! ResNets and MobileNetV2 use torchvision's `state_dict` keys (`layer1.0.conv1.weight`,
//! `bn1.running_var`, `fc.weight`, ...) with prunebench's layouts: kernels HWIO, dense
//! `[in, out]`.
//!
//! The header metadata holds `prunebench.format` ([`FORMAT`]; files of the first format,
//! `vgg16/1`, hold the same tensors and are read as well), `prunebench.arch` (the
//! architecture as JSON: form, input, per-conv channel list, BN, hidden widths, classes),
//! `prunebench.groups` (every dependency group's name and channel count, written for readers;
//! the loader derives them from the architecture) and any provenance keys the writer adds (e.g. how a pruned network was made).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};

use super::arch::Arch;
use super::network::Network;
use crate::error::{Error, Result};

/// The format this prunebench writes.
pub const FORMAT: &str = "prunebench/2";
/// Every format this prunebench reads (the first one: VGG-16 only, same tensors).
pub const READS: [&str; 2] = [FORMAT, "vgg16/1"];
const KEY_FORMAT: &str = "prunebench.format";
const KEY_ARCH: &str = "prunebench.arch";
/// Every dependency group's name and channel count, `name=channels` comma-separated in
/// group order (`*` marks the prunable ones), so a pruned file says what it kept.
const KEY_GROUPS: &str = "prunebench.groups";

/// The [`KEY_GROUPS`] line of `net`.
pub fn groups_line(net: &Network) -> String {
    let gs = crate::graph::groups::groups(&net.graph);
    gs.all()
        .iter()
        .map(|grp| format!("{}{}={}", if grp.prunable() { "*" } else { "" }, grp.name(&net.graph), grp.channels))
        .collect::<Vec<_>>()
        .join(",")
}

/// A loaded checkpoint of any form: the network and the metadata written with it.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub model: Network,
    /// Metadata beyond format and architecture (provenance).
    pub meta: BTreeMap<String, String>,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
}

/// Every tensor of `net` with its checkpoint name, shape and data.
pub fn named_tensors(net: &Network) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    net.graph.params().iter().zip(&net.tensors).map(|(p, t)| (p.name.clone(), p.dims.clone(), t.iter().copied().collect())).collect()
}

/// Serialises `net` with `meta` to safetensors bytes.
pub fn to_bytes(net: &Network, meta: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = net.tensors.iter().map(|t| t.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let mut views = Vec::with_capacity(bytes.len());
    for ((p, t), b) in net.graph.params().iter().zip(&net.tensors).zip(&bytes) {
        let view = TensorView::new(Dtype::F32, t.shape().to_vec(), b)
            .map_err(|e| Error::checkpoint("<memory>", format!("tensor {}: {e}", p.name)))?;
        views.push((p.name.clone(), view));
    }
    let mut header: HashMap<String, String> = meta.clone().into_iter().collect();
    header.insert(KEY_FORMAT.into(), FORMAT.into());
    header.insert(KEY_ARCH.into(), serde_json::to_string(&net.arch).expect("arch serialises"));
    header.insert(KEY_GROUPS.into(), groups_line(net));
    safetensors::serialize(views, &Some(header)).map_err(|e| Error::checkpoint("<memory>", e.to_string()))
}

/// Writes a checkpoint atomically (a temporary file renamed into place), so a crash never
/// leaves a half-written file under `path`. Returns the file's SHA-256.
///
/// The bytes are first read back with the loader's own rules ([`from_bytes`]: shapes,
/// finite values, ...), so no writer can leave a file prunebench cannot load: a network that
/// fails them (e.g. an infinite BN `running_var`) is an error and nothing is written.
pub fn save(path: &Path, net: &Network, meta: &BTreeMap<String, String>) -> Result<String> {
    let bytes = to_bytes(net, meta)?;
    from_bytes(&bytes).map_err(|m| Error::checkpoint(path, format!("not written, prunebench could not load it back: {m}")))?;
    crate::util::write_atomic(path, &bytes)?;
    Ok(hex_sha256(&bytes))
}

/// Checks `net` against the loader's rules (what [`save`] checks before writing); the error
/// names the first bad tensor, e.g. `tensor 'features.3.bn.running_var' holds a non-finite
/// value at flat index 2`.
pub fn check(net: &Network) -> std::result::Result<(), String> {
    let bytes = to_bytes(net, &BTreeMap::new()).map_err(|e| e.to_string())?;
    from_bytes(&bytes).map(|_| ())
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads and validates a checkpoint of any form; the error names the first tensor that is
/// wrong.
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

/// Parses checkpoint bytes of any form; the error is a message without the path.
pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
    let mut meta: BTreeMap<String, String> =
        header.metadata().clone().unwrap_or_default().into_iter().collect();
    let fmt = meta.remove(KEY_FORMAT);
    meta.remove(KEY_GROUPS);
    let arch_json = meta.remove(KEY_ARCH);
    let arch_json = match (fmt.as_deref(), arch_json) {
        (Some(f), Some(a)) if READS.contains(&f) => a,
        (Some(other), _) if !READS.contains(&other) => {
            return Err(format!("unsupported checkpoint format '{other}' (this prunebench reads {})", READS.join(", ")))
        }
        _ => {
            return Err(format!(
                "not a prunebench checkpoint: metadata '{KEY_FORMAT}'/'{KEY_ARCH}' missing \
                 (torchvision/timm weights must be imported first: prunebench import --help)"
            ))
        }
    };
    let arch: Arch = serde_json::from_str(&arch_json).map_err(|e| format!("metadata '{KEY_ARCH}' is not a valid architecture: {e}"))?;
    let graph = arch.graph().map_err(|e| e.to_string())?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("corrupt safetensors data: {e}"))?;

    let mut names: Vec<String> = st.names().into_iter().cloned().collect();
    names.sort();
    for n in &names {
        if graph.param_named(n).is_none() {
            return Err(format!("unexpected tensor '{n}' for architecture {}", arch.describe()));
        }
    }
    let mut tensors = Vec::with_capacity(graph.params().len());
    for p in graph.params() {
        let name = &p.name;
        let t = st.tensor(name).map_err(|_| format!("tensor '{name}' missing (architecture {})", arch.describe()))?;
        if t.shape() != p.dims.as_slice() {
            return Err(format!("tensor '{name}' has shape {:?}, expected {:?}", t.shape(), p.dims));
        }
        let data = decode(name, t.dtype(), t.data())?;
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(format!("tensor '{name}' holds a non-finite value at flat index {i}"));
        }
        tensors.push(ArrayD::from_shape_vec(IxDyn(&p.dims), data).expect("checked shape"));
    }
    Ok(Checkpoint { model: Network { arch, graph, tensors }, meta, sha256: String::new() })
}

/// The names of every tensor a checkpoint of `arch` holds.
pub fn tensor_names(arch: &Arch) -> Result<Vec<String>> {
    Ok(arch.graph()?.params().iter().map(|p| p.name.clone()).collect())
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

    fn small() -> Network {
        let mut v = Network::init(&Arch::cifar(0.0625, 1, 10, vec![8]).unwrap(), 3);
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
        bad.tensor_mut("features.3.bn.running_var").unwrap()[[2]] = f32::INFINITY;
        assert_eq!(check(&bad).unwrap_err(), "tensor 'features.3.bn.running_var' holds a non-finite value at flat index 2");
        assert!(check(&v).is_ok());
        let e = save(&path, &bad, &BTreeMap::new()).unwrap_err().to_string();
        assert!(e.contains("not written") && e.contains("features.3.bn.running_var") && e.contains("non-finite"), "{e}");
        // The earlier file is untouched and still loads; a new path is not created.
        assert_eq!(load(&path).unwrap().sha256, sha);
        let fresh = dir.path().join("new.safetensors");
        bad.tensor_mut("classifier.0.weight").unwrap()[[0, 0]] = f32::NAN;
        assert!(save(&fresh, &bad, &BTreeMap::new()).is_err());
        assert!(!fresh.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a temporary file was left behind");
    }

    #[test]
    fn names_the_first_wrong_tensor() {
        let mut net = small();
        let i = net.graph.param_named("features.4.bias").unwrap();
        net.tensors[i] = ArrayD::zeros(IxDyn(&[3]));
        let e = from_bytes(&to_bytes(&net, &BTreeMap::new()).unwrap()).unwrap_err();
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
        assert!(e.contains("not a prunebench checkpoint") && e.contains("import"), "{e}");
    }

    #[test]
    fn reads_the_first_format() {
        let v = small();
        let named = named_tensors(&v);
        let bytes: Vec<Vec<u8>> = named.iter().map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
        let views: Vec<(String, TensorView)> =
            named.iter().zip(&bytes).map(|((n, s, _), b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap())).collect();
        let header: HashMap<String, String> =
            [(KEY_FORMAT.to_string(), "vgg16/1".to_string()), (KEY_ARCH.to_string(), serde_json::to_string(&v.arch).unwrap())].into();
        let old = safetensors::serialize(views, &Some(header)).unwrap();
        assert_eq!(from_bytes(&old).unwrap().model, v);
        let mut header2: HashMap<String, String> = HashMap::new();
        header2.insert(KEY_FORMAT.into(), "vgg16/9".into());
        header2.insert(KEY_ARCH.into(), serde_json::to_string(&v.arch).unwrap());
        let e = from_bytes(&safetensors::serialize(Vec::<(String, TensorView)>::new(), &Some(header2)).unwrap()).unwrap_err();
        assert!(e.contains("'vgg16/9'") && e.contains("prunebench/2, vgg16/1"), "{e}");
    }

    #[test]
    fn every_form_round_trips() {
        use crate::model::Form;
        for form in Form::all() {
            let mut arch = Arch::new(form, 0.125, 1, 10).unwrap();
            if !form.is_vgg() {
                arch = arch.with_input(32, 32).unwrap();
            }
            let mut net = Network::init(&arch, 5);
            net.randomize_bn(6);
            let meta = BTreeMap::from([("prunebench.seed".to_string(), "5".to_string())]);
            let ck = from_bytes(&to_bytes(&net, &meta).unwrap()).unwrap();
            assert_eq!(ck.model, net, "{form}");
            assert_eq!(ck.meta, meta);
        }
    }
}
