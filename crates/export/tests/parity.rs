//! Exported graphs agree with the burn forward pass in tract-onnx and in Python onnxruntime
//! (plus the `onnx` checker), max |diff| ≤ 1e-4 in fp32; quantized variants stay close.

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use std::path::{Path, PathBuf};
use tinycats_export::{nets, quantize, Quantize};
use tinycats_models::dit::{Dit, DitConfig};
use tinycats_models::Cpu;
use tract_onnx::prelude::{tvec, IntoTensor, TValue, TVec, Framework, InferenceModelExt};
use tract_onnx::tract_core::ndarray as tract_ndarray;

/// Every parameter gets a deterministic perturbation, so zero-initialised adaLN layers (a fresh
/// DiT outputs exactly 0) do not make the comparison trivial.
struct Jitter(u64);
impl<B: Backend> ModuleMapper<B> for Jitter {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        self.0 += 1;
        let seed = self.0;
        p.map(|t| {
            let n = t.shape().num_elements();
            let noise: Vec<f32> = (0..n).map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f32 / 1000.0 - 0.5) * 0.2).collect();
            let dev = t.device();
            t.clone() + Tensor::<B, 1>::from_data(TensorData::new(noise, [n]), &dev).reshape(t.shape())
        })
    }
}

fn tract_run(bytes: &[u8], inputs: Vec<Tensor<Cpu, 4>>, extra: Vec<tract_onnx::prelude::Tensor>) -> Vec<f32> {
    let model = tract_onnx::onnx().model_for_read(&mut std::io::Cursor::new(bytes)).unwrap().into_optimized().unwrap().into_runnable().unwrap();
    let mut tv: TVec<TValue> = tvec![];
    for x in inputs {
        let d = x.dims();
        let v: Vec<f32> = x.into_data().to_vec().unwrap();
        tv.push(tract_ndarray::Array4::from_shape_vec((d[0], d[1], d[2], d[3]), v).unwrap().into_tensor().into());
    }
    for e in extra {
        tv.push(e.into());
    }
    let out = model.run(tv).unwrap();
    out[0].to_array_view::<f32>().unwrap().iter().copied().collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn write_bin(dir: &Path, name: &str, bytes: Vec<u8>) -> String {
    std::fs::write(dir.join(name), bytes).unwrap();
    name.to_string()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Runs scripts/onnx_parity.py (onnx checker + onnxruntime); panics with its output on failure.
fn onnxruntime_check(model: &[u8], inputs: Vec<(&str, &str, Vec<usize>, Vec<u8>)>, expected: &[f32], shape: &[usize], tol: f64) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.onnx"), model).unwrap();
    let ins: Vec<serde_json::Value> = inputs
        .into_iter()
        .map(|(name, dtype, shape, bytes)| serde_json::json!({"name": name, "dtype": dtype, "shape": shape, "file": write_bin(dir.path(), &format!("{name}.bin"), bytes)}))
        .collect();
    let case = serde_json::json!({"inputs": ins, "expected": {"file": write_bin(dir.path(), "expected.bin", f32_bytes(expected)), "shape": shape}, "tol": tol});
    std::fs::write(dir.path().join("case.json"), case.to_string()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/onnx_parity.py");
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(py).arg(&script).arg(dir.path().join("model.onnx")).arg(dir.path().join("case.json")).output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "onnxruntime parity failed (run scripts/setup.sh for onnx + onnxruntime): {text}");
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap()
}

fn dit_case() -> (Dit<Cpu>, Tensor<Cpu, 4>, Vec<f32>, Vec<i64>) {
    let dev = Default::default();
    let cfg = DitConfig { image_size: 16, patch: 4, channels: 3, hidden: 32, depth: 2, heads: 2, mlp_ratio: 4, num_classes: 3, cond_channels: 0 };
    let m = Dit::<Cpu>::new(cfg, &dev).map(&mut Jitter(0));
    let x = Tensor::<Cpu, 4>::random([3, 3, 16, 16], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
    (m, x, vec![0.0, 0.37, 0.93], vec![0, 2, 3])
}

/// The DiT case's inputs as `onnxruntime_check` takes them.
fn dit_inputs(xv: &[f32], t: &[f32], y: &[i64]) -> Vec<(&'static str, &'static str, Vec<usize>, Vec<u8>)> {
    vec![
        ("x_t", "float32", vec![3, 3, 16, 16], f32_bytes(xv)),
        ("t", "float32", vec![3], f32_bytes(t)),
        ("breed", "int64", vec![3], y.iter().flat_map(|v| v.to_le_bytes()).collect()),
    ]
}

#[test]
fn refiner_dit_with_a_conditioning_input_matches_tract_and_onnxruntime() {
    let dev = Default::default();
    let cfg = DitConfig { image_size: 8, patch: 2, channels: 4, hidden: 32, depth: 1, heads: 2, mlp_ratio: 2, num_classes: 3, cond_channels: 4 };
    let m = Dit::<Cpu>::new(cfg, &dev).map(&mut Jitter(5));
    let x = Tensor::<Cpu, 4>::random([2, 4, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
    let cond = Tensor::<Cpu, 4>::random([2, 4, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
    let (t, y) = (vec![0.2f32, 0.8], vec![1i64, 3]);
    let fwd = |c: Tensor<Cpu, 4>| -> Vec<f32> {
        m.forward(Tensor::cat(vec![x.clone(), c], 1), Tensor::from_data(TensorData::new(t.clone(), [2]), &dev), Tensor::from_data(TensorData::new(y.clone(), [2]), &dev)).into_data().to_vec().unwrap()
    };
    let want = fwd(cond.clone());
    assert_ne!(want, fwd(cond.clone() * 0.5), "the jittered refiner must depend on its conditioning");
    let bytes = tinycats_export::encode(&quantize(nets::dit(&m, &[]).unwrap(), Quantize::None));
    // Inputs in graph order: x_t, t, breed, cond.
    let to_tract = |v: Tensor<Cpu, 4>| tract_ndarray::Array4::from_shape_vec((2, 4, 8, 8), v.into_data().to_vec::<f32>().unwrap()).unwrap().into_tensor();
    let got = tract_run(&bytes, vec![x.clone()], vec![tract_ndarray::Array1::from_vec(t.clone()).into_tensor(), tract_ndarray::Array1::from_vec(y.clone()).into_tensor(), to_tract(cond.clone())]);
    let d = max_diff(&got, &want);
    assert!(d <= 1e-4, "tract vs burn: max |diff| {d}");
    let (xv, cv): (Vec<f32>, Vec<f32>) = (x.into_data().to_vec().unwrap(), cond.into_data().to_vec().unwrap());
    let mut inputs = vec![
        ("x_t", "float32", vec![2, 4, 8, 8], f32_bytes(&xv)),
        ("t", "float32", vec![2], f32_bytes(&t)),
        ("breed", "int64", vec![2], y.iter().flat_map(|v| v.to_le_bytes()).collect()),
    ];
    inputs.push(("cond", "float32", vec![2, 4, 8, 8], f32_bytes(&cv)));
    let r = onnxruntime_check(&bytes, inputs, &want, &[2, 4, 8, 8], 1e-4);
    assert_eq!(r["checker"], "ok");
}

#[test]
fn dit_matches_tract_and_onnxruntime() {
    let (m, x, t, y) = dit_case();
    let dev = Default::default();
    let want: Vec<f32> = m
        .forward(x.clone(), Tensor::from_data(TensorData::new(t.clone(), [3]), &dev), Tensor::from_data(TensorData::new(y.clone(), [3]), &dev))
        .into_data()
        .to_vec()
        .unwrap();
    assert!(want.iter().any(|v| v.abs() > 1e-3), "the jittered model must produce a non-trivial output");
    let e = nets::dit(&m, &[("null_class".into(), "3".into())]).unwrap();
    let bytes = tinycats_export::encode(&quantize(e, Quantize::None));
    let tt = tract_ndarray::Array1::from_vec(t.clone()).into_tensor();
    let yt = tract_ndarray::Array1::from_vec(y.clone()).into_tensor();
    let got = tract_run(&bytes, vec![x.clone()], vec![tt, yt]);
    let d = max_diff(&got, &want);
    assert!(d <= 1e-4, "tract vs burn: max |diff| {d}");
    let xv: Vec<f32> = x.into_data().to_vec().unwrap();
    let r = onnxruntime_check(
        &bytes,
        dit_inputs(&xv, &t, &y),
        &want,
        &[3, 3, 16, 16],
        1e-4,
    );
    assert_eq!(r["checker"], "ok");
    // Quantized graphs compute exactly what the burn model computes with the same rounded
    // weights (`fake_quantize_linears`), and stay near the fp32 output.
    for (q, near) in [(Quantize::Fp16, 0.05f32), (Quantize::Int8, 0.3)] {
        let e = nets::dit(&m, &[]).unwrap();
        let qb = tinycats_export::encode(&quantize(e, q));
        assert!(qb.len() < bytes.len(), "{q:?} must be smaller ({} vs {})", qb.len(), bytes.len());
        let fq = tinycats_export::fake_quantize_linears(m.clone(), q);
        let want_q: Vec<f32> = fq
            .forward(Tensor::from_data(TensorData::new(xv.clone(), [3, 3, 16, 16]), &dev), Tensor::from_data(TensorData::new(t.clone(), [3]), &dev), Tensor::from_data(TensorData::new(y.clone(), [3]), &dev))
            .into_data()
            .to_vec()
            .unwrap();
        let drift = max_diff(&want_q, &want);
        assert!(drift > 0.0 && drift < near, "{q:?}: quantized output drifts {drift} from fp32");
        onnxruntime_check(
            &qb,
            dit_inputs(&xv, &t, &y),
            &want_q,
            &[3, 3, 16, 16],
            1e-4,
        );
    }
}

fn backbone() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/weights/efficientnet-lite0.safetensors");
    p.is_file().then_some(p)
}

#[test]
fn classifier_matches_tract_and_onnxruntime() {
    let Some(w) = backbone() else {
        eprintln!("SKIPPED classifier_matches_tract_and_onnxruntime: run scripts/setup.sh for the EfficientNet-Lite0 weights");
        return;
    };
    use tinycats_models::classifier::Tail;
    use tinycats_models::efficientnet::EfficientNetLite0;
    let dev = Default::default();
    let net = EfficientNetLite0::<Cpu>::from_pretrained(tinycats_models::weights::TensorMap::read(&w).unwrap(), &dev).unwrap();
    let tail = Tail::<Cpu>::from_pretrained(&net, 15, 13, 0.0, &dev).fold_bn().map(&mut Jitter(7));
    let front = net.fold_bn();
    // A random image and a real photo (from ../shared when present, else a smooth synthetic one).
    let mut x: Vec<f32> = Tensor::<Cpu, 4>::random([1, 3, 224, 224], burn::tensor::Distribution::Uniform(0.0, 1.0), &dev).into_data().to_vec().unwrap();
    let photo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/oxford-pets-subset/images/Abyssinian_1.jpg");
    match std::fs::read(&photo) {
        Ok(bytes) => {
            let hwc = tinycats_data::pixels::load_square(&bytes, 224, tinycats_data::pixels::ResizeMode::Crop, &mut fast_image_resize::Resizer::new()).unwrap();
            x.extend((0..3 * 224 * 224).map(|i| hwc[(i % (224 * 224)) * 3 + i / (224 * 224)] as f32 / 255.0));
        }
        Err(_) => x.extend((0..3 * 224 * 224).map(|i| {
            let (c, p) = (i / (224 * 224), i % (224 * 224));
            ((p / 224) as f32 / 224.0 * (c as f32 + 1.0) / 3.0 + (p % 224) as f32 / 448.0).fract()
        })),
    }
    let xt = Tensor::<Cpu, 4>::from_data(TensorData::new(x.clone(), [2, 3, 224, 224]), &dev);
    let h = front.front(EfficientNetLite0::<Cpu>::normalize(xt.clone()), 15);
    let want: Vec<f32> = burn::tensor::activation::softmax(tail.forward(h), 1).into_data().to_vec().unwrap();
    let e = nets::classifier(&front, &tail, 15, 224, &[]).unwrap();
    let bytes = tinycats_export::encode(&quantize(e, Quantize::None));
    let got = tract_run(&bytes, vec![xt], vec![]);
    let d = max_diff(&got, &want);
    assert!(d <= 1e-4, "tract vs burn: max |diff| {d}");
    let r = onnxruntime_check(&bytes, vec![("image", "float32", vec![2, 3, 224, 224], f32_bytes(&x))], &want, &[2, 13], 1e-4);
    assert_eq!(r["checker"], "ok");
    let e = nets::classifier(&front, &tail, 15, 224, &[]).unwrap();
    let q = tinycats_export::encode(&quantize(e, Quantize::Int8));
    assert!(q.len() * 3 < bytes.len(), "int8 must be under a third of fp32 ({} vs {})", q.len(), bytes.len());
    // Weight-only int8 through 17 conv blocks of a jittered tail: probabilities move by a few
    // hundredths; the accuracy change on real photos is measured in docs/RESULTS.md.
    onnxruntime_check(&q, vec![("image", "float32", vec![2, 3, 224, 224], f32_bytes(&x))], &want, &[2, 13], 0.25);
}

#[test]
fn unsupported_models_are_refused() {
    use tinycats_models::classifier::Tail;
    use tinycats_models::efficientnet::EfficientNetLite0;
    let dev = Default::default();
    let net = EfficientNetLite0::<Cpu>::new(1000, &dev);
    // BatchNorm not folded → clear error naming the layer.
    let tail = Tail::<Cpu>::new(15, 13, &dev);
    let e = nets::classifier(&net, &tail, 15, 224, &[]).err().unwrap().to_string();
    assert!(e.contains("BatchNorm") && e.contains("stem"), "{e}");
    let probe = Tail::<Cpu>::new(17, 13, &dev);
    let e = nets::classifier(&net.fold_bn(), &probe, 17, 224, &[]).err().unwrap().to_string();
    assert!(e.contains("linear-probe"), "{e}");
    assert!(Quantize::parse("int4").unwrap_err().to_string().contains("int4"));
}

/// int8-dynamic on one Linear layer computes exactly the ONNX definition: x quantized per tensor
/// to uint8 (DynamicQuantizeLinear), W per column to int8, integer products, rescaled to float.
#[test]
fn int8_dynamic_linear_matches_its_definition() {
    use tinycats_export::graph::{model, value_info, Builder};
    use tinycats_export::onnx::tensor_proto::DataType;
    let (rows, k, cols) = (6usize, 5usize, 3usize);
    let w: Vec<f32> = (0..k * cols).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.07).collect();
    let x: Vec<f32> = (0..rows * k).map(|i| ((i * 53 % 41) as f32 - 13.0) * 0.11).collect();
    let mut b = Builder::default();
    let wn = b.weight("l.weight", &[k, cols], &w, Some(1));
    b.op("MatMul", &["x", &wn]);
    b.name_last_output("y");
    let weight_axis = b.weight_axis.clone();
    let m = model(b, "one_linear", vec![value_info("x", DataType::Float, &[None, Some(k)])], vec![value_info("y", DataType::Float, &[None, Some(cols)])], &[]);
    let q = quantize(nets::Exported { model: m, weight_axis }, Quantize::Int8Dynamic);
    let ops: Vec<&str> = q.graph.as_ref().unwrap().node.iter().filter_map(|n| n.op_type.as_deref()).collect();
    assert_eq!(ops, ["DynamicQuantizeLinear", "Mul", "MatMulInteger", "Cast", "Mul"], "graph: {ops:?}");
    // Reference: the ONNX operator definitions, in f64 where it does not matter.
    let mut ws = vec![0f32; cols];
    for (i, v) in w.iter().enumerate() {
        ws[i % cols] = ws[i % cols].max(v.abs() / 127.0);
    }
    let wq: Vec<i32> = w.iter().enumerate().map(|(i, v)| (v / ws[i % cols]).round().clamp(-127.0, 127.0) as i32).collect();
    let lo = x.iter().copied().fold(0f32, f32::min);
    let hi = x.iter().copied().fold(0f32, f32::max);
    let xs = (hi - lo) / 255.0;
    let zp = (-lo / xs).round_ties_even().clamp(0.0, 255.0) as i32;
    let xq: Vec<i32> = x.iter().map(|v| ((v / xs).round_ties_even() as i32 + zp).clamp(0, 255)).collect();
    let mut want = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let acc: i32 = (0..k).map(|j| (xq[r * k + j] - zp) * wq[j * cols + c]).sum();
            want[r * cols + c] = acc as f32 * (xs * ws[c]);
        }
    }
    // The float product differs from the integer one by the activation rounding, so the check
    // below can tell a float MatMul from an integer one.
    let float: Vec<f32> = (0..rows * cols).map(|i| (0..k).map(|j| x[(i / cols) * k + j] * wq[j * cols + i % cols] as f32 * ws[i % cols]).sum()).collect();
    assert!(max_diff(&float, &want) > 1e-3, "the test inputs must make activation rounding visible");
    let r = onnxruntime_check(&tinycats_export::encode(&q), vec![("x", "float32", vec![rows, k], f32_bytes(&x))], &want, &[rows, cols], 1e-5);
    assert_eq!(r["checker"], "ok");
}

/// Every Linear of the DiT runs in integers under int8-dynamic, and the output stays near the
/// burn model with the same int8 weights (the rest is activation rounding).
#[test]
fn dit_int8_dynamic_runs_every_linear_in_integers() {
    let (m, x, t, y) = dit_case();
    let dev = Default::default();
    let e = nets::dit(&m, &[]).unwrap();
    let linears = e.weight_axis.values().filter(|&&a| a == 1).count();
    let q = quantize(e, Quantize::Int8Dynamic);
    let g = q.graph.as_ref().unwrap();
    let count = |op: &str| g.node.iter().filter(|n| n.op_type.as_deref() == Some(op)).count();
    assert!(linears > 0);
    assert_eq!(count("MatMulInteger"), linears, "one MatMulInteger per Linear");
    assert!(count("DynamicQuantizeLinear") < linears, "activations read by several Linears are quantized once");
    assert!(g.node.iter().all(|n| n.op_type.as_deref() != Some("MatMul") || !n.input[1].ends_with(".weight")), "no Linear left in float");
    let fq = tinycats_export::fake_quantize_linears(m.clone(), Quantize::Int8);
    let xv: Vec<f32> = x.clone().into_data().to_vec().unwrap();
    let want_q: Vec<f32> = fq
        .forward(x, Tensor::from_data(TensorData::new(t.clone(), [3]), &dev), Tensor::from_data(TensorData::new(y.clone(), [3]), &dev))
        .into_data()
        .to_vec()
        .unwrap();
    let r = onnxruntime_check(
        &tinycats_export::encode(&q),
        dit_inputs(&xv, &t, &y),
        &want_q,
        &[3, 3, 16, 16],
        0.3,
    );
    let d = r["max_abs_diff"].as_f64().unwrap();
    assert!(d > 0.0, "activations must be rounded (max |diff| {d} against float activations)");
}

#[test]
fn latent_decoder_matches_tract_and_onnxruntime() {
    use tinycats_models::autoencoder::{AeConfig, Autoencoder};
    let dev = Default::default();
    // A decoder wider than its encoder (`model.decoder_width`): the graph follows the weights.
    let cfg = AeConfig { image_size: 16, channels: 3, latent_channels: 4, width: 8, levels: 2, decoder_width: 12, classes: 0 };
    let ae = Autoencoder::<Cpu>::new(cfg, &dev);
    let (mean, std) = (vec![0.1f32, -0.2, 0.3, 0.0], vec![0.5f32, 1.5, 2.0, 0.8]);
    let z = Tensor::<Cpu, 4>::random([2, 4, 4, 4], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
    // The burn decode path of a latent generator: de-normalise, decode, clamp.
    let denorm = z.clone() * Tensor::<Cpu, 4>::from_data(TensorData::new(std.clone(), [1, 4, 1, 1]), &dev) + Tensor::<Cpu, 4>::from_data(TensorData::new(mean.clone(), [1, 4, 1, 1]), &dev);
    let want: Vec<f32> = ae.decoder.forward(denorm).clamp(-1.0, 1.0).into_data().to_vec().unwrap();
    assert!(want.iter().any(|v| v.abs() > 1e-3), "the decoder must produce a non-trivial output");
    let e = nets::decoder(&ae.decoder, &mean, &std, &[]).unwrap();
    let bytes = tinycats_export::encode(&quantize(e, Quantize::None));
    let got = tract_run(&bytes, vec![z.clone()], vec![]);
    let d = max_diff(&got, &want);
    assert!(d <= 1e-4, "tract vs burn: max |diff| {d}");
    let zv: Vec<f32> = z.into_data().to_vec().unwrap();
    let r = onnxruntime_check(&bytes, vec![("latent", "float32", vec![2, 4, 4, 4], f32_bytes(&zv))], &want, &[2, 3, 16, 16], 1e-4);
    assert_eq!(r["checker"], "ok");
    // Wrong statistics are refused by name.
    let err = nets::decoder(&ae.decoder, &mean[..3], &std, &[]).err().expect("3 means for 4 channels accepted").to_string();
    assert!(err.contains("channels"), "{err}");
}

#[test]
fn breed_conditioned_decoder_matches_tract_and_onnxruntime() {
    use tinycats_models::autoencoder::{AeConfig, Autoencoder};
    let dev = Default::default();
    let cfg = AeConfig { image_size: 16, channels: 3, latent_channels: 4, width: 8, levels: 2, decoder_width: 0, classes: 3 };
    let mut ae = Autoencoder::<Cpu>::new(cfg, &dev);
    // Trained tables are not zero: random γ‖β so that every modulation matters.
    for t in ae.decoder.film.iter_mut() {
        let dims = t.weight.dims();
        t.weight = burn::module::Param::from_tensor(Tensor::random(dims, burn::tensor::Distribution::Normal(0.0, 0.5), &dev));
    }
    let (mean, std) = (vec![0.0f32; 4], vec![1.0f32; 4]);
    let z = Tensor::<Cpu, 4>::random([3, 4, 4, 4], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
    let breeds = [2i64, 0, 1];
    let y = Tensor::<Cpu, 1, Int>::from_data(TensorData::new(breeds.to_vec(), [3]), &dev);
    let want: Vec<f32> = ae.decoder.forward_with(z.clone(), Some(y)).clamp(-1.0, 1.0).into_data().to_vec().unwrap();
    let plain: Vec<f32> = ae.decoder.forward(z.clone()).clamp(-1.0, 1.0).into_data().to_vec().unwrap();
    assert!(max_diff(&plain, &want) > 1e-2, "the tables must change the output for this test to mean anything");
    let bytes = tinycats_export::encode(&quantize(nets::decoder(&ae.decoder, &mean, &std, &[]).unwrap(), Quantize::None));
    let got = tract_run(&bytes, vec![z.clone()], vec![tract_ndarray::Array1::from_vec(breeds.to_vec()).into_tensor()]);
    let d = max_diff(&got, &want);
    assert!(d <= 1e-4, "tract vs burn: max |diff| {d}");
    let zv: Vec<f32> = z.into_data().to_vec().unwrap();
    let ins = vec![("latent", "float32", vec![3, 4, 4, 4], f32_bytes(&zv)), ("breed", "int64", vec![3], breeds.iter().flat_map(|v| v.to_le_bytes()).collect())];
    let r = onnxruntime_check(&bytes, ins, &want, &[3, 3, 16, 16], 1e-4);
    assert_eq!(r["checker"], "ok");
}
