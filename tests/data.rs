//! Data loaders on small files written here in the exact real formats, transforms, batches,
//! and (when installed) the real Fashion-MNIST test split.

use std::io::Write;
use std::path::{Path, PathBuf};

use prunebench::data::{
    cifar10, cifar100, epoch_order, fashion_mnist_from, load_cifar_files, load_idx_pair, load_image_folder, Augment,
    Batches, CifarKind, Dataset, FolderConfig, ImageFolder, LastBatch, Normalize, Source, Split,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---- writers for the real formats ------------------------------------------------------------

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn idx_images(n: usize, h: usize, w: usize, pixel: impl Fn(usize, usize, usize) -> u8) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        b.extend_from_slice(&(d as u32).to_be_bytes());
    }
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                b.push(pixel(i, y, x));
            }
        }
    }
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

fn px(i: usize, y: usize, x: usize) -> u8 {
    ((i * 37 + y * 28 + x) % 256) as u8
}

/// One CIFAR record: label byte(s), then the R, G, B planes (each 32x32 row-major).
fn cifar_record(labels: &[u8], plane: impl Fn(usize, usize) -> u8) -> Vec<u8> {
    let mut r = labels.to_vec();
    for c in 0..3 {
        for p in 0..1024 {
            r.push(plane(c, p));
        }
    }
    r
}

fn err_of<T: std::fmt::Debug>(r: prunebench::Result<T>) -> String {
    let e = r.expect_err("expected an error").to_string();
    eprintln!("error as shown: {e}");
    e
}

// ---- IDX -------------------------------------------------------------------------------------

