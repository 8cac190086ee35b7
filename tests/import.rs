//! Import of torchvision-named VGG-16 weights: a file written here in torchvision's exact
//! layout (OIHW kernels, [out, in] dense weights, CHW flatten, vgg16 / vgg16_bn indices)
//! becomes the same network, and its classifier computes what PyTorch's would.

mod common;

use common::torchvision_bytes;
use prunebench::model::import::from_torchvision_bytes;
use prunebench::model::{Arch, Network};
use safetensors::tensor::{Dtype, TensorView};

#[test]
fn imports_vgg16_and_vgg16_bn() {
    for bn in [false, true] {
        let mut v = Network::init(&Arch::imagenet(1.0 / 16.0, 3, 7, bn).unwrap(), 3);
        v.randomize_bn(4);
        let got = from_torchvision_bytes(&torchvision_bytes(&v)).unwrap();
        assert_eq!(got.arch, v.arch);
        assert_eq!(got, v, "bn={bn}");
    }
}

/// Independent of the export above: PyTorch's first classifier layer on a 7x7xC map equals
/// prunebench's on the same map after import.
#[test]
fn classifier_reads_the_map_like_pytorch() {
    let v = Network::init(&Arch::imagenet(1.0 / 16.0, 3, 7, false).unwrap(), 5);
    let bytes = torchvision_bytes(&v);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("classifier.0.weight").unwrap();
    let torch_w: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let (out, inp) = (t.shape()[0], t.shape()[1]);
    let c = 32usize;
    assert_eq!(inp, 49 * c);
    // A feature map a[y][x][ch] with distinct values.
    let a = |y: usize, x: usize, ch: usize| ((y * 7 + x) * 31 + ch * 7) as f32 * 0.01 - 1.0;
    let got = from_torchvision_bytes(&bytes).unwrap();
    for o in [0, out / 2, out - 1] {
        let mut torch = 0.0f64;
        for ch in 0..c {
            for y in 0..7 {
                for x in 0..7 {
                    torch += (torch_w[o * inp + ch * 49 + y * 7 + x] * a(y, x, ch)) as f64;
                }
            }
        }
        let mut ours = 0.0f64;
        for y in 0..7 {
            for x in 0..7 {
                for ch in 0..c {
                    ours += (got.tensor("classifier.0.weight").unwrap()[[(y * 7 + x) * c + ch, o]] * a(y, x, ch)) as f64;
                }
            }
        }
        assert!((torch - ours).abs() < 1e-3, "{torch} vs {ours}");
    }
}

#[test]
fn rejects_other_files_clearly() {
    let data = vec![0u8; 16];
    let view = TensorView::new(Dtype::F32, vec![4], &data).unwrap();
    let bytes = safetensors::serialize(vec![("features.0.weight", view)], &None).unwrap();
    let e = from_torchvision_bytes(&bytes).unwrap_err();
    assert!(e.contains("not torchvision weights prunebench knows") && e.contains("VGG-16"), "{e}");
    let v = Network::init(&Arch::imagenet(1.0 / 16.0, 3, 7, false).unwrap(), 1);
    let mut bad = v.clone();
    *bad.tensor_mut("classifier.1.bias").unwrap() = ndarray::ArrayD::zeros(ndarray::IxDyn(&[3]));
    let e = from_torchvision_bytes(&torchvision_bytes(&bad)).unwrap_err();
    assert!(e.contains("classifier.3.bias"), "{e}");
}

/// A network's tensors in torchvision's layout under their (torchvision) names: kernels HWIO
/// -> OIHW, dense `[in, out]` -> `[out, in]`, and the `num_batches_tracked` (i64) PyTorch
/// keeps beside every BN.
fn torchvision_net_bytes(net: &prunebench::model::Network, edit: impl Fn(&str, &mut Vec<f32>, &[usize])) -> Vec<u8> {
    use prunebench::graph::Role;
    let mut named: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = Vec::new();
    for (p, t) in net.graph.params().iter().zip(&net.tensors) {
        let (shape, mut data): (Vec<usize>, Vec<f32>) = match p.role {
            Role::Kernel => {
                let s = t.shape();
                (vec![s[3], s[2], s[0], s[1]], t.view().permuted_axes(vec![3, 2, 0, 1]).iter().copied().collect())
            }
            Role::Weight => (vec![t.shape()[1], t.shape()[0]], t.t().iter().copied().collect()),
            _ => (t.shape().to_vec(), t.iter().copied().collect()),
        };
        edit(&p.name, &mut data, &shape);
        named.push((p.name.clone(), shape, data.iter().flat_map(|x| x.to_le_bytes()).collect(), Dtype::F32));
        if p.role == Role::RunningVar {
            let bn = p.name.trim_end_matches("running_var");
            named.push((format!("{bn}num_batches_tracked"), vec![], 7i64.to_le_bytes().to_vec(), Dtype::I64));
        }
    }
    let views: Vec<(String, TensorView)> =
        named.iter().map(|(n, s, b, d)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, &None).unwrap()
}

