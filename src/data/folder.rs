//! ImageFolder trees: `root/<class>/**/*.{jpg,jpeg,png}`, the layout of ImageNet's validation
//! set as torchvision reads it. Classes are the sorted folder names; label `i` is the `i`-th.
//!
//! Images get the standard evaluation transform: resize so the shorter side is `resize`
//! (bilinear, antialiased; the longer side `floor(resize * long / short)`, as torchvision),
//! centre crop `crop x crop` (top-left offset rounded half to even, as torchvision), scale to
//! `[0, 1]`, then normalise per channel. Decoding runs on worker threads.
//!
//! Memory: a 224x224x3 image is 602 KB as `f32`, so all 50,000 ImageNet validation images
//! would need 30 GB; take a [`subset`](ImageFolder::subset) or load [`range`](ImageFolder::range)s.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use image::imageops::FilterType;

use crate::error::{Error, Result};

use super::batch::random_indices;
use super::dataset::Dataset;
use super::transform::Normalize;

const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The evaluation transform and how many threads decode.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderConfig {
    /// The shorter side after resizing (256).
    pub resize: u32,
    /// The side of the centre crop (224).
    pub crop: u32,
    /// Normalisation after scaling to `[0, 1]`; `None` leaves pixels in `[0, 1]`.
    pub normalize: Option<Normalize>,
    /// Decoding threads; 0 uses every available core.
    pub threads: usize,
    /// The most pixels an image may have, as stored and after the resize (2^26 by default,
    /// 64 Mpx); a bigger one is an error naming its size. Bounds memory per decoding thread
    /// to about 8 bytes per pixel of this, whatever an image's header claims.
    pub max_pixels: u64,
}

impl Default for FolderConfig {
    /// Resize 256, crop 224, ImageNet normalisation, all cores, at most 2^26 pixels.
    fn default() -> Self {
        FolderConfig { resize: 256, crop: 224, normalize: Some(Normalize::imagenet()), threads: 0, max_pixels: 1 << 26 }
    }
}

impl FolderConfig {
    fn check(&self) -> Result<()> {
        if self.crop == 0 || self.resize < self.crop {
            return Err(Error::invalid(
                "image folder transform",
                format!("resize {} crop {}", self.resize, self.crop),
                "the crop must be at least 1 and no larger than the resized shorter side",
            ));
        }
        if let Some(n) = &self.normalize {
            n.check_channels(3, "image folder")?;
        }
        let crop_px = self.crop as u64 * self.crop as u64;
        if self.max_pixels < crop_px {
            return Err(Error::invalid(
                "image folder max_pixels",
                self.max_pixels,
                format!("allow at least the crop's {crop_px} pixels"),
            ));
        }
        Ok(())
    }
}

/// The files of an ImageFolder tree, found but not yet decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolder {
    pub root: PathBuf,
    /// Class names (folder names), sorted; the label of a class is its index here.
    pub classes: Vec<String>,
    /// Every image file with its label, by class then by path.
    pub files: Vec<(PathBuf, u32)>,
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| Error::io(dir, e)))
        .collect::<Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

fn is_hidden(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn is_image(p: &Path) -> bool {
    p.extension().is_some_and(|e| EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()))
}

/// Appends the image files under `dir` (recursively, sorted) to `out`.
fn collect_images(dir: &Path, label: u32, out: &mut Vec<(PathBuf, u32)>) -> Result<()> {
    for p in read_dir_sorted(dir)? {
        if is_hidden(&p) {
            continue;
        }
        if p.is_dir() {
            collect_images(&p, label, out)?;
        } else if is_image(&p) && p.is_file() {
            out.push((p, label));
        }
    }
    Ok(())
}

