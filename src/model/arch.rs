//! A network's architecture as data: its form, input shape, the output channels of every
//! conv, and (VGG-16) the head. A pruned network is the same structure with other channel
//! counts. [`Arch::graph`] turns it into the [`Graph`] every other path derives from.
//!
//! Forms (the names are what CLI flags, suites and checkpoints store):
//!
//! | form | network | default input |
//! |---|---|---|
//! | `vgg16-cifar` | VGG-16 with BN, small head | 32x32 |
//! | `vgg16-imagenet` | VGG-16, 4096-4096 head, BN optional | 224x224 |
//! | `resnet20-cifar`, `resnet56-cifar` | He et al.'s CIFAR ResNets, 1x1 projections | 32x32 |
//! | `resnet18-imagenet`, `resnet50-imagenet` | torchvision's ResNet-18 / ResNet-50 | 224x224 |
//! | `mobilenetv2-imagenet` | torchvision's MobileNetV2 | 224x224 |
//! | `mobilenetv2-cifar` | MobileNetV2, stem and first 24-channel block at stride 1 | 32x32 |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::graph::nets::{mobilenet, resnet::ResNet, vgg};
use crate::graph::{Graph, Op};

pub use crate::graph::nets::scale_width;
pub use crate::graph::nets::vgg::CHANNELS as VGG16_CHANNELS;

/// Number of VGG-16's conv layers.
pub const NUM_CONVS: usize = VGG16_CHANNELS.len();

/// The architectures prunebench knows. The VGG-16 variants keep their historical names
/// `Cifar` and `Imagenet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Form {
    /// `vgg16-cifar`: VGG-16, 32x32 input, BN after every conv, small head.
    #[serde(rename = "vgg16-cifar")]
    Cifar,
    /// `vgg16-imagenet`: VGG-16, 224x224 input, 4096-4096-1000 head, BN optional.
    #[serde(rename = "vgg16-imagenet")]
    Imagenet,
    /// `resnet20-cifar`: ResNet-20 (3 stages of 3 basic blocks), 32x32.
    #[serde(rename = "resnet20-cifar")]
    Resnet20Cifar,
    /// `resnet56-cifar`: ResNet-56 (3 stages of 9 basic blocks), 32x32.
    #[serde(rename = "resnet56-cifar")]
    Resnet56Cifar,
    /// `resnet18-imagenet`: torchvision's ResNet-18, 224x224.
    #[serde(rename = "resnet18-imagenet")]
    Resnet18Imagenet,
    /// `resnet50-imagenet`: torchvision's ResNet-50, 224x224.
    #[serde(rename = "resnet50-imagenet")]
    Resnet50Imagenet,
    /// `mobilenetv2-imagenet`: torchvision's MobileNetV2, 224x224.
    #[serde(rename = "mobilenetv2-imagenet")]
    Mobilenetv2Imagenet,
    /// `mobilenetv2-cifar`: MobileNetV2 with stride 1 in the stem and the first 24-channel
    /// block, 32x32 (ends at 4x4).
    #[serde(rename = "mobilenetv2-cifar")]
    Mobilenetv2Cifar,
}

/// Every form with its name, in one place.
const FORMS: [(Form, &str); 8] = [
    (Form::Cifar, "vgg16-cifar"),
    (Form::Imagenet, "vgg16-imagenet"),
    (Form::Resnet20Cifar, "resnet20-cifar"),
    (Form::Resnet56Cifar, "resnet56-cifar"),
    (Form::Resnet18Imagenet, "resnet18-imagenet"),
    (Form::Resnet50Imagenet, "resnet50-imagenet"),
    (Form::Mobilenetv2Imagenet, "mobilenetv2-imagenet"),
    (Form::Mobilenetv2Cifar, "mobilenetv2-cifar"),
];

/// The family of nets a form belongs to, with what picks its net function.
enum Family {
    Vgg,
    ResNet(ResNet),
    MobileNet(mobilenet::Variant),
}

impl Form {
    /// Every form, in the order above.
    pub fn all() -> impl Iterator<Item = Form> {
        FORMS.iter().map(|&(f, _)| f)
    }