#[test]
fn idx_gzip_and_raw_give_the_same_pixels_and_labels() {
    let t = tempfile::tempdir().unwrap();
    let imgs = idx_images(3, 28, 28, px);
    let labs = idx_labels(&[3, 0, 9]);
    // Names deliberately do not say which is gzip: detection is by magic bytes.
    let gi = write(&t.path().join("gz/images"), &gzip(&imgs));
    let gl = write(&t.path().join("gz/labels"), &gzip(&labs));
    let ri = write(&t.path().join("raw/images.gz"), &imgs);
    let rl = write(&t.path().join("raw/labels.gz"), &labs);
    let a = load_idx_pair(&gi, &gl, 10).unwrap();
    let b = load_idx_pair(&ri, &rl, 10).unwrap();
    assert_eq!(a.images, b.images);
    assert_eq!((a.n, a.hw, a.channels, a.classes), (3, (28, 28), 1, 10));
    assert_eq!(a.labels, vec![3, 0, 9]);
    for i in 0..3 {
        for (y, x) in [(0, 0), (5, 17), (27, 27)] {
            assert_eq!(a.image(i)[y * 28 + x], px(i, y, x) as f32 / 255.0);
        }
    }
    assert!(a.images.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn idx_truncated_files_name_the_incomplete_item() {
    let t = tempfile::tempdir().unwrap();
    let labs = write(&t.path().join("labels"), &idx_labels(&[1, 2, 3]));
    let mut imgs = idx_images(3, 28, 28, px);
    imgs.truncate(16 + 2 * 784 + 100);
    let p = write(&t.path().join("short-images"), &imgs);
    let e = err_of(load_idx_pair(&p, &labs, 10));
    assert!(e.contains("short-images") && e.contains("truncated"), "{e}");
    assert!(e.contains("item #2 at byte offset 1584"), "{e}");

    // A gzip stream cut in the middle.
    let gz = gzip(&idx_images(3, 28, 28, px));
    let p = write(&t.path().join("cut.gz"), &gz[..gz.len() / 2]);
    let e = err_of(load_idx_pair(&p, &labs, 10));
    assert!(e.contains("cut.gz") && e.contains("gzip"), "{e}");

    // Trailing bytes are an error too.
    let mut long = idx_labels(&[1, 2, 3]);
    long.push(7);
    let p = write(&t.path().join("long-labels"), &long);
    let i = write(&t.path().join("ok-images"), &idx_images(3, 28, 28, px));
    let e = err_of(load_idx_pair(&i, &p, 10));
    assert!(e.contains("long-labels") && e.contains("byte offset 11"), "{e}");
}

#[test]
fn idx_wrong_magic_count_mismatch_and_bad_label() {
    let t = tempfile::tempdir().unwrap();
    let imgs = write(&t.path().join("images"), &idx_images(2, 28, 28, px));
    let labs = write(&t.path().join("labels"), &idx_labels(&[1, 2]));

    // Images and labels swapped: the magic says so.
    let e = err_of(load_idx_pair(&labs, &imgs, 10));
    assert!(e.contains("labels") && e.contains("wrong magic 0x00000801") && e.contains("0x00000803"), "{e}");
    // Not an IDX file at all.
    let junk = write(&t.path().join("junk"), b"\x12\x34\x56\x78 and more");
    let e = err_of(load_idx_pair(&junk, &labs, 10));
    assert!(e.contains("junk") && e.contains("wrong magic 0x12345678"), "{e}");

    let three = write(&t.path().join("three-labels"), &idx_labels(&[1, 2, 3]));
    let e = err_of(load_idx_pair(&imgs, &three, 10));
    assert!(e.contains("three-labels") && e.contains("3 labels") && e.contains("2 images"), "{e}");

    let bad = write(&t.path().join("bad-labels"), &idx_labels(&[1, 10]));
    let e = err_of(load_idx_pair(&imgs, &bad, 10));
    assert!(e.contains("bad-labels") && e.contains("label 10 of record #1 (byte offset 9)"), "{e}");
}

#[test]
fn fashion_layout_loads_a_split_and_names_missing_files() {
    let t = tempfile::tempdir().unwrap();
    write(&t.path().join("t10k-images-idx3-ubyte.gz"), &gzip(&idx_images(4, 28, 28, px)));
    write(&t.path().join("t10k-labels-idx1-ubyte"), &idx_labels(&[0, 1, 2, 9]));
    let d = fashion_mnist_from(t.path(), Split::Test).unwrap();
    assert_eq!((d.name.as_str(), d.n, d.hw), ("fashion-mnist-test", 4, (28, 28)));
    let e = err_of(fashion_mnist_from(t.path(), Split::Train));
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("scripts/setup.sh"), "{e}");
}

#[test]
fn pad_to_centres_the_image() {
    let images: Vec<f32> = (0..2 * 28 * 28).map(|v| 1.0 + v as f32).collect();
    let d = Dataset::new("t", images, vec![0, 1], (28, 28), 1, 2).unwrap();
    let p = d.pad_to(32, 32).unwrap();
    assert_eq!((p.n, p.hw, p.labels.clone()), (2, (32, 32), vec![0, 1]));
    for i in 0..2 {
        let img = p.image(i);
        for y in 0..32 {
            for x in 0..32 {
                let inside = (2..30).contains(&y) && (2..30).contains(&x);
                let want = if inside { d.image(i)[(y - 2) * 28 + (x - 2)] } else { 0.0 };
                assert_eq!(img[y * 32 + x], want, "image {i} at ({y},{x})");
            }
        }
    }
    assert!(d.pad_to(20, 32).is_err());
}

// ---- CIFAR -----------------------------------------------------------------------------------

#[test]
fn cifar10_records_become_nhwc() {
    let t = tempfile::tempdir().unwrap();
    let mut bytes = cifar_record(&[7], |c, _| [10, 20, 30][c]);
    // Record 1: every plane encodes its position, to check the CHW -> HWC mapping.
    bytes.extend(cifar_record(&[2], |c, p| ((p + 85 * c) % 256) as u8));
    bytes.extend(cifar_record(&[9], |_, _| 255));
    let f = write(&t.path().join("test_batch.bin"), &bytes);
    let d = load_cifar_files(&[f], CifarKind::Cifar10, "c").unwrap();
    assert_eq!((d.n, d.hw, d.channels, d.classes), (3, (32, 32), 3, 10));
    assert_eq!(d.labels, vec![7, 2, 9]);
    for triplet in d.image(0).chunks(3) {
        assert_eq!(triplet, [10.0 / 255.0, 20.0 / 255.0, 30.0 / 255.0]);
    }
    for (y, x) in [(0, 0), (0, 31), (13, 5), (31, 31)] {
        let p = y * 32 + x;
        for c in 0..3 {
            assert_eq!(d.image(1)[p * 3 + c], ((p + 85 * c) % 256) as f32 / 255.0, "({y},{x}) channel {c}");
        }
    }
    assert!(d.image(2).iter().all(|&v| v == 1.0));
}

#[test]
fn cifar10_and_cifar100_splits_from_folders() {
    let t = tempfile::tempdir().unwrap();
    // CIFAR-10 as the archive extracts: dir/cifar-10-batches-bin/data_batch_{1..5}.bin
    let c10 = t.path().join("c10/cifar-10-batches-bin");
    for b in 1..=5u8 {
        let mut bytes = cifar_record(&[b], |_, _| b);
        bytes.extend(cifar_record(&[0], |_, _| 0));
        write(&c10.join(format!("data_batch_{b}.bin")), &bytes);
    }
    write(&c10.join("test_batch.bin"), &cifar_record(&[4], |_, _| 1));
    let train = cifar10(&t.path().join("c10"), Split::Train).unwrap();
    assert_eq!((train.n, train.name.as_str()), (10, "cifar10-train"));
    assert_eq!(train.labels, vec![1, 0, 2, 0, 3, 0, 4, 0, 5, 0]);
    assert_eq!(train.image(4)[0], 3.0 / 255.0);
    assert_eq!(cifar10(&c10, Split::Test).unwrap().labels, vec![4]);

    // CIFAR-100: coarse then fine label; the fine one is kept.
    let c100 = t.path().join("c100");
    let mut bytes = cifar_record(&[3, 42], |c, _| [10, 20, 30][c]);
    bytes.extend(cifar_record(&[19, 99], |_, _| 0));
    write(&c100.join("train.bin"), &bytes);
    let d = cifar100(&c100, Split::Train).unwrap();
    assert_eq!((d.n, d.classes, d.labels.clone()), (2, 100, vec![42, 99]));
    assert_eq!(&d.image(0)[..3], &[10.0 / 255.0, 20.0 / 255.0, 30.0 / 255.0]);

    let e = err_of(cifar100(&c100, Split::Test));
    assert!(e.contains("test.bin"), "{e}");
}

#[test]
fn cifar_truncated_and_bad_labels_name_file_and_position() {
    let t = tempfile::tempdir().unwrap();
    let mut bytes = cifar_record(&[1], |_, _| 0);
    bytes.extend(cifar_record(&[1], |_, _| 0));
    bytes.extend(vec![0; 100]);
    let f = write(&t.path().join("data_batch_1.bin"), &bytes);
    let e = err_of(load_cifar_files(&[f], CifarKind::Cifar10, "c"));
    assert!(e.contains("data_batch_1.bin") && e.contains("record #2 at byte offset 6146"), "{e}");

    let mut bytes = cifar_record(&[1], |_, _| 0);
    bytes.extend(cifar_record(&[10], |_, _| 0));
    let f = write(&t.path().join("bad.bin"), &bytes);
    let e = err_of(load_cifar_files(&[f], CifarKind::Cifar10, "c"));
    assert!(e.contains("bad.bin") && e.contains("record #1 (byte offset 3073)") && e.contains("label 10"), "{e}");

    // A CIFAR-10 file read as CIFAR-100: 3073 is not a multiple of 3074.
    let f = write(&t.path().join("one.bin"), &cifar_record(&[1], |_, _| 0));
    let e = err_of(load_cifar_files(&[f], CifarKind::Cifar100, "c"));
    assert!(e.contains("one.bin") && e.contains("record #0 at byte offset 0"), "{e}");

    let f = write(&t.path().join("fine.bin"), &cifar_record(&[0, 100], |_, _| 0));
    let e = err_of(load_cifar_files(&[f], CifarKind::Cifar100, "c"));
    assert!(e.contains("fine.bin") && e.contains("record #0") && e.contains("fine label 100"), "{e}");
}

// ---- ImageFolder -----------------------------------------------------------------------------

fn solid(w: u32, h: u32, rgb: [u8; 3]) -> image::RgbImage {
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb))
}

