//! PJRT layer against the real CPU plugin (`bash scripts/setup.sh` installs it), and plugin
//! discovery against fake folders. No test ever loads libtpu.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use half::bf16;
use prunebench::pjrt::discover::{find_plugin, DeviceChoice, Probe};
use prunebench::pjrt::{Buffer, Client, ElementType, Plugin};
use prunebench::Error;

// ---- helpers ---------------------------------------------------------------------------------

fn plugin() -> Plugin {
    let found =
        find_plugin(DeviceChoice::Cpu, None).expect("CPU plugin (run `bash scripts/setup.sh`)");
    assert_eq!(found.device, DeviceChoice::Cpu);
    Plugin::load(&found.path).expect("load CPU plugin")
}

/// One client shared by most tests (creating a CPU client is not free).
fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| plugin().client().expect("client"))
}

fn upload_f32(c: &Client, data: &[f32], dims: &[i64]) -> Buffer {
    c.upload(data, dims, &c.default_device().unwrap()).unwrap()
}

const DOT_ADD: &str = r#"
module @m {
  func.func public @main(%arg0: tensor<2x3xf32>, %arg1: tensor<3x2xf32>) -> (tensor<2x2xf32>) {
    %0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0] : (tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x2xf32>
    %1 = stablehlo.add %0, %0 : tensor<2x2xf32>
    return %1 : tensor<2x2xf32>
  }
}
"#;

// ---- plugin, client, devices -------------------------------------------------------------------

#[test]
fn plugin_loads_with_api_0_81_or_newer() {
    let p = plugin();
    let (major, minor) = p.api_version();
    assert_eq!(major, 0);
    assert!(minor >= 81, "API 0.{minor}");
    assert!(p.path().is_absolute());
    // Loading again gives the same (already initialised) plugin.
    assert_eq!(Plugin::load(p.path()).unwrap().path(), p.path());
    let attrs = p.attributes().unwrap();
    eprintln!("plugin attributes: {attrs:?}");
}

#[test]
fn client_has_cpu_devices() {
    let c = client();
    assert_eq!(c.platform_name().unwrap(), "cpu");
    eprintln!("platform version: {:?}", c.platform_version().unwrap());
    let devices = c.devices().unwrap();
    assert!(!devices.is_empty());
    for d in &devices {
        assert_eq!(d.kind(), "cpu");
    }
    assert_eq!(devices[0].id(), 0);
    let stats = devices[0].memory_stats().unwrap();
    eprintln!("device memory stats: {stats:?}");
}

#[test]
fn loading_a_non_plugin_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("not_a_plugin.so");
    std::fs::write(&fake, b"not an ELF file").unwrap();
    assert!(matches!(Plugin::load(&fake), Err(Error::PluginLoad { .. })));
    let missing = dir.path().join("missing.so");
    assert!(matches!(
        Plugin::load(&missing),
        Err(Error::PluginLoad { .. })
    ));
}