    /// The one place that maps a form to its net.
    fn family(self) -> Family {
        match self {
            Form::Cifar | Form::Imagenet => Family::Vgg,
            Form::Resnet20Cifar => Family::ResNet(ResNet::resnet20()),
            Form::Resnet56Cifar => Family::ResNet(ResNet::resnet56()),
            Form::Resnet18Imagenet => Family::ResNet(ResNet::resnet18()),
            Form::Resnet50Imagenet => Family::ResNet(ResNet::resnet50()),
            Form::Mobilenetv2Imagenet => Family::MobileNet(mobilenet::Variant::Imagenet),
            Form::Mobilenetv2Cifar => Family::MobileNet(mobilenet::Variant::Cifar),
        }
    }

    /// Whether this is one of VGG-16's forms (the only ones the commands run so far).
    pub fn is_vgg(self) -> bool {
        matches!(self.family(), Family::Vgg)
    }

    /// Default input side: 32 for the CIFAR forms, 224 for the ImageNet forms.
    pub fn default_side(self) -> usize {
        match self {
            Form::Cifar | Form::Resnet20Cifar | Form::Resnet56Cifar | Form::Mobilenetv2Cifar => 32,
            Form::Imagenet | Form::Resnet18Imagenet | Form::Resnet50Imagenet | Form::Mobilenetv2Imagenet => 224,
        }
    }

    /// Output channels of every conv in graph order at width multiplier `width` (each
    /// published count through [`scale_width`]; at width 1 the published network).
    pub fn channels(self, width: f64) -> Vec<usize> {
        match self.family() {
            Family::Vgg => VGG16_CHANNELS.iter().map(|&c| scale_width(c, width)).collect(),
            Family::ResNet(r) => r.channels(width),
            Family::MobileNet(_) => mobilenet::channels(width),
        }
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = FORMS.iter().find(|(g, _)| g == self).map(|(_, n)| *n).expect("every form has a name");
        f.write_str(name)
    }
}

impl FromStr for Form {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cifar" => return Ok(Form::Cifar),
            "imagenet" => return Ok(Form::Imagenet),
            _ => {}
        }
        FORMS.iter().find(|(_, n)| *n == s).map(|&(f, _)| f).ok_or_else(|| {
            let names: Vec<&str> = FORMS.iter().map(|(_, n)| *n).collect();
            Error::invalid("model", s, format!("use one of {}", names.join(", ")))
        })
    }
}

/// The architecture of one network: everything needed to build its program and check a
/// checkpoint, nothing about its weights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arch {
    pub form: Form,
    /// Input height, width, channels (NHWC without the batch).
    pub input: [usize; 3],
    /// Output channels of every conv in graph order (the order of [`Graph::convs`]); for
    /// VGG-16 its 13 convs.
    pub channels: Vec<usize>,
    /// Whether each conv is followed by batch norm (always true but for `vgg16-imagenet`).
    pub batch_norm: bool,
    /// VGG-16: hidden dense widths between the flattened features and the classifier.
    /// Empty for the other forms (global average pool, then one dense layer).
    pub hidden: Vec<usize>,
    pub classes: usize,
}

impl Arch {
    /// The published network of `form` at width multiplier `width`, with `in_channels` input
    /// channels, `classes` outputs and the form's default input ([`Form::default_side`]).
    /// VGG-16's forms get their default heads: `vgg16-cifar` `512w -> classes`,
    /// `vgg16-imagenet` without BN (see [`Arch::cifar`], [`Arch::imagenet`] for the others).
    ///
    /// Errors: a width outside (0, 4], zero input channels or classes.
    pub fn new(form: Form, width: f64, in_channels: usize, classes: usize) -> Result<Arch> {
        match form {
            Form::Cifar => Arch::cifar(width, in_channels, classes, vec![]),
            Form::Imagenet => Arch::imagenet(width, in_channels, classes, false),
            _ => {
                check_width(width)?;
                let side = form.default_side();
                let a = Arch {
                    form,
                    input: [side, side, in_channels],
                    channels: form.channels(width),
                    batch_norm: true,
                    hidden: vec![],
                    classes,
                };
                a.validate()?;
                Ok(a)
            }
        }
    }

