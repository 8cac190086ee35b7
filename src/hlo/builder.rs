//! The builder: one method per op, each checking its operands and printing one op.

use std::fmt::{self, Write as _};

use super::shape::{DType, Shape};
use crate::error::{Error, Result};

/// A value in the program being built: an argument or the result of an op.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    name: String,
    shape: Shape,
}

impl Value {
    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    pub fn dims(&self) -> &[i64] {
        &self.shape.dims
    }
    pub fn dtype(&self) -> DType {
        self.shape.dtype
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Reduction applied by `reduce` and `reduce_window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Max,
}

impl ReduceOp {
    fn op_name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "stablehlo.add",
            ReduceOp::Max => "stablehlo.maximum",
        }
    }
}

/// Comparison direction of `compare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Compare {
    fn mlir(self) -> &'static str {
        match self {
            Compare::Eq => "EQ",
            Compare::Ne => "NE",
            Compare::Lt => "LT",
            Compare::Le => "LE",
            Compare::Gt => "GT",
            Compare::Ge => "GE",
        }
    }
}

/// Convolution layout and window. Activations are NHWC and kernels HWIO unless `layout`
/// says otherwise; the spatial dimensions are the two in the middle.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvDims {
    pub stride: [i64; 2],
    /// `[[low_h, high_h], [low_w, high_w]]`
    pub padding: [[i64; 2]; 2],
    pub lhs_dilation: [i64; 2],
    pub rhs_dilation: [i64; 2],
    /// `feature_group_count`: the input features split into this many groups, each
    /// convolved with its own `out / groups` filters of `in / groups` features (1: a plain
    /// convolution; `in` groups with `out == in`: depthwise).
    pub groups: i64,
    /// Dimension numbers as MLIR prints them, e.g. `[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]`.
    pub layout: ConvLayout,
    /// `batch_group_count`: the input batch split into this many groups, each giving its
    /// share of the output features (the output batch is `batch / batch_groups`). Used by the
    /// kernel gradient of a grouped convolution; 1 otherwise.
    pub batch_groups: i64,
}

/// Which axis of each operand is which, for `convolution`. Indices into the operand dims.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvLayout {
    /// (batch, feature, spatial0, spatial1) of the input.
    pub input: [usize; 4],
    /// (input feature, output feature, spatial0, spatial1) of the kernel.
    pub kernel: [usize; 4],
    /// (batch, feature, spatial0, spatial1) of the output.
    pub output: [usize; 4],
}

impl ConvLayout {
    /// NHWC input, HWIO kernel, NHWC output: the layout XLA's CPU and TPU backends prefer.
    pub const NHWC_HWIO: ConvLayout =
        ConvLayout { input: [0, 3, 1, 2], kernel: [2, 3, 0, 1], output: [0, 3, 1, 2] };

    fn print(&self) -> String {
        let side = |idx: &[usize; 4], a: &str, b: &str| {
            let mut s = [""; 4];
            s[idx[0]] = a;
            s[idx[1]] = b;
            s[idx[2]] = "0";
            s[idx[3]] = "1";
            format!("[{}]", s.join(", "))
        };
        format!(
            "{}x{}->{}",
            side(&self.input, "b", "f"),
            side(&self.kernel, "i", "o"),
            side(&self.output, "b", "f")
        )
    }
}

impl ConvDims {
    /// A stride-1 NHWC x HWIO convolution with symmetric padding `pad`.
    pub fn same(pad: i64) -> Self {
        ConvDims {
            stride: [1, 1],
            padding: [[pad, pad], [pad, pad]],
            lhs_dilation: [1, 1],
            rhs_dilation: [1, 1],
            groups: 1,
            layout: ConvLayout::NHWC_HWIO,
            batch_groups: 1,
        }
    }

    /// An NHWC x HWIO convolution with `stride` and symmetric padding `pad` on both spatial
    /// axes, over `groups` feature groups.
    pub fn strided(stride: i64, pad: i64, groups: i64) -> Self {
        ConvDims { stride: [stride, stride], groups, ..ConvDims::same(pad) }
    }
}

/// Builds one function, `@main`, and prints it as a StableHLO module.
#[derive(Default)]
pub struct Builder {
    args: Vec<Shape>,
    body: String,
    next: usize,
}