/// Left half red, right half blue.
fn halves(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, _| image::Rgb(if x < w / 2 { [255, 0, 0] } else { [0, 0, 255] }))
}

#[test]
fn image_folder_classes_labels_and_transform() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("val");
    for d in ["dog", "cat/nested"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    solid(300, 400, [200, 100, 50]).save(root.join("cat/a.png")).unwrap();
    halves(512, 256).save(root.join("cat/nested/b.PNG")).unwrap();
    solid(256, 256, [0, 255, 0]).save(root.join("dog/c.jpg")).unwrap();
    halves(100, 50).save(root.join("dog/d.jpeg")).unwrap();
    std::fs::write(root.join("dog/notes.txt"), "not an image").unwrap();

    let folder = ImageFolder::open(&root).unwrap();
    assert_eq!(folder.classes, vec!["cat", "dog"]);
    assert_eq!(folder.files.iter().map(|f| f.1).collect::<Vec<_>>(), vec![0, 0, 1, 1]);

    let raw = FolderConfig { normalize: None, threads: 2, ..FolderConfig::default() };
    let d = folder.load(&raw).unwrap();
    assert_eq!((d.n, d.hw, d.channels, d.classes, d.name.as_str()), (4, (224, 224), 3, 2, "val"));
    let near = |a: f32, b: f32, tol: f32| (a - b).abs() <= tol;
    let at = |i: usize, y: usize, x: usize| &d.image(i)[(y * 224 + x) * 3..(y * 224 + x) * 3 + 3];
    // PNG solid colour, resized 300x400 -> 256x341, cropped: exact colour.
    assert!(d.image(0).chunks(3).all(|p| p == [200.0 / 255.0, 100.0 / 255.0, 50.0 / 255.0]));
    // 512x256 is already the right size; the centre crop starts at x = 144, so its first 112
    // columns are red and the next 112 blue.
    assert_eq!(at(1, 0, 0), [1.0, 0.0, 0.0]);
    assert_eq!(at(1, 100, 111), [1.0, 0.0, 0.0]);
    assert_eq!(at(1, 100, 112), [0.0, 0.0, 1.0]);
    assert_eq!(at(1, 223, 223), [0.0, 0.0, 1.0]);
    // JPEG green, lossy.
    assert!(d.image(2).chunks(3).all(|p| near(p[0], 0.0, 0.05) && near(p[1], 1.0, 0.05) && near(p[2], 0.0, 0.05)));
    // 100x50 is upscaled to 512x256, then cropped the same way (JPEG, blurred at the edge).
    assert!(near(at(3, 50, 20)[0], 1.0, 0.1) && near(at(3, 50, 20)[2], 0.0, 0.1));
    assert!(near(at(3, 50, 200)[0], 0.0, 0.1) && near(at(3, 50, 200)[2], 1.0, 0.1));

    // The default normalises with ImageNet's statistics.
    let n = load_image_folder(&root, &FolderConfig::default()).unwrap();
    let want = [(200.0 / 255.0 - 0.485) / 0.229, (100.0 / 255.0 - 0.456) / 0.224, (50.0 / 255.0 - 0.406) / 0.225];
    for (a, b) in n.image(0)[..3].iter().zip(want) {
        assert!(near(*a, b, 1e-5), "{a} vs {b}");
    }

    // One thread gives the same result as two.
    let one = folder.load(&FolderConfig { threads: 1, ..raw.clone() }).unwrap();
    assert_eq!(one.images, d.images);

    assert_eq!(folder.subset(2, 3).files, folder.subset(2, 3).files);
    assert_eq!(folder.range(1, 3).len(), 2);
}

