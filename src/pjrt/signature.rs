//! The parameter types of `@main`, read from the StableHLO text at compile time.
//!
//! The CPU plugin checks only the byte size of each argument: a `tensor<3x2xi32>` passed for
//! a `tensor<3x2xf32>` runs and returns garbage. With the signature known, `execute` rejects
//! such calls with `Error::Shape`. Parsing is best effort: anything unusual (dynamic
//! dimensions, unknown element types, no `@main`) just turns the check off for that
//! parameter or the whole program.

use super::ElementType;

/// One parameter: element type and dims, `None` where not checkable.
pub(crate) type Param = Option<(ElementType, Vec<i64>)>;

/// The parameters of `func.func ... @main(...)`, or `None` if not found.
pub(crate) fn main_params(text: &str) -> Option<Vec<Param>> {
    let start = text.find("@main(")? + "@main(".len();
    let body = &text[start..];
    let mut depth = 0i32;
    let mut params = Vec::new();
    let mut from = 0;
    for (i, ch) in body.char_indices() {
        match ch {
            '(' | '<' | '{' | '[' => depth += 1,
            ')' if depth == 0 => {
                let last = body[from..i].trim();
                if !last.is_empty() {
                    params.push(param(last));
                }
                return Some(params);
            }
            ')' | '>' | '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                params.push(param(&body[from..i]));
                from = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// `%x: tensor<2x3xf32> {attrs}` -> (F32, [2, 3]).
fn param(decl: &str) -> Param {
    let ty = decl.split_once(':')?.1.trim_start();
    let inner = ty.strip_prefix("tensor<")?;
    let inner = &inner[..inner.find('>')?];
    let mut parts: Vec<&str> = inner.split('x').collect();
    let element = element_type(parts.pop()?.trim())?;
    let dims = parts
        .iter()
        .map(|d| d.trim().parse::<i64>().ok())
        .collect::<Option<Vec<i64>>>()?;
    Some((element, dims))
}

fn element_type(name: &str) -> Option<ElementType> {
    Some(match name {
        "f32" => ElementType::F32,
        "f64" => ElementType::F64,
        "bf16" => ElementType::BF16,
        "f16" => ElementType::F16,
        "i32" | "si32" => ElementType::I32,
        "i64" | "si64" => ElementType::I64,
        "ui8" => ElementType::U8,
        "i1" => ElementType::Pred,
        _ => return None,
    })
}

/// `tensor<2x3xf32>` for messages.
pub(crate) fn tensor_type(element: ElementType, dims: &[i64]) -> String {
    let mut s = String::from("tensor<");
    for d in dims {
        s.push_str(&format!("{d}x"));
    }
    s.push_str(&format!("{element}>"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_main_signature() {
        let text = "module @m {\n func.func private @helper(%a: tensor<1xf32>) -> tensor<1xf32>\n \
                    func.func public @main(%arg0: tensor<2x3xf32> {jax.buffer_donor = true}, %arg1: tensor<i32>,\n \
                    %arg2: tensor<?x4xbf16>, %arg3: tensor<4xcomplex<f32>>) -> (tensor<2x2xf32>) {";
        let p = main_params(text).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], Some((ElementType::F32, vec![2, 3])));
        assert_eq!(p[1], Some((ElementType::I32, vec![])));
        assert_eq!(p[2], None);
        assert_eq!(p[3], None);
        assert_eq!(
            main_params("func.func @main() -> tensor<f32> {")
                .unwrap()
                .len(),
            0
        );
        assert_eq!(main_params("func.func @other(%a: tensor<f32>)"), None);
        assert_eq!(tensor_type(ElementType::BF16, &[2, 3]), "tensor<2x3xbf16>");
        assert_eq!(tensor_type(ElementType::I32, &[]), "tensor<i32>");
    }
}