fn ints(v: &[i64]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

fn array(v: &[i64]) -> String {
    if v.is_empty() {
        "array<i64>".into()
    } else {
        format!("array<i64: {}>", ints(v))
    }
}

fn types(vals: &[&Value]) -> String {
    vals.iter().map(|v| v.shape.to_string()).collect::<Vec<_>>().join(", ")
}

fn same_shape(op: &str, a: &Value, b: &Value) -> Result<()> {
    if a.shape != b.shape {
        return Err(Error::shape(op, format!("operands differ: {} vs {}", a.shape, b.shape)));
    }
    Ok(())
}

fn check_axes(op: &str, what: &str, axes: &[i64], rank: usize) -> Result<()> {
    let mut seen = vec![false; rank];
    for &a in axes {
        if a < 0 || a as usize >= rank || seen[a as usize] {
            return Err(Error::shape(op, format!("{what} {axes:?} invalid for rank {rank}")));
        }
        seen[a as usize] = true;
    }
    Ok(())
}

macro_rules! binary_ops {
    ($($(#[$doc:meta])* $method:ident => $name:literal),* $(,)?) => {
        impl Builder {$(
            $(#[$doc])*
            pub fn $method(&mut self, a: &Value, b: &Value) -> Result<Value> {
                self.binary($name, a, b)
            }
        )*}
    };
}

macro_rules! unary_ops {
    ($($(#[$doc:meta])* $method:ident => $name:literal),* $(,)?) => {
        impl Builder {$(
            $(#[$doc])*
            pub fn $method(&mut self, a: &Value) -> Result<Value> {
                self.unary($name, a)
            }
        )*}
    };
}

binary_ops! {
    add => "stablehlo.add",
    sub => "stablehlo.subtract",
    mul => "stablehlo.multiply",
    div => "stablehlo.divide",
    max => "stablehlo.maximum",
    min => "stablehlo.minimum",
    pow => "stablehlo.power",
}

unary_ops! {
    neg => "stablehlo.negate",
    exp => "stablehlo.exponential",
    log => "stablehlo.log",
    sqrt => "stablehlo.sqrt",
    rsqrt => "stablehlo.rsqrt",
    abs => "stablehlo.abs",
    tanh => "stablehlo.tanh",
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares the next function argument.
    pub fn arg(&mut self, shape: Shape) -> Value {
        let v = Value { name: format!("%arg{}", self.args.len()), shape: shape.clone() };
        self.args.push(shape);
        v
    }

    pub fn num_args(&self) -> usize {
        self.args.len()
    }

    fn fresh(&mut self) -> String {
        self.next += 1;
        format!("%{}", self.next - 1)
    }

    /// Appends `%r = "op"(operands) <{attrs}> : (types) -> result` and returns `%r`.
    fn emit(&mut self, op: &str, operands: &[&Value], attrs: &str, result: Shape) -> Value {
        let name = self.fresh();
        let ops = operands.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ");
        let attrs = if attrs.is_empty() { String::new() } else { format!(" <{{{attrs}}}>") };
        let _ = writeln!(
            self.body,
            "    {name} = \"{op}\"({ops}){attrs} : ({}) -> {result}",
            types(operands)
        );
        Value { name, shape: result }
    }

    fn binary(&mut self, op: &str, a: &Value, b: &Value) -> Result<Value> {
        same_shape(op, a, b)?;
        Ok(self.emit(op, &[a, b], "", a.shape.clone()))
    }

    fn unary(&mut self, op: &str, a: &Value) -> Result<Value> {
        if !a.dtype().is_float() {
            return Err(Error::shape(op, format!("needs a float operand, got {}", a.shape)));
        }
        Ok(self.emit(op, &[a], "", a.shape.clone()))
    }

    /// A tensor filled with one value (a splat constant).
    pub fn constant(&mut self, value: f64, shape: Shape) -> Value {
        let name = self.fresh();
        let _ = writeln!(
            self.body,
            "    {name} = stablehlo.constant dense<{}> : {shape}",
            shape.dtype.literal(value)
        );
        Value { name, shape }
    }

    /// A scalar constant.
    pub fn scalar(&mut self, value: f64, dtype: DType) -> Value {
        self.constant(value, Shape::scalar(dtype))
    }

    /// A constant holding `values` row-major in `shape`.
    pub fn constant_values(&mut self, values: &[f64], shape: Shape) -> Result<Value> {
        if values.len() as i64 != shape.numel() {
            return Err(Error::shape(
                "constant",
                format!("{} values for {shape}", values.len()),
            ));
        }
        let lits: Vec<String> = values.iter().map(|&v| shape.dtype.literal(v)).collect();
        let nested = nest(&lits, &shape.dims);
        let name = self.fresh();
        let _ = writeln!(self.body, "    {name} = stablehlo.constant dense<{nested}> : {shape}");
        Ok(Value { name, shape })
    }

    /// `stablehlo.broadcast_in_dim`: operand axis i becomes result axis `dims[i]`.
    pub fn broadcast_in_dim(&mut self, a: &Value, out_dims: &[i64], dims: &[i64]) -> Result<Value> {
        let op = "broadcast_in_dim";
        if dims.len() != a.shape.rank() {
            return Err(Error::shape(op, format!("{} mapped axes for operand {}", dims.len(), a.shape)));
        }
        check_axes(op, "broadcast_dimensions", dims, out_dims.len())?;
        for (i, &d) in dims.iter().enumerate() {
            let s = a.shape.dims[i];
            if s != 1 && s != out_dims[d as usize] {
                return Err(Error::shape(
                    op,
                    format!("operand {} axis {i} does not fit result {:?} axis {d}", a.shape, out_dims),
                ));
            }
        }
        let attrs = format!("broadcast_dimensions = {}", array(dims));
        Ok(self.emit("stablehlo.broadcast_in_dim", &[a], &attrs, a.shape.with_dims(out_dims)))
    }

    /// Broadcasts `a` (shape `[n]`) along axis `axis` of `like`'s shape.
    pub fn broadcast_along(&mut self, a: &Value, like: &Shape, axis: usize) -> Result<Value> {
        self.broadcast_in_dim(a, &like.dims, &[axis as i64])
    }

    /// Broadcasts a scalar to `dims`.
    pub fn splat(&mut self, a: &Value, dims: &[i64]) -> Result<Value> {
        self.broadcast_in_dim(a, dims, &[])
    }

    pub fn reshape(&mut self, a: &Value, dims: &[i64]) -> Result<Value> {
        let out = a.shape.with_dims(dims);
        if out.numel() != a.shape.numel() {
            return Err(Error::shape("reshape", format!("{} cannot become {out}", a.shape)));
        }
        Ok(self.emit("stablehlo.reshape", &[a], "", out))
    }

    pub fn transpose(&mut self, a: &Value, perm: &[i64]) -> Result<Value> {
        check_axes("transpose", "permutation", perm, a.shape.rank())?;
        if perm.len() != a.shape.rank() {
            return Err(Error::shape("transpose", format!("permutation {perm:?} for {}", a.shape)));
        }
        let dims: Vec<i64> = perm.iter().map(|&p| a.shape.dims[p as usize]).collect();
        let attrs = format!("permutation = {}", array(perm));
        Ok(self.emit("stablehlo.transpose", &[a], &attrs, a.shape.with_dims(dims)))
    }

    pub fn convert(&mut self, a: &Value, dtype: DType) -> Value {
        if a.dtype() == dtype {
            return a.clone();
        }
        self.emit("stablehlo.convert", &[a], "", a.shape.with_dtype(dtype))
    }

    /// `stablehlo.slice` with unit strides.
    pub fn slice(&mut self, a: &Value, start: &[i64], limit: &[i64]) -> Result<Value> {
        self.slice_strided(a, start, limit, &vec![1; a.shape.rank()])
    }

    /// `stablehlo.slice`: every `strides[i]`-th element of `start[i]..limit[i]` on each axis.
    pub fn slice_strided(&mut self, a: &Value, start: &[i64], limit: &[i64], strides: &[i64]) -> Result<Value> {
        let r = a.shape.rank();
        if start.len() != r || limit.len() != r || strides.len() != r {
            return Err(Error::shape(
                "slice",
                format!("bounds {start:?}..{limit:?} strides {strides:?} for {}", a.shape),
            ));
        }
        for i in 0..r {
            if start[i] < 0 || start[i] > limit[i] || limit[i] > a.shape.dims[i] || strides[i] < 1 {
                return Err(Error::shape(
                    "slice",
                    format!("axis {i}: {}..{} step {} outside {}", start[i], limit[i], strides[i], a.shape),
                ));
            }
        }
        let dims: Vec<i64> = (0..r).map(|i| (limit[i] - start[i] + strides[i] - 1) / strides[i]).collect();
        let attrs = format!(
            "limit_indices = {}, start_indices = {}, strides = {}",
            array(limit),
            array(start),
            array(strides)
        );
        Ok(self.emit("stablehlo.slice", &[a], &attrs, a.shape.with_dims(dims)))
    }

    pub fn concatenate(&mut self, vals: &[&Value], axis: usize) -> Result<Value> {
        let first = vals.first().ok_or_else(|| Error::shape("concatenate", "no operands"))?;
        let mut dims = first.shape.dims.clone();
        if axis >= dims.len() {
            return Err(Error::shape("concatenate", format!("axis {axis} for {}", first.shape)));
        }
        dims[axis] = 0;
        for v in vals {
            let ok = v.dtype() == first.dtype()
                && v.shape.rank() == dims.len()
                && (0..dims.len()).all(|i| i == axis || v.shape.dims[i] == first.shape.dims[i]);
            if !ok {
                return Err(Error::shape(
                    "concatenate",
                    format!("{} does not fit {} along axis {axis}", v.shape, first.shape),
                ));
            }
            dims[axis] += v.shape.dims[axis];
        }
        let attrs = format!("dimension = {axis} : i64");
        Ok(self.emit("stablehlo.concatenate", vals, &attrs, first.shape.with_dims(dims)))
    }

    /// `stablehlo.pad` with edge padding only (negative values crop).
    pub fn pad(&mut self, a: &Value, value: &Value, low: &[i64], high: &[i64]) -> Result<Value> {
        let r = a.shape.rank();
        if low.len() != r || high.len() != r || value.shape != Shape::scalar(a.dtype()) {
            return Err(Error::shape(
                "pad",
                format!("low {low:?} high {high:?} value {} for {}", value.shape, a.shape),
            ));
        }
        let dims: Vec<i64> = (0..r).map(|i| a.shape.dims[i] + low[i] + high[i]).collect();
        if dims.iter().any(|&d| d < 0) {
            return Err(Error::shape("pad", format!("negative result {dims:?}")));
        }
        let attrs = format!(
            "edge_padding_high = {}, edge_padding_low = {}, interior_padding = {}",
            array(high),
            array(low),
            array(&vec![0; r])
        );
        Ok(self.emit("stablehlo.pad", &[a, value], &attrs, a.shape.with_dims(dims)))
    }

    pub fn reverse(&mut self, a: &Value, axes: &[i64]) -> Result<Value> {
        check_axes("reverse", "dimensions", axes, a.shape.rank())?;
        let attrs = format!("dimensions = {}", array(axes));
        Ok(self.emit("stablehlo.reverse", &[a], &attrs, a.shape.clone()))
    }

    /// `stablehlo.dot_general`. Result axes: batch, then lhs free, then rhs free.
    pub fn dot_general(
        &mut self,
        lhs: &Value,
        rhs: &Value,
        batch: (&[i64], &[i64]),
        contract: (&[i64], &[i64]),
    ) -> Result<Value> {
        let op = "dot_general";
        let (lr, rr) = (lhs.shape.rank(), rhs.shape.rank());
        let fail = |m: &str| {
            Error::shape(
                op,
                format!("{m}: {} x {}, batch {batch:?}, contracting {contract:?}", lhs.shape, rhs.shape),
            )
        };
        if lhs.dtype() != rhs.dtype() {
            return Err(fail("operand types differ"));
        }
        if batch.0.len() != batch.1.len() || contract.0.len() != contract.1.len() {
            return Err(fail("unpaired dimensions"));
        }
        let lax: Vec<i64> = batch.0.iter().chain(contract.0).copied().collect();
        let rax: Vec<i64> = batch.1.iter().chain(contract.1).copied().collect();
        check_axes(op, "lhs dimensions", &lax, lr)?;
        check_axes(op, "rhs dimensions", &rax, rr)?;
        for (a, b) in lax.iter().zip(&rax) {
            if lhs.shape.dims[*a as usize] != rhs.shape.dims[*b as usize] {
                return Err(fail("paired dimensions differ in size"));
            }
        }
        let mut dims: Vec<i64> = batch.0.iter().map(|&a| lhs.shape.dims[a as usize]).collect();
        dims.extend((0..lr as i64).filter(|a| !lax.contains(a)).map(|a| lhs.shape.dims[a as usize]));
        dims.extend((0..rr as i64).filter(|a| !rax.contains(a)).map(|a| rhs.shape.dims[a as usize]));
        let attrs = format!(
            "dot_dimension_numbers = #stablehlo.dot<lhs_batching_dimensions = [{}], \
             rhs_batching_dimensions = [{}], lhs_contracting_dimensions = [{}], \
             rhs_contracting_dimensions = [{}]>",
            ints(batch.0),
            ints(batch.1),
            ints(contract.0),
            ints(contract.1)
        );
        Ok(self.emit("stablehlo.dot_general", &[lhs, rhs], &attrs, lhs.shape.with_dims(dims)))
    }

    /// `stablehlo.custom_call @target(operands)` of a typed XLA FFI handler
    /// (`api_version = 4`) with one result of shape `result`. The handler must be registered
    /// with the plugin before the program is compiled.
    pub fn custom_call(&mut self, target: &str, operands: &[&Value], result: Shape) -> Value {
        let attrs = format!(
            "api_version = 4 : i32, backend_config = {{}}, call_target_name = \"{target}\", has_side_effect = false"
        );
        self.emit("stablehlo.custom_call", operands, &attrs, result)
    }

    /// Plain matrix product `[m, k] x [k, n] -> [m, n]`.
    pub fn matmul(&mut self, a: &Value, b: &Value) -> Result<Value> {
        self.dot_general(a, b, (&[], &[]), (&[1], &[0]))
    }

    /// `stablehlo.convolution`, with feature and batch groups as `cd` says.
    pub fn convolution(&mut self, input: &Value, kernel: &Value, cd: &ConvDims) -> Result<Value> {
        let op = "convolution";
        let (x, k) = (&input.shape, &kernel.shape);
        if x.rank() != 4 || k.rank() != 4 || x.dtype != k.dtype {
            return Err(Error::shape(op, format!("input {x} kernel {k}")));
        }
        let l = &cd.layout;
        let (fg, bg) = (cd.groups, cd.batch_groups);
        let (batch, cin, kin, kout) = (x.dims[l.input[0]], x.dims[l.input[1]], k.dims[l.kernel[0]], k.dims[l.kernel[1]]);
        if fg < 1 || bg < 1 || (fg > 1 && bg > 1) {
            return Err(Error::shape(op, format!("feature groups {fg} and batch groups {bg}: at most one may exceed 1")));
        }
        if kin * fg != cin {
            return Err(Error::shape(
                op,
                format!("input {x} has {cin} features but kernel {k} expects {kin} x {fg} groups"),
            ));
        }
        if kout % fg != 0 || kout % bg != 0 || batch % bg != 0 {
            return Err(Error::shape(
                op,
                format!("kernel {k} output features and input {x} batch must divide into {fg} feature / {bg} batch groups"),
            ));
        }
        let mut out = vec![0i64; 4];
        out[l.output[0]] = batch / bg;
        out[l.output[1]] = kout;
        for s in 0..2 {
            let inp = (x.dims[l.input[2 + s]] - 1) * cd.lhs_dilation[s] + 1;
            let padded = inp + cd.padding[s][0] + cd.padding[s][1];
            let win = (k.dims[l.kernel[2 + s]] - 1) * cd.rhs_dilation[s] + 1;
            if padded < win || cd.stride[s] < 1 {
                return Err(Error::shape(op, format!("window {win} larger than padded input {padded} ({x}, {k})")));
            }
            out[l.output[2 + s]] = (padded - win) / cd.stride[s] + 1;
        }
        let p = &cd.padding;
        let attrs = format!(
            "batch_group_count = {bg} : i64, dimension_numbers = #stablehlo.conv<{}>, \
             feature_group_count = {fg} : i64, lhs_dilation = {}, \
             padding = dense<[[{}, {}], [{}, {}]]> : tensor<2x2xi64>, rhs_dilation = {}, \
             window_strides = {}",
            l.print(),
            array(&cd.lhs_dilation),
            p[0][0],
            p[0][1],
            p[1][0],
            p[1][1],
            array(&cd.rhs_dilation),
            array(&cd.stride)
        );
        Ok(self.emit("stablehlo.convolution", &[input, kernel], &attrs, x.with_dims(out)))
    }

    /// Prints a two-argument scalar region whose body applies `op_name`.
    fn region(&mut self, op_name: &str, dtype: DType) -> String {
        let (a, b, r) = (self.fresh(), self.fresh(), self.fresh());
        let t = Shape::scalar(dtype);
        format!(
            "({{\n    ^bb0({a}: {t}, {b}: {t}):\n      {r} = \"{op_name}\"({a}, {b}) : ({t}, {t}) -> {t}\n      \"stablehlo.return\"({r}) : ({t}) -> ()\n    }})"
        )
    }

    /// Reduces `a` over `axes` with `op`, starting from the op's identity.
    pub fn reduce(&mut self, a: &Value, axes: &[i64], op: ReduceOp) -> Result<Value> {
        check_axes("reduce", "dimensions", axes, a.shape.rank())?;
        let init_v = match op {
            ReduceOp::Sum => 0.0,
            ReduceOp::Max => f64::NEG_INFINITY,
        };
        let init = self.scalar(init_v, a.dtype());
        let dims: Vec<i64> = (0..a.shape.rank() as i64)
            .filter(|i| !axes.contains(i))
            .map(|i| a.shape.dims[i as usize])
            .collect();
        let out = a.shape.with_dims(dims);
        let region = self.region(op.op_name(), a.dtype());
        let name = self.fresh();
        let _ = writeln!(
            self.body,
            "    {name} = \"stablehlo.reduce\"({a}, {init}) <{{dimensions = {}}}> {region} : ({}, {}) -> {out}",
            array(axes),
            a.shape,
            init.shape
        );
        Ok(Value { name, shape: out })
    }

    /// `stablehlo.reduce_window` without padding, e.g. a 2x2/2 max-pool on NHWC is
    /// `window = [1, 2, 2, 1]`, `strides = [1, 2, 2, 1]`.
    pub fn reduce_window(&mut self, a: &Value, window: &[i64], strides: &[i64], op: ReduceOp) -> Result<Value> {
        let pad = vec![[0, 0]; a.shape.rank()];
        self.reduce_window_padded(a, window, strides, &pad, op)
    }

    /// `stablehlo.reduce_window` with `padding[axis] = [low, high]`; padded positions hold the
    /// op's identity (0 for a sum, -inf for a max), so a padded max-pool never picks them.
    pub fn reduce_window_padded(
        &mut self,
        a: &Value,
        window: &[i64],
        strides: &[i64],
        padding: &[[i64; 2]],
        op: ReduceOp,
    ) -> Result<Value> {
        let r = a.shape.rank();
        if window.len() != r || strides.len() != r || padding.len() != r {
            return Err(Error::shape(
                "reduce_window",
                format!("window {window:?} strides {strides:?} padding {padding:?} for {}", a.shape),
            ));
        }
        let mut dims = Vec::with_capacity(r);
        for i in 0..r {
            let padded = a.shape.dims[i] + padding[i][0] + padding[i][1];
            if window[i] < 1 || strides[i] < 1 || padding[i].iter().any(|&p| p < 0) || window[i] > padded {
                return Err(Error::shape(
                    "reduce_window",
                    format!("window {window:?} padding {padding:?} does not fit {}", a.shape),
                ));
            }
            dims.push((padded - window[i]) / strides[i] + 1);
        }
        let init_v = match op {
            ReduceOp::Sum => 0.0,
            ReduceOp::Max => f64::NEG_INFINITY,
        };
        let init = self.scalar(init_v, a.dtype());
        let out = a.shape.with_dims(dims);
        let region = self.region(op.op_name(), a.dtype());
        let name = self.fresh();
        let pad_attr = if padding.iter().all(|p| *p == [0, 0]) {
            String::new()
        } else {
            let rows: Vec<String> = padding.iter().map(|p| format!("[{}, {}]", p[0], p[1])).collect();
            format!(", padding = dense<[{}]> : tensor<{r}x2xi64>", rows.join(", "))
        };
        let _ = writeln!(
            self.body,
            "    {name} = \"stablehlo.reduce_window\"({a}, {init}) <{{window_dimensions = {}, window_strides = {}{pad_attr}}}> {region} : ({}, {}) -> {out}",
            array(window),
            array(strides),
            a.shape,
            init.shape
        );
        Ok(Value { name, shape: out })
    }

    /// 2x2 max-pool with stride 2 over the spatial axes of an NHWC tensor.
    pub fn max_pool2(&mut self, a: &Value) -> Result<Value> {
        self.reduce_window(a, &[1, 2, 2, 1], &[1, 2, 2, 1], ReduceOp::Max)
    }

    /// `stablehlo.select_and_scatter` for a max-pool gradient: scatters `source` (the pooled
    /// gradient) to the position of each window's maximum in `operand`, summing overlaps.
    /// `padding` (`[low, high]` per axis) pads the operand with positions that are never
    /// selected, as a max-pool padded with -inf: `source` has the pooled shape
    /// `(dims + low + high - window) / strides + 1`.
    pub fn max_pool_grad(
        &mut self,
        operand: &Value,
        source: &Value,
        window: &[i64],
        strides: &[i64],
        padding: &[[i64; 2]],
    ) -> Result<Value> {
        let r = operand.shape.rank();
        let bad = || Error::shape("select_and_scatter", format!("operand {} source {} window {window:?} strides {strides:?} padding {padding:?}", operand.shape, source.shape));
        if window.len() != r || strides.len() != r || padding.len() != r || source.shape.rank() != r || source.dtype() != operand.dtype() {
            return Err(bad());
        }
        for i in 0..r {
            let padded = operand.shape.dims[i] + padding[i][0] + padding[i][1];
            if strides[i] < 1 || padding[i].iter().any(|&p| p < 0) || padded < window[i] || (padded - window[i]) / strides[i] + 1 != source.shape.dims[i] {
                return Err(bad());
            }
        }
        let init = self.scalar(0.0, operand.dtype());
        let t = Shape::scalar(operand.dtype());
        let (a, b, c) = (self.fresh(), self.fresh(), self.fresh());
        let select = format!(
            "{{\n    ^bb0({a}: {t}, {b}: {t}):\n      {c} = \"stablehlo.compare\"({a}, {b}) <{{comparison_direction = #stablehlo<comparison_direction GE>}}> : ({t}, {t}) -> tensor<i1>\n      \"stablehlo.return\"({c}) : (tensor<i1>) -> ()\n    }}"
        );
        let scatter = self.region("stablehlo.add", operand.dtype());
        let scatter = scatter.trim_start_matches('(').trim_end_matches(')');
        let pads: Vec<String> = padding.iter().map(|p| format!("[{}, {}]", p[0], p[1])).collect();
        let name = self.fresh();
        let _ = writeln!(
            self.body,
            "    {name} = \"stablehlo.select_and_scatter\"({operand}, {source}, {init}) <{{padding = dense<[{}]> : tensor<{r}x2xi64>, window_dimensions = {}, window_strides = {}}}> ({select}, {scatter}) : ({}, {}, {}) -> {}",
            pads.join(", "),
            array(window),
            array(strides),
            operand.shape,
            source.shape,
            init.shape,
            operand.shape
        );
        Ok(Value { name, shape: operand.shape.clone() })
    }

    pub fn compare(&mut self, a: &Value, b: &Value, dir: Compare) -> Result<Value> {
        same_shape("compare", a, b)?;
        let kind = if a.dtype().is_float() { "FLOAT" } else { "SIGNED" };
        let attrs = format!(
            "compare_type = #stablehlo<comparison_type {kind}>, comparison_direction = #stablehlo<comparison_direction {}>",
            dir.mlir()
        );
        Ok(self.emit("stablehlo.compare", &[a, b], &attrs, a.shape.with_dtype(DType::Pred)))
    }

    pub fn select(&mut self, pred: &Value, on_true: &Value, on_false: &Value) -> Result<Value> {
        same_shape("select", on_true, on_false)?;
        if pred.shape != on_true.shape.with_dtype(DType::Pred) {
            return Err(Error::shape("select", format!("predicate {} for {}", pred.shape, on_true.shape)));
        }
        Ok(self.emit("stablehlo.select", &[pred, on_true, on_false], "", on_true.shape.clone()))
    }

    /// `stablehlo.iota` along `axis`.
    pub fn iota(&mut self, shape: Shape, axis: usize) -> Result<Value> {
        if axis >= shape.rank() {
            return Err(Error::shape("iota", format!("axis {axis} for {shape}")));
        }
        let attrs = format!("iota_dimension = {axis} : i64");
        Ok(self.emit("stablehlo.iota", &[], &attrs, shape))
    }

    /// `max(a, 0)`.
    pub fn relu(&mut self, a: &Value) -> Result<Value> {
        let z = self.constant(0.0, a.shape.clone());
        self.max(a, &z)
    }

    /// Prints the module with `@main` returning `outputs` in order.
    pub fn finish(self, outputs: &[&Value]) -> String {
        let args: Vec<String> =
            self.args.iter().enumerate().map(|(i, s)| format!("%arg{i}: {s}")).collect();
        let outs = types(outputs);
        let names = outputs.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ");
        format!(
            "module @prunebench {{\n  func.func public @main({}) -> ({outs}) {{\n{}    return {names} : {outs}\n  }}\n}}\n",
            args.join(", "),
            self.body
        )
    }
}

/// Nests flat literals into MLIR's bracketed form for `dims`.
fn nest(lits: &[String], dims: &[i64]) -> String {
    match dims.split_first() {
        None => lits[0].clone(),
        Some((&n, rest)) => {
            let step: usize = rest.iter().product::<i64>() as usize;
            let parts: Vec<String> =
                (0..n as usize).map(|i| nest(&lits[i * step..(i + 1) * step], rest)).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(d: &[i64]) -> Shape {
        Shape::new(d, DType::F32)
    }

    #[test]
    fn shape_errors_name_the_op_and_shapes() {
        let mut b = Builder::new();
        let x = b.arg(f32s(&[2, 3]));
        let y = b.arg(f32s(&[3, 2]));
        let e = b.add(&x, &y).unwrap_err().to_string();
        assert!(e.contains("stablehlo.add") && e.contains("tensor<2x3xf32>") && e.contains("tensor<3x2xf32>"), "{e}");
        let e = b.matmul(&x, &x).unwrap_err().to_string();
        assert!(e.contains("dot_general"), "{e}");
        let k = b.arg(f32s(&[3, 3, 4, 8]));
        let img = b.arg(f32s(&[1, 8, 8, 3]));
        let e = b.convolution(&img, &k, &ConvDims::same(1)).unwrap_err().to_string();
        assert!(e.contains("3 features") && e.contains("expects 4"), "{e}");
    }

    #[test]
    fn infers_result_shapes() {
        let mut b = Builder::new();
        let img = b.arg(f32s(&[2, 8, 8, 3]));
        let k = b.arg(f32s(&[3, 3, 3, 16]));
        let c = b.convolution(&img, &k, &ConvDims::same(1)).unwrap();
        assert_eq!(c.dims(), &[2, 8, 8, 16]);
        let p = b.max_pool2(&c).unwrap();
        assert_eq!(p.dims(), &[2, 4, 4, 16]);
        let s = b.reduce(&p, &[1, 2], ReduceOp::Sum).unwrap();
        assert_eq!(s.dims(), &[2, 16]);
        let w = b.arg(f32s(&[16, 10]));
        let l = b.matmul(&s, &w).unwrap();
        assert_eq!(l.dims(), &[2, 10]);
        let bd = b.dot_general(&p, &p, (&[0], &[0]), (&[3], &[3])).unwrap();
        assert_eq!(bd.dims(), &[2, 4, 4, 4, 4]);
        let text = b.finish(&[&l]);
        assert!(text.contains("func.func public @main(%arg0: tensor<2x8x8x3xf32>"));
        assert!(text.contains("#stablehlo.conv<[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]>"), "{text}");
        assert!(text.contains("return %") && text.contains(": tensor<2x10xf32>"));
    }

    #[test]
    fn strided_slice_rounds_the_count_up_and_checks_bounds() {
        let mut b = Builder::new();
        let x = b.arg(f32s(&[1, 10, 9, 4]));
        let s = b.slice_strided(&x, &[0, 1, 0, 0], &[1, 10, 9, 4], &[1, 2, 2, 1]).unwrap();
        assert_eq!(s.dims(), &[1, 5, 5, 4]); // rows 1,3,5,7,9; columns 0,2,4,6,8
        let text = b.finish(&[&s]);
        assert!(text.contains("strides = array<i64: 1, 2, 2, 1>"), "{text}");
        let mut b = Builder::new();
        let x = b.arg(f32s(&[4, 4]));
        assert!(b.slice_strided(&x, &[0, 0], &[4, 4], &[1, 0]).is_err());
        assert!(b.slice_strided(&x, &[0, 0], &[5, 4], &[1, 1]).is_err());
    }

    #[test]
    fn nested_constants() {
        assert_eq!(nest(&["1".into(), "2".into(), "3".into(), "4".into()], &[2, 2]), "[[1, 2], [3, 4]]");
    }
}