    /// VGG-16 CIFAR form: `in_channels` x 32 x 32 input, BN, head `512w -> [hidden] -> classes`.
    /// `hidden` is empty (`512 -> classes`) or e.g. `[512]`.
    pub fn cifar(width: f64, in_channels: usize, classes: usize, hidden: Vec<usize>) -> Result<Arch> {
        check_width(width)?;
        let a = Arch { form: Form::Cifar, input: [32, 32, in_channels], channels: Form::Cifar.channels(width), batch_norm: true, hidden, classes };
        a.validate()?;
        Ok(a)
    }

    /// VGG-16 ImageNet form: 224x224 input, head `25088 -> 4096 -> 4096 -> classes` (dense
    /// widths scaled by `width` too, so small test networks stay small).
    pub fn imagenet(width: f64, in_channels: usize, classes: usize, batch_norm: bool) -> Result<Arch> {
        check_width(width)?;
        let h = scale_width(4096, width);
        let a = Arch {
            form: Form::Imagenet,
            input: [224, 224, in_channels],
            channels: Form::Imagenet.channels(width),
            batch_norm,
            hidden: vec![h, h],
            classes,
        };
        a.validate()?;
        Ok(a)
    }

    /// Whether this is VGG-16.
    pub fn is_vgg(&self) -> bool {
        self.form.is_vgg()
    }

    /// The network as a checked graph: the one place that calls each form's net function.
    ///
    /// Errors: what the net refuses (a channel list of the wrong length, a depthwise conv or
    /// residual add whose channels disagree, an input too small), naming the node.
    pub fn graph(&self) -> Result<Graph> {
        match self.form.family() {
            Family::Vgg => vgg::vgg16(self.input, &self.channels, self.batch_norm, &self.hidden, self.classes),
            Family::ResNet(r) => r.graph(self.input, &self.channels, self.classes),
            Family::MobileNet(v) => mobilenet::mobilenet_v2(self.input, &self.channels, self.classes, v),
        }
    }

    /// Same network with another input size `h x w`. VGG-16: multiples of 32 on each side;
    /// the other forms take any size their windows fit (the error names the first node that
    /// does not fit).
    pub fn with_input(mut self, h: usize, w: usize) -> Result<Arch> {
        self.input[0] = h;
        self.input[1] = w;
        self.validate()?;
        Ok(self)
    }

    /// Same network with another channel list (what pruning produces).
    pub fn with_channels(&self, channels: Vec<usize>) -> Result<Arch> {
        let a = Arch { channels, ..self.clone() };
        a.validate()?;
        Ok(a)
    }

    /// Checks the architecture and builds its graph.
    ///
    /// Errors: VGG-16 with an input side not a multiple of 32, another number of convs than
    /// 13, a zero channel count or a zero head width; any form with zero input channels or
    /// classes; the other forms without batch norm or with hidden dense layers; and whatever
    /// [`Arch::graph`] refuses.
    pub fn validate(&self) -> Result<()> {
        let [h, w, c] = self.input;
        if self.is_vgg() && (h == 0 || w == 0 || h % 32 != 0 || w % 32 != 0) {
            return Err(Error::invalid(
                "input size",
                format!("{h}x{w}"),
                "VGG-16 halves the map 5 times: height and width must be positive multiples of 32",
            ));
        }
        if c == 0 {
            return Err(Error::invalid("input channels", c, "use at least 1 (1 for Fashion-MNIST, 3 for RGB)"));
        }
        if self.is_vgg() {
            if self.channels.len() != NUM_CONVS {
                return Err(Error::invalid(
                    "channel list",
                    format!("{:?}", self.channels),
                    format!("VGG-16 has {NUM_CONVS} conv layers; give {NUM_CONVS} counts"),
                ));
            }
            if let Some(i) = self.channels.iter().position(|&c| c == 0) {
                return Err(Error::invalid("channel count", format!("conv {i}: 0"), "every conv needs at least 1 channel"));
            }
        } else {
            if !self.batch_norm {
                return Err(Error::invalid("batch_norm", false, format!("{} always has batch norm; set it to true", self.form)));
            }
            if !self.hidden.is_empty() {
                return Err(Error::invalid(
                    "hidden",
                    format!("{:?}", self.hidden),
                    format!("{} has one dense layer after the global average pool; give no hidden widths", self.form),
                ));
            }
        }
        if self.classes < 1 || self.hidden.contains(&0) {
            return Err(Error::invalid(
                "head",
                format!("hidden {:?}, classes {}", self.hidden, self.classes),
                "dense widths and classes must be at least 1",
            ));
        }
        self.graph().map(|_| ())
    }

