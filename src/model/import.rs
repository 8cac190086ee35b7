//! Import of torchvision / timm weights saved as safetensors with their PyTorch names,
//! converted to prunebench's layout on load: VGG-16 (`vgg16`, `vgg16_bn`), ResNet-18/50
//! (`resnet18`, `resnet50`; the CIFAR ResNet-20/56 under the same names) and MobileNetV2
//! (`mobilenet_v2`).
//!
//! ResNets and MobileNetV2 keep torchvision's names in prunebench (their graphs use
//! [`Naming::Torchvision`](crate::graph::Naming)): each tensor is read under its own name,
//! conv kernels OIHW `[out, in/groups, kh, kw]` become HWIO, dense weights `[out, in]` become
//! `[in, out]`, BN tensors are taken as they are and `num_batches_tracked` is dropped. The
//! channel counts come from the file (a network pruned in PyTorch imports as it is); the input
//! is 224x224 with the channels of the first conv.
//!
//! torchvision layout: `features.N.weight` conv kernels OIHW `[out, in, 3, 3]` and biases,
//! with the 13 convs at `features.{0,2,5,7,10,12,14,17,19,21,24,26,28}` (`vgg16`) or
//! `features.{0,3,7,10,14,17,20,24,27,30,34,37,40}` (`vgg16_bn`, each followed by its BN at
//! `N+1`: `weight` = gamma, `bias` = beta, `running_mean`, `running_var`,
//! `num_batches_tracked`); `classifier.{0,3,6}.weight` `[out, in]`. The first classifier layer
//! reads the last map flattened in CHW order (`c * 49 + y * 7 + x`); prunebench flattens NHWC,
//! so its rows are permuted on import.

use std::path::Path;

use ndarray::{Array1, Array2, Array4, ArrayD, IxDyn};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

use super::arch::{Arch, Form, NUM_CONVS};
use super::network::Network;
use crate::error::{Error, Result};
use crate::graph::Role;

const PLAIN: [usize; 13] = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
const WITH_BN: [usize; 13] = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40];
const CLASSIFIER: [usize; 3] = [0, 3, 6];

fn f32s(st: &SafeTensors, name: &str, shape_of: &mut Vec<usize>) -> std::result::Result<Vec<f32>, String> {
    let t = st.tensor(name).map_err(|_| format!("tensor '{name}' missing"))?;
    *shape_of = t.shape().to_vec();
    let d = t.data();
    Ok(match t.dtype() {
        Dtype::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => d.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => d.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F64 => d.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect(),
        other => return Err(format!("tensor '{name}' has dtype {other:?}; expected a float type")),
    })
}

fn expect(name: &str, got: &[usize], want: &[usize]) -> std::result::Result<(), String> {
    if got != want {
        return Err(format!("tensor '{name}' has shape {got:?}, expected {want:?}"));
    }
    Ok(())
}

