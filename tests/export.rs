//! ONNX and StableHLO export: the exported network, run by ONNX Runtime, OpenVINO and the CPU
//! PJRT plugin, equals the independent f64 reference (`graph::reference`) on small networks of
//! every form, pruned and unpruned.

mod common;

use ndarray::{Array4, ArrayD, IxDyn};
use prost::Message;
use prunebench::engine::{self, Runtime};
use prunebench::export::onnx::{self, Bn};
use prunebench::export::onnx_proto::{DimensionValue, ModelProto};
use prunebench::export::{stablehlo, Exporter, Onnx, StableHlo};
use prunebench::hlo::DType;
use prunebench::lower::Lowering;
use prunebench::model::{Arch, Form, Network};
use prunebench::prune::{self, Plan, Schedule, ScoreContext};

/// A small network of `form` (the f64 reference interpreter is the slow part): width 0.0625
/// for VGG-16, 0.125 for the ResNets, 0.25 for MobileNetV2; 3 input channels, 10 classes,
/// a 32x32 input (64x64 for VGG-16's ImageNet form, whose head then flattens a 2x2 map), BN
/// statistics randomized so folding matters.
fn small(form: Form, seed: u64) -> Network {
    let name = form.to_string();
    let width = if name.starts_with("vgg") {
        0.0625
    } else if name.starts_with("resnet") {
        0.125
    } else {
        0.25
    };
    let side = if form == Form::Imagenet { 64 } else { 32 };
    let arch = Arch::new(form, width, 3, 10).unwrap().with_input(side, side).unwrap();
    let mut net = Network::init(&arch, seed);
    net.randomize_bn(seed + 1);
    net
}

fn pruned(net: &Network) -> Network {
    prune::prune(net, &Plan::new("l1", Schedule::Uniform(0.5)), &ScoreContext::weights_only()).unwrap().model
}

fn reference(net: &Network, x: &Array4<f32>) -> Vec<f64> {
    common::logits(net, &x.mapv(f64::from)).iter().copied().collect()
}

fn on(rt: Runtime, net: &Network, x: &Array4<f32>, batch: usize) -> Vec<f64> {
    let mut m = engine::load(rt, net, batch).unwrap_or_else(|e| panic!("{rt}: {e} (run `bash scripts/setup.sh`)"));
    let n = x.shape()[0];
    m.predict(x.as_slice().unwrap(), n).unwrap().iter().map(|&v| v as f64).collect()
}

#[test]
fn onnx_runtime_equals_the_reference_for_every_form_pruned_and_unpruned() {
    for form in Form::all() {
        let t = std::time::Instant::now();
        let net = small(form, 3);
        let [h, w, c] = net.arch.input;
        // 3 images through batch 2: the last batch is padded, the padding dropped.
        let x = common::images(3, h, w, c, 7);
        for (what, n) in [("unpruned", net.clone()), ("pruned", pruned(&net))] {
            let want = reference(&n, &x);
            let got = on(Runtime::OnnxRuntime, &n, &x, 2);
            let e = common::rel_err(&got, &want);
            assert!(e < 1e-4, "{form} {what}: ONNX Runtime vs f64 reference: relative error {e:.2e}");
        }
        eprintln!("{form}: {:.1} s", t.elapsed().as_secs_f64());
    }
}

#[test]
fn openvino_equals_the_reference() {
    for form in [Form::Cifar, Form::Resnet20Cifar, Form::Mobilenetv2Cifar, Form::Imagenet] {
        let net = pruned(&small(form, 5));
        let [h, w, c] = net.arch.input;
        let x = common::images(2, h, w, c, 8);
        let e = common::rel_err(&on(Runtime::OpenVino, &net, &x, 2), &reference(&net, &x));
        assert!(e < 1e-4, "{form}: OpenVINO vs f64 reference: relative error {e:.2e}");
    }
}

/// The ONNX model's structure: opset, IO names and shapes (dynamic batch), one Conv per conv,
/// BN nodes only when kept; both BN forms compute the same function.
#[test]
fn onnx_graph_structure_and_bn_kept() {
    let net = pruned(&small(Form::Resnet20Cifar, 9));
    let m = ModelProto::decode(onnx::to_bytes(&net, Bn::Fold).unwrap().as_slice()).unwrap();
    assert_eq!((m.ir_version, m.opset_import[0].version, m.opset_import[0].domain.as_str()), (8, 17, ""));
    let g = m.graph.as_ref().unwrap();
    let dims = |v: &prunebench::export::onnx_proto::ValueInfoProto| -> Vec<String> {
        let t = v.r#type.as_ref().unwrap().tensor_type.as_ref().unwrap();
        t.shape.as_ref().unwrap().dim.iter().map(|d| match d.value.as_ref().unwrap() {
            DimensionValue::DimValue(n) => n.to_string(),
            DimensionValue::DimParam(s) => s.clone(),
        }).collect()
    };
    assert_eq!((g.input[0].name.as_str(), dims(&g.input[0])), ("input", vec!["batch".into(), "3".into(), "32".into(), "32".into()]));
    assert_eq!((g.output[0].name.as_str(), dims(&g.output[0])), ("logits", vec!["batch".into(), "10".into()]));
    let count = |g: &prunebench::export::onnx_proto::GraphProto, op: &str| g.node.iter().filter(|n| n.op_type == op).count();
    let convs = net.graph.convs().count();
    assert_eq!((count(g, "Conv"), count(g, "BatchNormalization"), count(g, "Add"), count(g, "Gemm")), (convs, 0, 9, 1));
    // Every initializer's byte size matches its dims; pruned channel counts are in them.
    for t in &g.initializer {
        assert_eq!(t.raw_data.len(), 4 * t.dims.iter().product::<i64>() as usize, "{}", t.name);
    }
    let kept = ModelProto::decode(onnx::to_bytes(&net, Bn::Keep).unwrap().as_slice()).unwrap();
    let bns = net.graph.nodes().iter().filter(|n| n.op == prunebench::graph::Op::BatchNorm).count();
    assert_eq!(count(kept.graph.as_ref().unwrap(), "BatchNormalization"), bns);
    // The kept form through ONNX Runtime equals the reference too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    Onnx { bn: Bn::Keep }.export(&net, &path).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() > 1000);
}