#[test]
fn imports_resnets_and_mobilenet_v2_by_their_torchvision_names() {
    use prunebench::model::Form;
    for form in [Form::Resnet18Imagenet, Form::Resnet50Imagenet, Form::Mobilenetv2Imagenet, Form::Resnet20Cifar, Form::Resnet56Cifar] {
        let arch = Arch::new(form, 1.0 / 16.0, 3, 7).unwrap();
        let mut net = Network::init(&arch, 3);
        prunebench::graph::init::randomize_bn(&net.graph, &mut net.tensors, 4);
        let got = from_torchvision_bytes(&torchvision_net_bytes(&net, |_, _, _| {})).unwrap();
        assert_eq!(got.arch, net.arch, "{form}");
        assert_eq!(got, net, "{form}");
    }
}

/// Independent of the writer's permutation: values placed by torchvision's index order
/// `[o, i, y, x]` and `[out, in]` land at prunebench's `[y, x, i, o]` and `[in, out]`.
#[test]
fn torchvision_layouts_map_to_hwio_and_in_out() {
    use prunebench::model::Form;
    let net = Network::init(&Arch::new(Form::Resnet18Imagenet, 1.0 / 16.0, 3, 7).unwrap(), 1);
    let f = |idx: &[usize]| idx.iter().fold(0.0f32, |a, &i| a * 10.0 + i as f32);
    let bytes = torchvision_net_bytes(&net, |name, data, shape| {
        if name == "conv1.weight" || name == "fc.weight" {
            let mut strides = vec![1; shape.len()];
            for k in (0..shape.len() - 1).rev() {
                strides[k] = strides[k + 1] * shape[k + 1];
            }
            for (flat, v) in data.iter_mut().enumerate() {
                let idx: Vec<usize> = strides.iter().zip(shape).map(|(s, n)| flat / s % n).collect();
                *v = f(&idx);
            }
        }
    });
    let got = from_torchvision_bytes(&bytes).unwrap();
    let k = got.tensor("conv1.weight").unwrap();
    assert_eq!(k.shape(), [7, 7, 3, 4]);
    assert_eq!(k[[5, 2, 1, 3]], f(&[3, 1, 5, 2]), "torch [o=3, i=1, y=5, x=2] is HWIO [5, 2, 1, 3]");
    let w = got.tensor("fc.weight").unwrap();
    assert_eq!(w.shape(), [32, 7]);
    assert_eq!(w[[20, 6]], f(&[6, 20]), "torch [out=6, in=20] is [in=20, out=6]");
}

#[test]
fn refuses_unknown_names_and_bad_shapes_by_name() {
    use prunebench::model::Form;
    let net = Network::init(&Arch::new(Form::Mobilenetv2Imagenet, 1.0 / 16.0, 3, 7).unwrap(), 1);
    let mut bytes = torchvision_net_bytes(&net, |_, _, _| {});
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut views: Vec<(String, TensorView)> = st.tensors().into_iter().collect();
    let extra = [0u8; 4];
    views.push(("features.19.weight".into(), TensorView::new(Dtype::F32, vec![1], &extra).unwrap()));
    let with_extra = safetensors::serialize(views, &None).unwrap();
    let e = from_torchvision_bytes(&with_extra).unwrap_err();
    assert!(e.contains("unexpected tensor 'features.19.weight'"), "{e}");
    // A depthwise conv whose channels disagree with the expand conv before it.
    let views: Vec<(String, TensorView)> = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap()
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != "features.2.conv.1.0.weight")
        .collect();
    let short = vec![0u8; 4 * 5 * 9];
    let mut views = views;
    views.push(("features.2.conv.1.0.weight".into(), TensorView::new(Dtype::F32, vec![5, 1, 3, 3], &short).unwrap()));
    bytes = safetensors::serialize(views, &None).unwrap();
    let e = from_torchvision_bytes(&bytes).unwrap_err();
    assert!(e.contains("features.2.conv.1.0"), "{e}");
    let e = from_torchvision_bytes(&safetensors::serialize(Vec::<(String, TensorView)>::new(), &None).unwrap()).unwrap_err();
    assert!(e.contains("ResNet") && e.contains("MobileNetV2"), "{e}");
}