/// Converts torchvision-named VGG-16 weights (bytes of a safetensors file) to a VGG-16
/// [`Network`] of the ImageNet form. BN presence is detected (`features.1.running_mean`).
fn vgg_from_torchvision_bytes(bytes: &[u8]) -> std::result::Result<Network, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
    let names = st.names();
    let has = |n: &str| names.iter().any(|m| m.as_str() == n);
    if !has("features.0.weight") || !has("classifier.6.weight") {
        return Err("not torchvision VGG-16 weights: 'features.0.weight' or 'classifier.6.weight' missing".into());
    }
    let bn = has("features.1.running_mean");
    let idx = if bn { WITH_BN } else { PLAIN };
    let mut shape = Vec::new();
    let mut tensors: Vec<ArrayD<f32>> = Vec::new();
    let mut channels = Vec::with_capacity(NUM_CONVS);
    let mut cin = 0;
    let mut in_channels = 0;
    for (i, &n) in idx.iter().enumerate() {
        let wname = format!("features.{n}.weight");
        let w = f32s(&st, &wname, &mut shape)?;
        if shape.len() != 4 || shape[2] != 3 || shape[3] != 3 || (i > 0 && shape[1] != cin) {
            return Err(format!("tensor '{wname}' has shape {shape:?}, expected [out, {}, 3, 3]", if i == 0 { shape.get(1).copied().unwrap_or(0) } else { cin }));
        }
        let (o, ci) = (shape[0], shape[1]);
        if o == 0 {
            return Err(format!("tensor '{wname}' has shape {shape:?}: 0 output channels; every conv needs at least 1"));
        }
        // OIHW -> HWIO
        let oihw = Array4::from_shape_vec((o, ci, 3, 3), w).expect("checked");
        tensors.push(oihw.permuted_axes([2, 3, 1, 0]).as_standard_layout().to_owned().into_dyn());
        let bname = format!("features.{n}.bias");
        let bias = f32s(&st, &bname, &mut shape)?;
        expect(&bname, &shape, &[o])?;
        tensors.push(Array1::from(bias).into_dyn());
        if bn {
            for k in ["weight", "bias", "running_mean", "running_var"] {
                let name = format!("features.{}.{k}", n + 1);
                let v = f32s(&st, &name, &mut shape)?;
                expect(&name, &shape, &[o])?;
                tensors.push(Array1::from(v).into_dyn());
            }
        }
        if i == 0 {
            in_channels = ci;
        }
        channels.push(o);
        cin = o;
    }
    // The classifier tells the head widths; its first layer tells the final map size.
    let mut dims = Vec::new();
    let mut dense: Vec<(Array2<f32>, Array1<f32>)> = Vec::new();
    for (j, &n) in CLASSIFIER.iter().enumerate() {
        let wname = format!("classifier.{n}.weight");
        let w = f32s(&st, &wname, &mut shape)?;
        if shape.len() != 2 {
            return Err(format!("tensor '{wname}' has shape {shape:?}, expected [out, in]"));
        }
        let (o, i) = (shape[0], shape[1]);
        let wt = Array2::from_shape_vec((o, i), w).expect("checked").reversed_axes().as_standard_layout().to_owned();
        let bname = format!("classifier.{n}.bias");
        let b = f32s(&st, &bname, &mut shape)?;
        expect(&bname, &shape, &[o])?;
        if j > 0 && i != dims[j - 1] {
            return Err(format!("tensor '{wname}' reads {i} features but the layer before gives {}", dims[j - 1]));
        }
        dims.push(o);
        dense.push((wt, Array1::from(b)));
    }
    let c_last = channels[NUM_CONVS - 1];
    let flat = dense[0].0.shape()[0];
    if flat % c_last != 0 {
        return Err(format!("classifier.0 reads {flat} features, not a multiple of the last conv's {c_last} channels"));
    }
    let side = ((flat / c_last) as f64).sqrt().round() as usize;
    if side * side * c_last != flat {
        return Err(format!("classifier.0 reads {flat} features: not a square map of {c_last} channels"));
    }
    // CHW rows -> NHWC rows.
    let old = dense[0].0.clone();
    let mut new = Array2::<f32>::zeros(old.raw_dim());
    for c in 0..c_last {
        for p in 0..side * side {
            new.row_mut(p * c_last + c).assign(&old.row(c * side * side + p));
        }
    }
    dense[0].0 = new;
    for (w, b) in dense {
        tensors.push(w.into_dyn());
        tensors.push(b.into_dyn());
    }
    let arch = Arch {
        form: super::arch::Form::Imagenet,
        input: [side * 32, side * 32, in_channels],
        channels,
        batch_norm: bn,
        hidden: dims[..2].to_vec(),
        classes: dims[2],
    };
    arch.validate().map_err(|e| e.to_string())?;
    Network::new(arch, tensors).map_err(|e| e.to_string())
}

/// Reads a torchvision-style safetensors file of any supported network (see the module
/// docs), detected from its tensor names.
pub fn from_torchvision(path: &Path) -> Result<Network> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    from_torchvision_bytes(&bytes).map_err(|m| Error::checkpoint(path, m))
}

