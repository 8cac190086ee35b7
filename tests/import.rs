//! Import of torchvision-named VGG-16 weights: a file written here in torchvision's exact
//! layout (OIHW kernels, [out, in] dense weights, CHW flatten, vgg16 / vgg16_bn indices)
//! becomes the same network, and its classifier computes what PyTorch's would.

mod common;

use common::torchvision_bytes;
use prunebench::model::import::from_torchvision_bytes;
use prunebench::model::{Arch, Vgg};
use safetensors::tensor::{Dtype, TensorView};

#[test]
fn imports_vgg16_and_vgg16_bn() {
    for bn in [false, true] {
        let mut v = Vgg::init(&Arch::imagenet(1.0 / 16.0, 3, 7, bn).unwrap(), 3);
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
    let v = Vgg::init(&Arch::imagenet(1.0 / 16.0, 3, 7, false).unwrap(), 5);
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
                    ours += (got.dense[0].weight[[(y * 7 + x) * c + ch, o]] * a(y, x, ch)) as f64;
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
    assert!(e.contains("not torchvision VGG-16"), "{e}");
    let v = Vgg::init(&Arch::imagenet(1.0 / 16.0, 3, 7, false).unwrap(), 1);
    let mut bad = v.clone();
    bad.dense[1].bias = ndarray::Array1::zeros(3);
    let e = from_torchvision_bytes(&torchvision_bytes(&bad)).unwrap_err();
    assert!(e.contains("classifier.3.bias"), "{e}");
}