    /// (in, out) of each dense layer, the classifier last (VGG-16: the flattened 512-channel
    /// map, then the hidden widths; the other forms: the pooled features, then the classifier).
    pub fn dense_dims(&self) -> Vec<(usize, usize)> {
        let g = self.graph().expect("a validated Arch builds its graph");
        g.nodes()
            .iter()
            .filter_map(|n| match n.op {
                Op::Dense { out, .. } => Some((g.node(n.inputs[0]).dims.iter().product(), out)),
                _ => None,
            })
            .collect()
    }

    /// One-line description, e.g. `vgg16-cifar 32x32x1 [16,16,32,...] head 128->10 bn` or
    /// `resnet20-cifar 32x32x3 [16,16,...,64] classes 10`.
    pub fn describe(&self) -> String {
        let ch: Vec<String> = self.channels.iter().map(|c| c.to_string()).collect();
        let [h, w, c] = self.input;
        if !self.is_vgg() {
            return format!("{} {h}x{w}x{c} [{}] classes {}", self.form, ch.join(","), self.classes);
        }
        let head: Vec<String> = self.dense_dims().iter().map(|(i, _)| i.to_string()).chain([self.classes.to_string()]).collect();
        format!("{} {h}x{w}x{c} [{}] head {}{}", self.form, ch.join(","), head.join("->"), if self.batch_norm { " bn" } else { "" })
    }
}