/// Which network torchvision names describe: VGG-16, a ResNet (by its stem and blocks) or
/// MobileNetV2.
fn detect(has: &dyn Fn(&str) -> bool, stem_k: Option<usize>) -> std::result::Result<Form, String> {
    if has("features.0.weight") && has("classifier.6.weight") {
        return Ok(Form::Imagenet);
    }
    if has("features.18.0.weight") && has("classifier.1.weight") {
        return Ok(Form::Mobilenetv2Imagenet);
    }
    if has("conv1.weight") && has("fc.weight") && has("layer1.0.conv1.weight") {
        return Ok(match (has("layer4.0.conv1.weight"), has("layer1.0.conv3.weight"), stem_k) {
            (true, true, _) => Form::Resnet50Imagenet,
            (true, false, _) => Form::Resnet18Imagenet,
            (false, _, Some(3)) if has("layer1.8.conv1.weight") => Form::Resnet56Cifar,
            (false, _, Some(3)) => Form::Resnet20Cifar,
            _ => return Err("ResNet names without 'layer4' and without a 3x3 stem: not a ResNet prunebench knows".into()),
        });
    }
    Err("not torchvision weights prunebench knows: expected VGG-16 ('features.0.weight', 'classifier.6.weight'), \
         ResNet ('conv1.weight', 'layer1.0.conv1.weight', 'fc.weight') or MobileNetV2 ('features.18.0.weight', \
         'classifier.1.weight')"
        .into())
}

/// [`from_torchvision`] on the file's bytes; the error is a message without the path.
pub fn from_torchvision_bytes(bytes: &[u8]) -> std::result::Result<Network, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
    let names = st.names();
    let has = |n: &str| names.iter().any(|m| m.as_str() == n);
    let stem_k = st.tensor("conv1.weight").ok().and_then(|t| t.shape().get(2).copied());
    let form = detect(&has, stem_k)?;
    if form.is_vgg() {
        return vgg_from_torchvision_bytes(bytes);
    }
    let mut shape = Vec::new();
    // The published network names every conv; the file's shapes give their channel counts.
    let published = Arch::new(form, 1.0, 3, 1000).map_err(|e| e.to_string())?.graph().map_err(|e| e.to_string())?;
    let mut channels = Vec::new();
    for (node, _) in published.convs() {
        let name = format!("{}.weight", node.name);
        f32s(&st, &name, &mut shape)?;
        match shape.as_slice() {
            [o, _, _, _] if *o > 0 => channels.push(*o),
            _ => return Err(format!("tensor '{name}' has shape {shape:?}, expected a conv kernel [out, in/groups, kh, kw]")),
        }
    }
    let in_channels = {
        f32s(&st, "conv1.weight", &mut shape).or_else(|_| f32s(&st, "features.0.0.weight", &mut shape))?;
        shape[1]
    };
    let classifier = if form == Form::Mobilenetv2Imagenet { "classifier.1.weight" } else { "fc.weight" };
    f32s(&st, classifier, &mut shape)?;
    let classes = match shape.as_slice() {
        [o, _] if *o > 0 => *o,
        _ => return Err(format!("tensor '{classifier}' has shape {shape:?}, expected [classes, features]")),
    };
    let side = form.default_side();
    let arch = Arch { form, input: [side, side, in_channels], channels, batch_norm: true, hidden: vec![], classes };
    let graph = arch.graph().map_err(|e| format!("the file's channel counts do not make a {form}: {e}"))?;
    let mut tensors = Vec::with_capacity(graph.params().len());
    for p in graph.params() {
        let data = f32s(&st, &p.name, &mut shape)?;
        let t = match p.role {
            Role::Kernel => {
                let [kh, kw, cin, o] = p.dims[..] else { unreachable!("kernels are rank 4") };
                expect(&p.name, &shape, &[o, cin, kh, kw])?;
                let oihw = Array4::from_shape_vec((o, cin, kh, kw), data).expect("checked");
                oihw.permuted_axes([2, 3, 1, 0]).as_standard_layout().to_owned().into_dyn()
            }
            Role::Weight => {
                let (i, o) = (p.dims[0], p.dims[1]);
                expect(&p.name, &shape, &[o, i])?;
                Array2::from_shape_vec((o, i), data).expect("checked").reversed_axes().as_standard_layout().to_owned().into_dyn()
            }
            _ => {
                expect(&p.name, &shape, &p.dims)?;
                ArrayD::from_shape_vec(IxDyn(&p.dims), data).expect("checked")
            }
        };
        if let Some(i) = t.iter().position(|x| !x.is_finite()) {
            return Err(format!("tensor '{}' holds a non-finite value at flat index {i}", p.name));
        }
        tensors.push(t);
    }
    for n in names {
        if graph.param_named(n).is_none() && !n.ends_with(".num_batches_tracked") {
            return Err(format!("unexpected tensor '{n}' for {}", arch.describe()));
        }
    }
    Network::new(arch, tensors).map_err(|e| e.to_string())
}