impl ImageFolder {
    /// Lists `root`'s class folders (hidden ones skipped) and their `.jpg`/`.jpeg`/`.png`
    /// files (any case). No class folder, or a class folder without images, is an error
    /// naming the folder.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::file(root, "not a folder: an ImageFolder root holds one folder per class"));
        }
        let class_dirs: Vec<PathBuf> =
            read_dir_sorted(root)?.into_iter().filter(|p| p.is_dir() && !is_hidden(p)).collect();
        if class_dirs.is_empty() {
            return Err(Error::file(root, "no class folders: an ImageFolder root holds one folder per class"));
        }
        let mut classes = Vec::with_capacity(class_dirs.len());
        let mut files = Vec::new();
        for (label, dir) in class_dirs.iter().enumerate() {
            let before = files.len();
            collect_images(dir, label as u32, &mut files)?;
            if files.len() == before {
                return Err(Error::file(dir, "class folder holds no .jpg, .jpeg or .png images"));
            }
            classes.push(dir.file_name().unwrap_or_default().to_string_lossy().into_owned());
        }
        Ok(ImageFolder { root: root.to_path_buf(), classes, files })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// `k` images chosen by `seed` (all when `k >= len`), kept in tree order; the classes stay.
    pub fn subset(&self, k: usize, seed: u64) -> ImageFolder {
        let mut idx = random_indices(self.files.len(), k, seed);
        idx.sort_unstable();
        ImageFolder {
            root: self.root.clone(),
            classes: self.classes.clone(),
            files: idx.into_iter().map(|i| self.files[i].clone()).collect(),
        }
    }

    /// The images `start..end` (clamped to `len`), not yet decoded.
    pub fn range(&self, start: usize, end: usize) -> ImageFolder {
        let end = end.min(self.files.len());
        ImageFolder {
            root: self.root.clone(),
            classes: self.classes.clone(),
            files: self.files[start.min(end)..end].to_vec(),
        }
    }

    /// Decodes and transforms every image on `config.threads` threads into a
    /// `crop x crop x 3` dataset. An image that fails to open or decode is an error naming it.
    pub fn load(&self, config: &FolderConfig) -> Result<Dataset> {
        config.check()?;
        let side = config.crop as usize;
        let per = side * side * 3;
        let n = self.files.len();
        let mut images = vec![0f32; n * per];
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |t| t.get()),
            t => t,
        }
        .clamp(1, n.max(1));
        let chunk = n.div_ceil(threads).max(1);
        let failed = AtomicBool::new(false);
        let results: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = images
                .chunks_mut(chunk * per)
                .zip(self.files.chunks(chunk))
                .map(|(out, files)| {
                    let failed = &failed;
                    s.spawn(move || {
                        for (dst, (path, _)) in out.chunks_exact_mut(per).zip(files) {
                            if failed.load(Ordering::Relaxed) {
                                return Ok(());
                            }
                            if let Err(e) = eval_transform(path, config, dst) {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("image decoding thread panicked")).collect()
        });
        results.into_iter().collect::<Result<Vec<()>>>()?;
        let labels = self.files.iter().map(|(_, l)| *l).collect();
        let name = self.root.file_name().unwrap_or_default().to_string_lossy().into_owned();
        Dataset::new(name, images, labels, (side, side), 3, self.classes.len())
    }
}

/// Opens `root` as an [`ImageFolder`] and loads all of it.
pub fn load_image_folder(root: &Path, config: &FolderConfig) -> Result<Dataset> {
    ImageFolder::open(root)?.load(config)
}

/// Decodes `path` (format from its content, not its name) and writes the transformed
/// `crop x crop x 3` HWC image into `dst`.
fn eval_transform(path: &Path, config: &FolderConfig, dst: &mut [f32]) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    eval_transform_bytes(&bytes, config, dst).map_err(|m| Error::file(path, m))
}

/// Decodes the bytes of one JPEG or PNG image (format from its content) and writes it, with
/// the evaluation transform of `config`, into `dst` (`crop x crop x 3` HWC `f32`, so
/// `dst.len()` must be `3 * crop^2`). The error (a message without the file name) says why the
/// image cannot be read: not decodable, 0 pixels, or more than `config.max_pixels` pixels as
/// stored or once its shorter side is resized (a 1 x 60000 image would become 256 x 15.4M).
pub fn eval_transform_bytes(bytes: &[u8], config: &FolderConfig, dst: &mut [f32]) -> std::result::Result<(), String> {
    config.check().map_err(|e| e.to_string())?;
    let crop = config.crop;
    let want = 3 * crop as usize * crop as usize;
    if dst.len() != want {
        return Err(format!("output holds {} values; a {crop}x{crop}x3 image needs {want}", dst.len()));
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read image: {e}"))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(config.max_pixels.saturating_mul(8));
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| format!("cannot decode image: {e}"))?;
    let too_big = |what: &str, w: u32, h: u32| {
        format!(
            "image is {w}x{h} pixels {what}, more than the {} allowed (raise FolderConfig::max_pixels, or shrink it)",
            config.max_pixels
        )
    };
    let (w, h) = (decoded.width(), decoded.height());
    if w == 0 || h == 0 {
        return Err(format!("image is {w}x{h}"));
    }
    if w as u64 * h as u64 > config.max_pixels {
        return Err(too_big("as stored", w, h));
    }
    let rgb = decoded.to_rgb8();
    let r = config.resize as u64;
    let (nw, nh) = if w <= h { (r, r * h as u64 / w as u64) } else { (r * w as u64 / h as u64, r) };
    if nw.saturating_mul(nh) > config.max_pixels {
        return Err(too_big(&format!("once resized to {nw}x{nh}"), w, h));
    }
    let (nw, nh) = (nw as u32, nh as u32);
    let resized = if (nw, nh) == (w, h) { rgb } else { image::imageops::resize(&rgb, nw, nh, FilterType::Triangle) };
    let top = ((nh - crop) as f64 / 2.0).round_ties_even() as u32;
    let left = ((nw - crop) as f64 / 2.0).round_ties_even() as u32;
    let lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
    for y in 0..crop {
        for x in 0..crop {
            let p = resized.get_pixel(left + x, top + y).0;
            let d = ((y * crop + x) * 3) as usize;
            dst[d..d + 3].copy_from_slice(&[lut[p[0] as usize], lut[p[1] as usize], lut[p[2] as usize]]);
        }
    }
    if let Some(norm) = &config.normalize {
        norm.apply(dst);
    }
    Ok(())
}