fn check_width(width: f64) -> Result<()> {
    if !(width > 0.0 && width <= 4.0) {
        return Err(Error::invalid("width", width, "use a multiplier in (0, 4], e.g. 1.0 for the published network or 0.25"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_halve_after_each_pool() {
        let a = Arch::cifar(1.0, 3, 10, vec![]).unwrap();
        let g = a.graph().unwrap();
        let hw: Vec<usize> = g.convs().map(|(n, _)| n.dims[0]).collect();
        assert_eq!(hw, [32, 32, 16, 16, 8, 8, 8, 4, 4, 4, 2, 2, 2]);
        assert_eq!(a.dense_dims(), vec![(512, 10)]);
        let i = Arch::imagenet(1.0, 3, 1000, false).unwrap();
        assert_eq!(i.dense_dims(), vec![(25088, 4096), (4096, 4096), (4096, 1000)]);
    }

    #[test]
    fn width_scales_every_conv() {
        let a = Arch::cifar(0.25, 1, 10, vec![]).unwrap();
        assert_eq!(a.channels, vec![16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128]);
    }

    #[test]
    fn rejects_bad_shapes_with_the_fix() {
        let e = Arch::cifar(1.0, 3, 10, vec![]).unwrap().with_input(28, 28).unwrap_err().to_string();
        assert!(e.contains("28x28") && e.contains("multiples of 32"), "{e}");
        let e = Arch::cifar(1.0, 3, 10, vec![]).unwrap().with_channels(vec![8; 12]).unwrap_err().to_string();
        assert!(e.contains("13"), "{e}");
        assert!(Arch::cifar(0.0, 3, 10, vec![]).is_err());
    }

    #[test]
    fn form_names_stay_and_round_trip() {
        assert_eq!(serde_json::to_string(&Form::Cifar).unwrap(), "\"vgg16-cifar\"");
        assert_eq!("cifar".parse::<Form>().unwrap(), Form::Cifar);
        assert_eq!("imagenet".parse::<Form>().unwrap(), Form::Imagenet);
        let names: Vec<String> = Form::all().map(|f| f.to_string()).collect();
        assert_eq!(names, FORMS.map(|(_, n)| n.to_string()));
        for f in Form::all() {
            assert_eq!(f.to_string().parse::<Form>().unwrap(), f);
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{f}\""));
            assert_eq!(serde_json::from_str::<Form>(&json).unwrap(), f);
        }
        let e = "resnet34".parse::<Form>().unwrap_err().to_string();
        assert!(e.contains("resnet34") && e.contains("resnet56-cifar") && e.contains("mobilenetv2-cifar"), "{e}");
    }

    #[test]
    fn every_form_builds_its_published_network() {
        for f in Form::all() {
            let a = Arch::new(f, 1.0, 3, 1000).unwrap();
            assert_eq!(a.input, [f.default_side(), f.default_side(), 3], "{f}");
            let g = a.graph().unwrap();
            assert_eq!(g.convs().map(|(n, _)| n.channels()).collect::<Vec<_>>(), a.channels, "{f}");
            assert_eq!(g.classes(), 1000);
            assert!(a.describe().starts_with(&format!("{f} {0}x{0}x3 [", f.default_side())), "{}", a.describe());
            let small = Arch::new(f, 0.25, 1, 10).unwrap();
            assert!(small.channels.iter().zip(&a.channels).all(|(s, c)| s < c || *c == 1), "{f}: {:?}", small.channels);
            assert_eq!(serde_json::from_str::<Arch>(&serde_json::to_string(&small).unwrap()).unwrap(), small);
        }
        let r = Arch::new(Form::Resnet20Cifar, 1.0, 3, 10).unwrap();
        assert_eq!(r.describe(), format!("resnet20-cifar 32x32x3 [{}] classes 10", r.channels.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")));
        assert_eq!(Arch::new(Form::Cifar, 1.0, 3, 10).unwrap(), Arch::cifar(1.0, 3, 10, vec![]).unwrap());
        assert!(Arch::new(Form::Mobilenetv2Cifar, 0.0, 3, 10).unwrap_err().to_string().contains("(0, 4]"));
        assert!(Arch::new(Form::Resnet18Imagenet, 1.0, 3, 0).is_err());
    }

    #[test]
    fn with_input_and_with_channels_check_the_graph() {
        let r = Arch::new(Form::Resnet18Imagenet, 0.25, 3, 10).unwrap().with_input(64, 48).unwrap();
        let g = r.graph().unwrap();
        assert_eq!(g.find("layer4.1.conv2").unwrap().dims, [2, 2, 128]);
        let e = Arch::new(Form::Resnet20Cifar, 1.0, 3, 10).unwrap().with_input(0, 32).unwrap_err().to_string();
        assert!(e.contains("[0, 32, 3]") && e.contains("at least 1"), "{e}");
        let m = Arch::new(Form::Mobilenetv2Cifar, 1.0, 1, 10).unwrap().with_input(28, 28).unwrap();
        assert_eq!(m.graph().unwrap().find("features.18.0").unwrap().dims, [4, 4, 1280]);

        let r20 = Arch::new(Form::Resnet20Cifar, 1.0, 3, 10).unwrap();
        let mut ch = r20.channels.clone();
        ch[1] = 8; // layer1.0.conv1 is free to shrink
        assert_eq!(r20.with_channels(ch.clone()).unwrap().channels[1], 8);
        ch[2] = 8; // layer1.0.conv2 feeds the add with the 16-channel identity
        let e = r20.with_channels(ch).unwrap_err().to_string();
        assert!(e.contains("'layer1.0.bn2' [32, 32, 8]"), "{e}");
        let e = r20.with_channels(vec![16; 13]).unwrap_err().to_string();
        assert!(e.contains("ResNet-20 has 21 conv layers"), "{e}");
        let m = Arch::new(Form::Mobilenetv2Imagenet, 1.0, 3, 10).unwrap();
        let mut ch = m.channels.clone();
        ch[1] = 30;
        let e = m.with_channels(ch).unwrap_err().to_string();
        assert!(e.contains("'features.1.conv.0.0': 30") && e.contains("input's 32"), "{e}");
    }

    #[test]
    fn new_forms_refuse_vgg_heads() {
        let r = Arch::new(Form::Resnet56Cifar, 0.5, 3, 10).unwrap();
        let e = Arch { batch_norm: false, ..r.clone() }.validate().unwrap_err().to_string();
        assert!(e.contains("resnet56-cifar always has batch norm"), "{e}");
        let e = Arch { hidden: vec![64], ..r.clone() }.validate().unwrap_err().to_string();
        assert!(e.contains("[64]") && e.contains("no hidden widths"), "{e}");
        assert_eq!(r.dense_dims(), vec![(32, 10)], "the pooled 64 x 0.5 features, then the classifier");
        assert!(!r.is_vgg() && Arch::cifar(0.25, 1, 10, vec![]).unwrap().is_vgg());
    }
}