/// The StableHLO bundle, compiled by the CPU plugin from its own files (program text, weights
/// in manifest order), equals the reference.
#[test]
fn stablehlo_bundle_runs_from_its_files() {
    let net = pruned(&small(Form::Resnet20Cifar, 11));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    let plan = vec![Lowering::Direct; net.graph.convs().count()];
    let files = StableHlo { batch: 2, dtype: DType::F32, plan }.export(&net, &out).unwrap();
    assert_eq!(files.len(), 3);
    let text = std::fs::read_to_string(out.join(stablehlo::PROGRAM)).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(stablehlo::MANIFEST)).unwrap()).unwrap();
    let args = manifest["arguments"].as_array().unwrap();
    assert_eq!(args[0]["shape"], serde_json::json!([2, 32, 32, 3]));
    let bytes = std::fs::read(out.join(stablehlo::WEIGHTS)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let s = common::cpu();
    let exe = s.client.compile(&text).unwrap();
    let x = common::images(2, 32, 32, 3, 4);
    let mut bufs = vec![s.upload(x.as_slice().unwrap(), &[2, 32, 32, 3], DType::F32).unwrap()];
    for a in &args[1..] {
        let t = st.tensor(a["name"].as_str().unwrap()).unwrap();
        let v: Vec<f32> = t.data().chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let dims: Vec<usize> = t.shape().to_vec();
        assert_eq!(serde_json::json!(dims), a["shape"]);
        bufs.push(s.upload_tensor(&ArrayD::from_shape_vec(IxDyn(&dims), v).unwrap(), DType::F32).unwrap());
    }
    let refs: Vec<&_> = bufs.iter().collect();
    let out: Vec<f32> = exe.execute(&refs).unwrap()[0].to_host().unwrap();
    let got: Vec<f64> = out.iter().map(|&v| v as f64).collect();
    let e = common::rel_err(&got, &reference(&net, &x));
    assert!(e < 1e-4, "StableHLO bundle vs reference: {e:.2e}");
    // prunebench's own CPU kernel is refused by name.
    let k = vec![Lowering::Kernel; net.graph.convs().count()];
    let err = StableHlo { batch: 2, dtype: DType::F32, plan: k }.export(&net, &dir.path().join("k")).unwrap_err().to_string();
    assert!(err.contains("kernel") && err.contains("--lowering xla"), "{err}");
}

#[test]
fn runtime_names_and_a_missing_library() {
    assert_eq!("ort".parse::<Runtime>().unwrap(), Runtime::OnnxRuntime);
    assert_eq!("OpenVINO".parse::<Runtime>().unwrap(), Runtime::OpenVino);
    let e = "tensorrt".parse::<Runtime>().unwrap_err().to_string();
    assert!(e.contains("tensorrt") && e.contains("onnxruntime"), "{e}");
    // Through the binary (the variable is read once per process): an explicit path that does
    // not exist is named with the fix.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prunebench"))
        .args(["latency", "--runtime", "onnxruntime", "--width", "0.25", "--batch", "1"])
        .env("PRUNEBENCH_ONNXRUNTIME", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("/nonexistent/libonnxruntime.so") && err.contains("PRUNEBENCH_ONNXRUNTIME"), "{err}");
    // The wrong library for OpenVINO (ONNX Runtime's): a clean error naming the right one, no
    // panic (exit status 1, not 101).
    let ort_lib = engine::find_library(Runtime::OnnxRuntime).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prunebench"))
        .args(["latency", "--runtime", "openvino", "--width", "0.0625", "--batch", "1"])
        .env("PRUNEBENCH_OPENVINO", &ort_lib)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("libopenvino_c.so") && !err.contains("panicked"), "{err}");
    // A repeated runtime (an alias) is measured once.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("l.csv");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prunebench"))
        .args(["latency", "--runtime", "onnxruntime,ort", "--width", "0.0625,0.125", "--batch", "1"])
        .args(["--warmup", "1", "--min-iters", "3", "--time-cap-s", "0", "--out", csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 3, "a header and one row per width:\n{text}");
    assert!(text.lines().skip(1).all(|l| l.contains(",onnxruntime,onnxruntime 1.")), "{text}");
    // Options of the other format are refused, not ignored.
    let ck = dir.path().join("m.safetensors");
    prunebench::model::checkpoint::save(&ck, &small(Form::Resnet20Cifar, 1), &Default::default()).unwrap();
    for (args, says) in [
        (vec!["--format", "onnx", "--batch", "8"], "for --format stablehlo"),
        (vec!["--format", "stablehlo", "--bn", "keep"], "for --format onnx"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_prunebench"))
            .args(["export", "--checkpoint", ck.to_str().unwrap(), "--out", dir.path().join("x").to_str().unwrap()])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{args:?}: {err}");
    }
    // A non-f32 dtype with another runtime is refused before anything loads.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prunebench"))
        .args(["latency", "--runtime", "xla,openvino", "--dtype", "bf16"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--dtype bf16") && err.contains("openvino"), "{err}");
}