/// `--limit N` on an ImageFolder source decodes only N images, drawn across the classes (a
/// tree lists class by class, so the first N would all be one class).
#[test]
fn a_limited_image_folder_load_decodes_only_the_images_it_keeps() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("val");
    for (c, rgb) in [("a", [255, 0, 0]), ("b", [0, 255, 0]), ("c", [0, 0, 255])] {
        std::fs::create_dir_all(root.join(c)).unwrap();
        for i in 0..6 {
            solid(32, 32, rgb).save(root.join(c).join(format!("{i}.png"))).unwrap();
        }
    }
    let src: Source = format!("folder:{}", t.path().display()).parse().unwrap();
    let d = src.load_limited(Split::Test, [224, 224, 3], Some(6)).unwrap();
    assert_eq!((d.n, d.classes), (6, 3));
    let mut seen = d.labels.clone();
    seen.dedup();
    assert!(seen.len() >= 2, "labels {:?} come from one class", d.labels);
    assert_eq!(src.load_limited(Split::Test, [224, 224, 3], Some(6)).unwrap().images, d.images, "the same images each time");
    // Files outside the kept ones are never decoded: corrupt every image the subset skips.
    let tree = ImageFolder::open(&root).unwrap();
    let kept = tree.subset(6, prunebench::data::FOLDER_LIMIT_SEED);
    for (f, _) in &tree.files {
        if !kept.files.iter().any(|(k, _)| k == f) {
            std::fs::write(f, "not a png").unwrap();
        }
    }
    let again = src.load_limited(Split::Test, [224, 224, 3], Some(6)).unwrap();
    assert_eq!(again.images, d.images);
    // Without a limit the corrupt files are read and named.
    let e = src.load_limited(Split::Test, [224, 224, 3], None).unwrap_err().to_string();
    assert!(e.contains(".png"), "{e}");
}

