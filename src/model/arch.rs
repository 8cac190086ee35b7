//! VGG-16 as data: input shape, the 13 conv widths, where the pools are, and the head.
//! A pruned network is the same structure with other channel counts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Output channels of VGG-16's 13 convolutions (configuration "D").
pub const VGG16_CHANNELS: [usize; 13] = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512];
/// Indices of the convs followed by a 2x2/2 max-pool.
pub const VGG16_POOL_AFTER: [usize; 5] = [1, 3, 6, 9, 12];
/// Number of conv layers.
pub const NUM_CONVS: usize = 13;

/// The two published forms of VGG-16.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// `vgg16-cifar`: 32x32 input, BN after every conv, small head.
    #[serde(rename = "vgg16-cifar")]
    Cifar,
    /// `vgg16-imagenet`: 224x224 input, 4096-4096-1000 head, BN optional.
    #[serde(rename = "vgg16-imagenet")]
    Imagenet,
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Form::Cifar => "vgg16-cifar",
            Form::Imagenet => "vgg16-imagenet",
        })
    }
}

impl FromStr for Form {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "vgg16-cifar" | "cifar" => Ok(Form::Cifar),
            "vgg16-imagenet" | "imagenet" => Ok(Form::Imagenet),
            _ => Err(Error::invalid("model", s, "use vgg16-cifar or vgg16-imagenet")),
        }
    }
}

/// The architecture of one network: everything needed to build its program and check a
/// checkpoint, nothing about its weights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arch {
    pub form: Form,
    /// Input height, width, channels (NHWC without the batch).
    pub input: [usize; 3],
    /// Output channels of each of the 13 convs.
    pub channels: Vec<usize>,
    /// Whether each conv is followed by batch norm.
    pub batch_norm: bool,
    /// Hidden dense widths between the flattened features and the classifier.
    pub hidden: Vec<usize>,
    pub classes: usize,
}

/// `c` channels scaled by a width multiplier: `round(c * width)`, at least 1.
pub fn scale_width(c: usize, width: f64) -> usize {
    crate::util::count_of(width, c, crate::util::Rounding::Nearest).max(1)
}

impl Arch {
    /// VGG-16 CIFAR form: `in_channels` x 32 x 32 input, BN, head `512w -> [hidden] -> classes`.
    /// `hidden` is empty (`512 -> classes`) or e.g. `[512]`.
    pub fn cifar(width: f64, in_channels: usize, classes: usize, hidden: Vec<usize>) -> Result<Arch> {
        check_width(width)?;
        let a = Arch {
            form: Form::Cifar,
            input: [32, 32, in_channels],
            channels: VGG16_CHANNELS.iter().map(|&c| scale_width(c, width)).collect(),
            batch_norm: true,
            hidden,
            classes,
        };
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
            channels: VGG16_CHANNELS.iter().map(|&c| scale_width(c, width)).collect(),
            batch_norm,
            hidden: vec![h, h],
            classes,
        };
        a.validate()?;
        Ok(a)
    }

    /// Same network with another input size (must be a multiple of 32 on each side).
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

    pub fn validate(&self) -> Result<()> {
        let [h, w, c] = self.input;
        if h == 0 || w == 0 || h % 32 != 0 || w % 32 != 0 {
            return Err(Error::invalid(
                "input size",
                format!("{h}x{w}"),
                "VGG-16 halves the map 5 times: height and width must be positive multiples of 32",
            ));
        }
        if c == 0 {
            return Err(Error::invalid("input channels", c, "use at least 1 (1 for Fashion-MNIST, 3 for RGB)"));
        }
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
        if self.classes < 1 || self.hidden.contains(&0) {
            return Err(Error::invalid(
                "head",
                format!("hidden {:?}, classes {}", self.hidden, self.classes),
                "dense widths and classes must be at least 1",
            ));
        }
        Ok(())
    }

    /// Input channels of conv `i`.
    pub fn conv_in(&self, i: usize) -> usize {
        if i == 0 { self.input[2] } else { self.channels[i - 1] }
    }

    /// Spatial size (h, w) of the map conv `i` reads and writes.
    pub fn conv_hw(&self, i: usize) -> (usize, usize) {
        let pools = VGG16_POOL_AFTER.iter().filter(|&&p| p < i).count();
        (self.input[0] >> pools, self.input[1] >> pools)
    }

    pub fn pools_after(i: usize) -> bool {
        VGG16_POOL_AFTER.contains(&i)
    }

    /// Spatial size of the last feature map, the one the head flattens.
    pub fn final_hw(&self) -> (usize, usize) {
        (self.input[0] >> 5, self.input[1] >> 5)
    }

    /// Width of the flattened features that feed the first dense layer.
    pub fn flat_features(&self) -> usize {
        let (h, w) = self.final_hw();
        h * w * self.channels[NUM_CONVS - 1]
    }

    /// (in, out) of each dense layer, the classifier last.
    pub fn dense_dims(&self) -> Vec<(usize, usize)> {
        let mut dims = Vec::new();
        let mut prev = self.flat_features();
        for &h in self.hidden.iter().chain(std::iter::once(&self.classes)) {
            dims.push((prev, h));
            prev = h;
        }
        dims
    }

    /// One-line description, e.g. `vgg16-cifar 32x32x1 [16,16,32,...] head 128->10 bn`.
    pub fn describe(&self) -> String {
        let ch: Vec<String> = self.channels.iter().map(|c| c.to_string()).collect();
        let head: Vec<String> = self.dense_dims().iter().map(|(i, _)| i.to_string()).chain([self.classes.to_string()]).collect();
        format!(
            "{} {}x{}x{} [{}] head {}{}",
            self.form,
            self.input[0],
            self.input[1],
            self.input[2],
            ch.join(","),
            head.join("->"),
            if self.batch_norm { " bn" } else { "" }
        )
    }
}

fn check_width(width: f64) -> Result<()> {
    if !(width > 0.0 && width <= 4.0) {
        return Err(Error::invalid("width", width, "use a multiplier in (0, 4], e.g. 1.0 for full VGG-16 or 0.25"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_halve_after_each_pool() {
        let a = Arch::cifar(1.0, 3, 10, vec![]).unwrap();
        let hw: Vec<usize> = (0..13).map(|i| a.conv_hw(i).0).collect();
        assert_eq!(hw, [32, 32, 16, 16, 8, 8, 8, 4, 4, 4, 2, 2, 2]);
        assert_eq!(a.final_hw(), (1, 1));
        let i = Arch::imagenet(1.0, 3, 1000, false).unwrap();
        assert_eq!(i.final_hw(), (7, 7));
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
}
