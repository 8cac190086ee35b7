//! Import of torchvision-named VGG-16 weights: a file written here in torchvision's exact
//! layout (OIHW kernels, [out, in] dense weights, CHW flatten, vgg16 / vgg16_bn indices)
//! becomes the same network, and its classifier computes what PyTorch's would.

use ndarray::Array2;
use prunebench::model::import::from_torchvision_bytes;
use prunebench::model::{Arch, Vgg};
use safetensors::tensor::{Dtype, TensorView};

const PLAIN: [usize; 13] = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
const WITH_BN: [usize; 13] = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40];

/// Writes `v` the way torchvision names and lays out its tensors.
fn torchvision_bytes(v: &Vgg) -> Vec<u8> {
    let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let idx = if v.arch.batch_norm { WITH_BN } else { PLAIN };
    for (i, c) in v.convs.iter().enumerate() {
        let n = idx[i];
        let oihw = c.kernel.view().permuted_axes([3, 2, 0, 1]);
        t.push((format!("features.{n}.weight"), oihw.shape().to_vec(), oihw.iter().copied().collect()));
        t.push((format!("features.{n}.bias"), vec![c.bias.len()], c.bias.to_vec()));
        if let Some(bn) = &c.bn {
            for (k, a) in [("weight", &bn.gamma), ("bias", &bn.beta), ("running_mean", &bn.mean), ("running_var", &bn.var)] {
                t.push((format!("features.{}.{k}", n + 1), vec![a.len()], a.to_vec()));
            }
        }
    }
    let (h, w) = v.arch.final_hw();
    let c_last = *v.arch.channels.last().unwrap();
    for (j, d) in v.dense.iter().enumerate() {
        let mut wt: Array2<f32> = d.weight.t().to_owned(); // [out, in]
        if j == 0 {
            // NHWC feature order -> torchvision's CHW order.
            let mut chw = wt.clone();
            for c in 0..c_last {
                for p in 0..h * w {
                    chw.column_mut(c * h * w + p).assign(&wt.column(p * c_last + c));
                }
            }
            wt = chw;
        }
        let n = [0, 3, 6][j];
        t.push((format!("classifier.{n}.weight"), wt.shape().to_vec(), wt.iter().copied().collect()));
        t.push((format!("classifier.{n}.bias"), vec![d.bias.len()], d.bias.to_vec()));
    }
    let bytes: Vec<Vec<u8>> = t.iter().map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(String, TensorView)> =
        t.iter().zip(&bytes).map(|((n, s, _), b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, &None).unwrap()
}

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