#[test]
fn image_folder_errors_name_the_folder_or_file() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let e = err_of(ImageFolder::open(&root));
    assert!(e.contains("root") && e.contains("no class folders"), "{e}");

    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::create_dir_all(root.join("b")).unwrap();
    solid(8, 8, [1, 2, 3]).save(root.join("a/x.png")).unwrap();
    let e = err_of(ImageFolder::open(&root));
    assert!(e.contains(&root.join("b").display().to_string()) && e.contains("no .jpg"), "{e}");

    std::fs::write(root.join("b/broken.jpg"), b"\xff\xd8\xff\xe0 this is not a JPEG").unwrap();
    let e = err_of(load_image_folder(&root, &FolderConfig::default()));
    assert!(e.contains("broken.jpg") && e.contains("decode"), "{e}");

    let bad = FolderConfig { resize: 200, crop: 224, ..FolderConfig::default() };
    assert!(load_image_folder(&root, &bad).is_err());
}

// ---- transforms and batches --------------------------------------------------------------------

fn random_dataset(n: usize, h: usize, w: usize, c: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let images = (0..n * h * w * c).map(|_| rng.random_range(0.0f32..1.0)).collect();
    let labels = (0..n).map(|i| (i % 3) as u32).collect();
    Dataset::new("r", images, labels, (h, w), c, 3).unwrap()
}

fn mirror(img: &[f32], h: usize, w: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0.0; img.len()];
    for y in 0..h {
        for x in 0..w {
            let (d, s) = ((y * w + x) * c, (y * w + (w - 1 - x)) * c);
            out[d..d + c].copy_from_slice(&img[s..s + c]);
        }
    }
    out
}

/// The crop of `img` zero-padded by `pad`, at offset (pad + dy, pad + dx).
fn shifted(img: &[f32], h: usize, w: usize, c: usize, dy: isize, dx: isize) -> Vec<f32> {
    let mut out = vec![0.0; img.len()];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let (sy, sx) = (y + dy, x + dx);
            if (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx) {
                let (d, s) = ((y as usize * w + x as usize) * c, (sy as usize * w + sx as usize) * c);
                out[d..d + c].copy_from_slice(&img[s..s + c]);
            }
        }
    }
    out
}

#[test]
fn flip_really_flips_and_crop_keeps_size() {
    let d = random_dataset(1, 6, 7, 3, 1);
    let src = d.image(0);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut dst = vec![0.0; src.len()];
    let (mut flipped, mut kept) = (0, 0);
    for _ in 0..64 {
        Augment { pad: 0, flip: true }.apply(src, &mut dst, (6, 7), 3, &mut rng);
        if dst == src {
            kept += 1;
        } else {
            assert_eq!(dst, mirror(src, 6, 7, 3));
            flipped += 1;
        }
    }
    assert!(flipped > 10 && kept > 10, "flipped {flipped}, kept {kept}");

    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        Augment { pad: 2, flip: false }.apply(src, &mut dst, (6, 7), 3, &mut rng);
        assert_eq!(dst.len(), src.len());
        let shift = (-2..=2)
            .flat_map(|dy| (-2..=2).map(move |dx| (dy, dx)))
            .find(|&(dy, dx)| shifted(src, 6, 7, 3, dy, dx) == dst)
            .expect("the output is a crop of the zero-padded image");
        seen.insert(shift);
    }
    assert_eq!(seen.len(), 25, "every offset in -2..=2 x -2..=2 occurs");
}

#[test]
fn augmentation_and_order_are_seeded() {
    let d = random_dataset(20, 8, 8, 3, 2);
    let run = |seed, epoch| d.train_batches(4, seed, epoch, Augment::standard()).unwrap().collect::<Vec<_>>();
    assert_eq!(run(1, 0), run(1, 0));
    assert_ne!(run(1, 0), run(2, 0));
    assert_ne!(run(1, 0), run(1, 1));

    // Without augmentation, a training batch is exactly the shuffled samples.
    let order = epoch_order(20, 5, 3);
    let plain: Vec<_> = d.train_batches(4, 5, 3, Augment::none()).unwrap().collect();
    for (b, batch) in plain.iter().enumerate() {
        for k in 0..4 {
            let i = order[b * 4 + k];
            assert_eq!(&batch.images[k * 192..(k + 1) * 192], d.image(i));
            assert_eq!(batch.labels[k], d.labels[i] as i32);
        }
    }
}