#[test]
fn plugin_load_refuses_libtpu_without_tpu_hardware() {
    if Probe::system().tpu_hardware() {
        return; // on a TPU host the guard rightly lets libtpu through
    }
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libtpu.so");
    std::fs::write(&fake, b"never opened").unwrap();
    match Plugin::load(&fake) {
        Err(Error::PluginLoad { message, .. }) => {
            assert!(message.contains("no TPU hardware"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

// ---- compile and execute ---------------------------------------------------------------------------

#[test]
fn dot_general_and_add_give_exact_numbers() {
    let c = client();
    let exe = c.compile(DOT_ADD).unwrap();
    assert_eq!(exe.num_outputs().unwrap(), 1);
    let a = upload_f32(c, &[1., 2., 3., 4., 5., 6.], &[2, 3]);
    let b = upload_f32(c, &[1., 2., 3., 4., 5., 6.], &[3, 2]);
    for _ in 0..3 {
        let out = exe.execute(&[&a, &b]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].dims().unwrap(), vec![2, 2]);
        assert_eq!(out[0].element_type().unwrap(), ElementType::F32);
        // [[22, 28], [49, 64]] doubled.
        assert_eq!(out[0].to_host::<f32>().unwrap(), vec![44., 56., 98., 128.]);
    }
    // Inputs are not donated by default: still readable.
    assert_eq!(a.to_host::<f32>().unwrap(), vec![1., 2., 3., 4., 5., 6.]);
    let out = exe.execute_donated(&[&a, &b], &[]).unwrap();
    assert_eq!(out[0].to_host::<f32>().unwrap(), vec![44., 56., 98., 128.]);
    assert!(matches!(
        exe.execute_donated(&[&a, &b], &[2]),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn f64_module() {
    let c = client();
    let exe = c
        .compile(
            r#"
module @m {
  func.func public @main(%x: tensor<4xf64>, %y: tensor<4xf64>) -> tensor<4xf64> {
    %0 = stablehlo.subtract %x, %y : tensor<4xf64>
    %1 = stablehlo.multiply %0, %y : tensor<4xf64>
    return %1 : tensor<4xf64>
  }
}"#,
        )
        .unwrap();
    // (x - y) * y: no multiply-add the compiler could fuse, so results match Rust's exactly.
    let x = [0.1f64, -2.5, 1e300, 3.0];
    let y = [0.3f64, 0.3, 1e-300, 1.0 / 3.0];
    let d = c.default_device().unwrap();
    let bx = c.upload(&x, &[4], &d).unwrap();
    let by = c.upload(&y, &[4], &d).unwrap();
    let out = exe.execute(&[&bx, &by]).unwrap();
    assert_eq!(out[0].element_type().unwrap(), ElementType::F64);
    let want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| (a - b) * b).collect();
    let got = out[0].to_host::<f64>().unwrap();
    assert_eq!(got, want);
    assert_ne!(
        got[0],
        f64::from((0.1f32 - 0.3f32) * 0.3f32),
        "computed in f64"
    );
}

#[test]
fn bf16_and_i32_round_trip() {
    let c = client();
    let d = c.default_device().unwrap();
    let h: Vec<bf16> = [1.0f32, -0.5, 3.140625, 1e-3, 65504.0, 0.0]
        .iter()
        .map(|&x| bf16::from_f32(x))
        .collect();
    let b = c.upload(&h, &[2, 3], &d).unwrap();
    assert_eq!(b.element_type().unwrap(), ElementType::BF16);
    assert_eq!(b.dims().unwrap(), vec![2, 3]);
    assert_eq!(b.to_host::<bf16>().unwrap(), h);
    // Reading with the wrong type is an error, not garbage.
    assert!(matches!(b.to_host::<f32>(), Err(Error::Invalid { .. })));

    let ints = [i32::MIN, -1, 0, 1, i32::MAX, 42];
    let b = c.upload(&ints, &[6], &d).unwrap();
    assert_eq!(b.element_type().unwrap(), ElementType::I32);
    assert_eq!(b.to_host::<i32>().unwrap(), ints.to_vec());
    // A scalar.
    let s = c.upload(&[7i32], &[], &d).unwrap();
    assert_eq!(s.dims().unwrap(), Vec::<i64>::new());
    assert_eq!(s.to_host::<i32>().unwrap(), vec![7]);
}

#[test]
fn module_with_two_outputs() {
    let c = client();
    let exe = c
        .compile(
            r#"
module @m {
  func.func public @main(%x: tensor<3xi32>, %y: tensor<3xi32>) -> (tensor<3xi32>, tensor<i32>) {
    %0 = stablehlo.add %x, %y : tensor<3xi32>
    %c = stablehlo.constant dense<0> : tensor<i32>
    %1 = stablehlo.reduce(%0 init: %c) applies stablehlo.add across dimensions = [0] : (tensor<3xi32>, tensor<i32>) -> tensor<i32>
    return %0, %1 : tensor<3xi32>, tensor<i32>
  }
}"#,
        )
        .unwrap();
    assert_eq!(exe.num_outputs().unwrap(), 2);
    let d = c.default_device().unwrap();
    let x = c.upload(&[1, 2, 3], &[3], &d).unwrap();
    let y = c.upload(&[10, 20, 30], &[3], &d).unwrap();
    let out = exe.execute(&[&x, &y]).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].to_host::<i32>().unwrap(), vec![11, 22, 33]);
    assert_eq!(out[1].dims().unwrap(), Vec::<i64>::new());
    assert_eq!(out[1].to_host::<i32>().unwrap(), vec![66]);
}

#[test]
fn compiled_memory_stats_cost_analysis_and_optimized_program() {
    let exe = client().compile(DOT_ADD).unwrap();
    let m = exe.compiled_memory_stats().unwrap();
    eprintln!("compiled memory stats: {m:?}");
    for v in [
        m.argument_bytes,
        m.output_bytes,
        m.alias_bytes,
        m.temp_bytes,
        m.generated_code_bytes,
    ] {
        assert!(v >= 0, "{m:?}");
    }
    assert_eq!(m.argument_bytes, 2 * 6 * 4, "{m:?}");
    assert_eq!(m.output_bytes, 4 * 4, "{m:?}");

    let cost = exe.cost_analysis().unwrap();
    eprintln!("cost analysis: {cost:?}");
    if let Some((_, flops)) = cost.iter().find(|(k, _)| k == "flops") {
        assert!(*flops > 0.0);
    }
    match exe.optimized_program().unwrap() {
        Some((format, bytes)) => {
            eprintln!(
                "optimized program: format {format:?}, {} bytes",
                bytes.len()
            );
            assert!(!bytes.is_empty());
        }
        None => eprintln!("optimized program: unimplemented"),
    }
}

// ---- errors --------------------------------------------------------------------------------------

#[test]
fn broken_module_is_a_pjrt_error_with_the_parse_message() {
    let broken = "module @m {\n  func.func public @main(%x: tensor<2xf32>) -> tensor<2xf32> {\n    %0 = stablehlo.add %x, : tensor<2xf32>\n    return %0 : tensor<2xf32>\n  }\n}\n";
    match client().compile(broken) {
        Err(Error::Pjrt {
            call,
            code,
            message,
        }) => {
            eprintln!("compile error [{code}] from {call}: {message}");
            assert_eq!(call, "PJRT_Client_Compile");
            assert!(!code.is_empty());
            let m = message.to_lowercase();
            assert!(m.contains("parse") || m.contains("expected"), "{message}");
        }
        other => panic!("expected Error::Pjrt, got {other:?}"),
    }
}

#[test]
fn wrong_arguments_are_errors_not_crashes() {
    let c = client();
    let d = c.default_device().unwrap();
    assert!(matches!(
        c.upload(&[1.0f32; 5], &[2, 3], &d),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        c.upload(&[1.0f32; 6], &[-2, -3], &d),
        Err(Error::Shape { .. })
    ));
    let exe = c.compile(DOT_ADD).unwrap();
    let a = upload_f32(c, &[0.; 6], &[2, 3]);
    let b = upload_f32(c, &[0.; 6], &[3, 2]);
    let b_int = c.upload(&[0i32; 6], &[3, 2], &d).unwrap();
    let small = upload_f32(c, &[0.; 1], &[1]);
    assert!(exe.execute(&[&a, &b]).is_ok());
    // Too few arguments, wrong dims, wrong element type (same byte size: the plugin itself
    // would run it and return garbage), wrong size: all errors.
    for args in [
        vec![&a],
        vec![&a, &a],
        vec![&a, &b_int],
        vec![&a, &small],
        vec![&a, &b, &b],
    ] {
        match exe.execute(&args) {
            Err(e @ Error::Shape { .. }) => eprintln!("{e}"),
            other => panic!("expected a shape error, got {other:?}"),
        }
    }
}

#[test]
fn objects_may_be_dropped_in_any_order() {
    let p = plugin();
    let c = p.client().unwrap();
    let d = c.devices().unwrap().remove(0);
    let exe = c.compile(DOT_ADD).unwrap();
    let a = c
        .upload(&[1.0f32, 2., 3., 4., 5., 6.], &[2, 3], &d)
        .unwrap();
    let b = c
        .upload(&[1.0f32, 2., 3., 4., 5., 6.], &[3, 2], &d)
        .unwrap();
    drop(c);
    drop(p);
    // Executable and buffers keep the client (and plugin) alive.
    let out = exe.execute(&[&a, &b]).unwrap();
    drop(exe);
    drop(a);
    assert_eq!(out[0].to_host::<f32>().unwrap(), vec![44., 56., 98., 128.]);
    drop(d);
    drop(b);
    drop(out);

    // Buffers from one client cannot be passed to another client's executable.
    let c1 = plugin().client().unwrap();
    let c2 = plugin().client().unwrap();
    let exe = c1.compile(DOT_ADD).unwrap();
    let a = upload_f32(&c2, &[0.; 6], &[2, 3]);
    let b = upload_f32(&c2, &[0.; 6], &[3, 2]);
    assert!(matches!(exe.execute(&[&a, &b]), Err(Error::Invalid { .. })));
    assert!(matches!(
        c1.upload(&[0.0f32], &[1], &c2.default_device().unwrap()),
        Err(Error::Invalid { .. })
    ));
}

// ---- discovery with fake folders ------------------------------------------------------------------

fn touch(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"fake plugin").unwrap();
}

const CPU_REL: &str = ".pjrt/cpu/xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so";
const GPU_REL: &str = ".pjrt/gpu/jax_plugins/xla_cuda13/xla_cuda_plugin.so";
const TPU_REL: &str = ".pjrt/tpu/libtpu/libtpu.so";

/// A fake machine: `root` for /dev, /proc, /usr; a project folder as the current directory.
struct Fake {
    _dir: tempfile::TempDir,
    root: PathBuf,
    project: PathBuf,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let project = dir.path().join("project");
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::create_dir_all(&project).unwrap();
        Fake {
            _dir: dir,
            root,
            project,
        }
    }
    fn probe(&self) -> Probe {
        Probe {
            root: self.root.clone(),
            cwd: Some(self.project.join("src/deep")),
            exe_dir: None,
            env: Default::default(),
        }
    }
}

#[test]
fn auto_picks_cpu_when_no_gpu_is_visible_and_gpu_when_one_is() {
    let f = Fake::new();
    touch(&f.project.join(CPU_REL));
    touch(&f.project.join(GPU_REL));
    let found = f.probe().find(DeviceChoice::Auto, None).unwrap();
    assert_eq!(found.device, DeviceChoice::Cpu);
    assert_eq!(found.path, f.project.join(CPU_REL));

    touch(&f.root.join("dev/nvidia0"));
    let found = f.probe().find(DeviceChoice::Auto, None).unwrap();
    assert_eq!(found.device, DeviceChoice::Gpu);
    assert_eq!(found.path, f.project.join(GPU_REL));
    // Asked for explicitly, CPU is still CPU.
    assert_eq!(
        f.probe().find(DeviceChoice::Cpu, None).unwrap().device,
        DeviceChoice::Cpu
    );
}

#[test]
fn gpu_visible_through_proc_driver() {
    let f = Fake::new();
    touch(&f.project.join(CPU_REL));
    touch(&f.project.join(GPU_REL));
    std::fs::create_dir_all(f.root.join("proc/driver/nvidia/gpus")).unwrap();
    assert!(!f.probe().gpu_visible(), "an empty gpus folder is no GPU");
    std::fs::create_dir_all(f.root.join("proc/driver/nvidia/gpus/0000:00:04.0")).unwrap();
    assert_eq!(
        f.probe().find(DeviceChoice::Auto, None).unwrap().device,
        DeviceChoice::Gpu
    );
}

#[test]
fn libtpu_without_tpu_hardware_is_skipped_by_auto_and_refused_when_asked() {
    let f = Fake::new();
    touch(&f.project.join(CPU_REL));
    touch(&f.project.join(TPU_REL));
    let probe = f.probe();
    assert!(!probe.tpu_hardware());
    let found = probe.find(DeviceChoice::Auto, None).unwrap();
    assert_eq!(found.device, DeviceChoice::Cpu);

    for explicit in [None, Some(f.project.join(TPU_REL))] {
        match probe.find(DeviceChoice::Tpu, explicit.as_deref()) {
            Err(e @ Error::Invalid { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("no TPU hardware was detected"), "{msg}");
                assert!(
                    msg.contains("TPU_ACCELERATOR_TYPE") && msg.contains("accel"),
                    "{msg}"
                );
            }
            other => panic!("expected a no-TPU error, got {other:?}"),
        }
    }
    // `--plugin .../libtpu.so` with auto: named as TPU, so refused too.
    assert!(probe
        .find(DeviceChoice::Auto, Some(&f.project.join(TPU_REL)))
        .is_err());
}

#[test]
fn tpu_hardware_makes_auto_pick_libtpu() {
    for marker in ["dev/accel0", "dev/vfio/0", "env"] {
        let f = Fake::new();
        touch(&f.project.join(CPU_REL));
        touch(&f.project.join(GPU_REL));
        touch(&f.project.join(TPU_REL));
        touch(&f.root.join("dev/nvidia0"));
        let mut probe = f.probe();
        if marker == "env" {
            probe
                .env
                .insert("TPU_ACCELERATOR_TYPE".into(), "v5litepod-1".into());
        } else {
            touch(&f.root.join(marker));
        }
        assert!(probe.tpu_hardware(), "{marker}");
        let found = probe.find(DeviceChoice::Auto, None).unwrap();
        assert_eq!(
            found,
            prunebench::pjrt::Found {
                device: DeviceChoice::Tpu,
                path: f.project.join(TPU_REL)
            }
        );
    }
    // /dev/vfio/vfio (the control node) alone is not a TPU.
    let f = Fake::new();
    touch(&f.root.join("dev/vfio/vfio"));
    assert!(!f.probe().tpu_hardware());
}

#[test]
fn missing_plugin_error_lists_paths_and_setup_command() {
    let f = Fake::new();
    let py = f.root.join("usr/local/lib/python3.11/site-packages");
    std::fs::create_dir_all(&py).unwrap();
    for (device, install, rel) in [
        (DeviceChoice::Cpu, "bash scripts/setup.sh", CPU_REL),
        (DeviceChoice::Gpu, "bash scripts/setup.sh --gpu", GPU_REL),
    ] {
        match f.probe().find(device, None) {
            Err(Error::PluginNotFound {
                device: d,
                searched,
                install: i,
            }) => {
                assert_eq!(d, device.to_string());
                assert_eq!(i, install);
                let lines: Vec<&str> = searched.lines().collect();
                let expect = f.project.join("src/deep").join(rel);
                assert!(lines.contains(&expect.to_str().unwrap()), "{searched}");
                assert!(
                    lines.iter().any(|l| l.starts_with(py.to_str().unwrap())),
                    "{searched}"
                );
            }
            other => panic!("expected PluginNotFound, got {other:?}"),
        }
    }
    // Auto with nothing installed reports the CPU search.
    let err = f
        .probe()
        .find(DeviceChoice::Auto, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bash scripts/setup.sh") && err.contains("'cpu'"),
        "{err}"
    );
}

#[test]
fn search_order_env_project_walk_exe_dir_site_packages() {
    let f = Fake::new();
    // Site-packages only.
    let py = f.root.join("usr/lib/python3.12/dist-packages");
    touch(&py.join("xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so"));
    assert_eq!(
        f.probe().find(DeviceChoice::Cpu, None).unwrap().path,
        py.join("xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so")
    );

    // The executable's folder walk finds the project (target/release/prunebench).
    let other = f.root.join("elsewhere");
    touch(&other.join(CPU_REL));
    let mut probe = f.probe();
    probe.exe_dir = Some(other.join("target/release"));
    assert_eq!(
        probe.find(DeviceChoice::Cpu, None).unwrap().path,
        other.join(CPU_REL)
    );

    // The current directory's walk comes before the executable's.
    touch(&f.project.join(CPU_REL));
    assert_eq!(
        probe.find(DeviceChoice::Cpu, None).unwrap().path,
        f.project.join(CPU_REL)
    );

    // PRUNEBENCH_HOME before both.
    let home = f.root.join("home");
    touch(&home.join(CPU_REL));
    probe.env.insert(
        "PRUNEBENCH_HOME".into(),
        home.to_string_lossy().into_owned(),
    );
    assert_eq!(
        probe.find(DeviceChoice::Cpu, None).unwrap().path,
        home.join(CPU_REL)
    );

    // PRUNEBENCH_PLUGIN before that, and --plugin before everything.
    let env_plugin = f.root.join("custom/pjrt_c_api_cpu_plugin.so");
    touch(&env_plugin);
    probe.env.insert(
        "PRUNEBENCH_PLUGIN".into(),
        env_plugin.to_string_lossy().into_owned(),
    );
    let found = probe.find(DeviceChoice::Auto, None).unwrap();
    assert_eq!(
        found,
        prunebench::pjrt::Found {
            device: DeviceChoice::Cpu,
            path: env_plugin.clone()
        }
    );
    let cuda = f.root.join("custom/xla_cuda_plugin.so");
    touch(&cuda);
    let found = probe.find(DeviceChoice::Auto, Some(&cuda)).unwrap();
    assert_eq!(
        found,
        prunebench::pjrt::Found {
            device: DeviceChoice::Gpu,
            path: cuda
        }
    );
    // A --plugin path that does not exist is an error, not a fallback.
    assert!(matches!(
        probe.find(DeviceChoice::Cpu, Some(&f.root.join("nope.so"))),
        Err(Error::PluginLoad { .. })
    ));
}

#[test]
fn device_choice_parses_and_prints() {
    for (s, d) in [
        ("auto", DeviceChoice::Auto),
        ("CPU", DeviceChoice::Cpu),
        ("gpu", DeviceChoice::Gpu),
        ("tpu", DeviceChoice::Tpu),
    ] {
        assert_eq!(s.parse::<DeviceChoice>().unwrap(), d);
        assert_eq!(d.to_string(), s.to_lowercase());
    }
    let err = "npu".parse::<DeviceChoice>().unwrap_err().to_string();
    assert!(
        err.contains("auto, cpu, gpu, tpu") && err.contains("npu"),
        "{err}"
    );
}

#[test]
fn many_arguments_and_outputs() {
    // More than the 64 pointers kept on the stack, both ways.
    let n = 70;
    let params: Vec<String> = (0..n).map(|i| format!("%a{i}: tensor<f32>")).collect();
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!(
            "    %r{i} = stablehlo.add %a{i}, %a{i} : tensor<f32>\n"
        ));
    }
    let results: Vec<String> = (0..n).map(|i| format!("%r{i}")).collect();
    let types = vec!["tensor<f32>"; n].join(", ");
    let text = format!(
        "module @m {{\n  func.func public @main({}) -> ({types}) {{\n{body}    return {} : {types}\n  }}\n}}\n",
        params.join(", "),
        results.join(", ")
    );
    let c = client();
    let exe = c.compile(&text).unwrap();
    assert_eq!(exe.num_outputs().unwrap(), n);
    let d = c.default_device().unwrap();
    let inputs: Vec<Buffer> = (0..n)
        .map(|i| c.upload(&[i as f32], &[], &d).unwrap())
        .collect();
    let refs: Vec<&Buffer> = inputs.iter().collect();
    let out = exe.execute(&refs).unwrap();
    let got: Vec<f32> = out.iter().map(|b| b.to_host::<f32>().unwrap()[0]).collect();
    let want: Vec<f32> = (0..n).map(|i| 2.0 * i as f32).collect();
    assert_eq!(got, want);
}