#[test]
fn batches_pad_or_drop_the_last_one() {
    let d = random_dataset(10, 2, 2, 1, 3);
    let eval: Vec<_> = d.eval_batches(4).unwrap().collect();
    assert_eq!(eval.len(), 3);
    assert_eq!(eval.iter().map(|b| b.valid).collect::<Vec<_>>(), vec![4, 4, 2]);
    let last = &eval[2];
    assert_eq!(last.images.len(), 16);
    assert_eq!(&last.images[..8], &d.images[32..40]);
    assert!(last.images[8..].iter().all(|&v| v == 0.0));
    assert_eq!(last.labels, vec![d.labels[8] as i32, d.labels[9] as i32, 0, 0]);

    let train = Batches::new(&d, 4, LastBatch::Drop).unwrap();
    assert_eq!(train.len(), 2);
    assert!(train.map(|b| b.valid).all(|v| v == 4));
    assert!(d.eval_batches(0).is_err());

    // Normalisation applies to real images only.
    let norm = Normalize::new(vec![0.5], vec![0.25]).unwrap();
    let b = d.eval_batches(4).unwrap().normalized(norm).unwrap().nth(2).unwrap();
    assert_eq!(b.images[0], (d.images[32] - 0.5) / 0.25);
    assert!(b.images[8..].iter().all(|&v| v == 0.0));
    assert!(d.eval_batches(4).unwrap().normalized(Normalize::imagenet()).is_err());
}

#[test]
fn subsets_are_first_k_or_seeded() {
    let d = random_dataset(50, 2, 2, 1, 4);
    let first = d.take(7);
    assert_eq!((first.n, &first.labels[..], &first.images[..]), (7, &d.labels[..7], &d.images[..28]));
    assert_eq!(d.take(500).n, 50);
    let s = d.sample(10, 11);
    assert_eq!(s, d.sample(10, 11));
    assert_ne!(s, d.sample(10, 12));
    assert_eq!(s.n, 10);
    // Each sampled image is one of the dataset's, in dataset order.
    let pos: Vec<usize> =
        (0..10).map(|k| (0..50).find(|&i| d.image(i) == s.image(k)).expect("sampled image exists")).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
}

// ---- the real thing --------------------------------------------------------------------------

#[test]
fn real_fashion_mnist_test_split_when_installed() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.join("t10k-images-idx3-ubyte.gz").is_file() {
        eprintln!(
            "note: {} absent; skipping the real Fashion-MNIST check (bash scripts/setup.sh installs it)",
            dir.display()
        );
        return;
    }
    let d = fashion_mnist_from(dir, Split::Test).unwrap();
    assert_eq!((d.n, d.hw, d.channels, d.classes), (10_000, (28, 28), 1, 10));
    assert_eq!(d.class_counts(), vec![1_000; 10]);
    assert!(d.images.iter().all(|v| (0.0..=1.0).contains(v)));
    let norm = Normalize::from_dataset(&d);
    // Fashion-MNIST's well-known statistics: mean 0.286, std 0.353.
    assert!((norm.mean[0] - 0.286).abs() < 0.01 && (norm.std[0] - 0.353).abs() < 0.01, "{norm:?}");
    let p = d.pad_to(32, 32).unwrap();
    assert_eq!((p.n, p.hw), (10_000, (32, 32)));
}

/// `cargo test --release --test data -- --ignored --nocapture`: times the full train split.
#[test]
#[ignore = "timing; run with --release -- --ignored --nocapture"]
fn time_real_fashion_mnist_train_load() {
    let dir = match prunebench::data::fashion_mnist_dir() {
        Ok(d) => d,
        Err(e) => return eprintln!("note: skipping: {e}"),
    };
    let t = std::time::Instant::now();
    let d = fashion_mnist_from(&dir, Split::Train).unwrap();
    let load = t.elapsed();
    let t = std::time::Instant::now();
    let p = d.pad_to(32, 32).unwrap();
    let pad = t.elapsed();
    let t = std::time::Instant::now();
    let norm = Normalize::from_dataset(&p);
    let batches = p.train_batches(128, 0, 0, Augment::standard()).unwrap().normalized(norm).unwrap().count();
    let epoch = t.elapsed();
    assert_eq!((d.n, d.class_counts()), (60_000, vec![6_000; 10]));
    eprintln!(
        "{}: load {load:.2?}, pad_to(32,32) {pad:.2?}, stats + {batches} augmented normalised batches of 128 {epoch:.2?}",
        dir.display()
    );
}
